/**
 * The OpenAPI document: valid OpenAPI 3.1 (checked by @seriousme/openapi-schema-validator, which
 * validates against the official OpenAPI schemas), covering every route the app mounts and every
 * error code of src/errors.ts at its status. That every answer of the suites matches it is
 * checked for each test by test/support/contract.ts; the tests here also prove that check bites.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { ERROR_STATUS, type ErrorCode } from '../../src/errors';
import { buildTestApp } from '../support/app';
import { ROOT } from '../support/build';
import { checkExchange, checked } from '../support/contract';

// biome-ignore lint/suspicious/noExplicitAny: the test reads deep into a JSON document it just fetched.
type Json = Record<string, any>;

/** What the test reads of Express's router internals to list the routes it will serve. */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every variant that mounts more: bot protection adds the challenge routes, a token /metrics. */
const FULL = { BOT_PROTECTION: 'pow', METRICS_TOKEN: 'metrics-token-for-tests' };
/** With the Twilio-compatible API too. */
const WITH_V2 = {
  ...FULL,
  TWILIO_COMPAT: 'on',
  TWILIO_COMPAT_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
  TWILIO_COMPAT_AUTH_TOKEN: 'twilio-compat-token-0123456789',
};

/**
 * The validator is an ES module only; jest loads tests as CommonJS, so it runs in a Node process
 * of its own, as its README shows it used.
 */
function validateOpenApi(document: Json): { valid: boolean; errors?: unknown } {
  const script = `
    import { Validator } from '@seriousme/openapi-schema-validator';
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    const result = await new Validator().validate(JSON.parse(text));
    process.stdout.write(JSON.stringify({ valid: result.valid, errors: result.errors }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    input: JSON.stringify(document),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as { valid: boolean; errors?: unknown };
}

async function served(app: Express): Promise<Json> {
  const res = await request(app).get('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.body as Json;
}

/** Every method and path Express will route, walking the app's router and the routers in it. */
function mountedRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          if (method !== '_all') found.push(`${method} ${layer.route.path}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found;
}

/** Every operation of the document, in Express's notation. */
function documentedRoutes(document: Json): string[] {
  return Object.entries(document.paths as Json).flatMap(([p, item]) =>
    Object.keys(item as Json).map((method) => `${method} ${p.replace(/\{(\w+)\}/g, ':$1')}`),
  );
}

describe('the OpenAPI document', () => {
  it.each([
    ['the defaults', {}],
    ['bot protection and a metrics token', FULL],
    ['development (open /metrics)', { NODE_ENV: 'development' }],
    ['the Twilio-compatible API', WITH_V2],
  ])('is valid OpenAPI 3.1 with %s', async (_name, env) => {
    const { app } = buildTestApp({ env });
    const document = await served(app);
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(validateOpenApi(document)).toEqual({ valid: true });
  });

  it.each([
    ['the defaults', {}],
    ['bot protection and a metrics token', FULL],
    ['development (open /metrics)', { NODE_ENV: 'development' }],
  ])('describes exactly the routes the app mounts, with %s', async (_name, env) => {
    const { app } = buildTestApp({ env });
    const document = await served(app);
    expect(documentedRoutes(document).sort()).toEqual(mountedRoutes(app).sort());
  });

  it('lists the routes each setting adds', async () => {
    const plain = documentedRoutes(await served(buildTestApp().app));
    const full = documentedRoutes(await served(buildTestApp({ env: FULL }).app));
    expect(plain).not.toContain('get /challenge');
    expect(plain).not.toContain('get /metrics');
    expect(full).toEqual(
      expect.arrayContaining([
        'get /challenge',
        'post /challenge/verify',
        'get /metrics',
        'get /health',
        'get /health/live',
        'get /health/ready',
        'get /dev/outbox',
        'delete /dev/outbox',
        'post /verify-phone',
        'post /verify-phone-code',
        'post /verify-email',
        'get /verify-email-token',
        'post /verify-email-token',
        'post /resend-verification',
        'get /openapi.json',
        'get /docs',
      ]),
    );
  });

  it('has every error code at its status, as the README table lists them', async () => {
    const document = await served(buildTestApp({ env: FULL }).app);
    const seen = new Map<string, Set<number>>();
    for (const item of Object.values(document.paths as Json)) {
      for (const operation of Object.values(item as Json)) {
        for (const [status, response] of Object.entries((operation as Json).responses as Json)) {
          const schema = (response as Json).content?.['application/json']?.schema;
          const codes: string[] =
            schema?.allOf?.[1]?.properties?.error?.properties?.code?.enum ?? [];
          for (const code of codes)
            seen.set(code, (seen.get(code) ?? new Set()).add(Number(status)));
        }
      }
    }
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect([code, [...(seen.get(code) ?? [])]]).toEqual([code, [status]]);
    }
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) {
      if (code === 'internal_error') continue;
      expect(readme).toMatch(new RegExp(`^\\| ${status} \\| [^|\\n]*\`${code}\``, 'm'));
    }
  });

  it('names HTTP Basic auth on every /v2 operation, so the docs page can log in', async () => {
    const document = await served(buildTestApp({ env: WITH_V2 }).app);
    expect(document.components.securitySchemes.twilioBasic).toMatchObject({
      type: 'http',
      scheme: 'basic',
    });
    const v2 = Object.entries(document.paths as Json).filter(([path]) => path.startsWith('/v2/'));
    expect(v2.length).toBeGreaterThan(0);
    for (const [, item] of v2) {
      for (const operation of Object.values(item as Json)) {
        expect((operation as Json).security).toEqual([{ twilioBasic: [] }]);
      }
    }
  });

  it('documents Retry-After on the 403 of a send, which a pumping block answers with', async () => {
    const document = await served(buildTestApp({ env: FULL }).app);
    const forbidden = (document.paths as Json)['/verify-phone'].post.responses['403'];
    expect(forbidden.description).toContain('prefix_blocked');
    expect(Object.keys(forbidden.headers ?? {})).toEqual(['Retry-After']);
  });

  it('takes its request bodies from the schemas the routes validate with', async () => {
    const document = await served(buildTestApp().app);
    const body =
      document.paths['/verify-phone'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['phone']);
    expect(body.properties.phone).toEqual({ type: 'string', maxLength: 64 });
    // The pattern is the purpose allow-list's own, both cases spelt out (JSON Schema has no flags).
    expect(new RegExp(body.properties.purpose.pattern).test('Signup.v2')).toBe(true);
    const resend =
      document.paths['/resend-verification'].post.requestBody.content['application/json'].schema;
    expect(resend.oneOf).toEqual([{ required: ['phone'] }, { required: ['email'] }]);
  });
});

describe('the check of every answer against the document', () => {
  it('runs on the answers of buildTestApp apps', async () => {
    const { app } = buildTestApp();
    const before = checked.count;
    await request(app).post('/verify-phone').send({ phone: '+15551230000' }).expect(202);
    await request(app).get('/nowhere').expect(404);
    expect(checked.count).toBe(before + 2);
  });

  it('refuses answers that drift from the document', async () => {
    const document = await served(buildTestApp().app);
    const pending = {
      success: true,
      status: 'pending',
      channel: 'sms',
      to: '+15551230000',
      expiresAt: '2026-11-21T12:10:00.000Z',
      resendAvailableAt: '2026-11-21T12:00:30.000Z',
      codeLength: 6,
      verificationId: 'abc',
    };
    const exchange = (status: number, body: unknown, contentType = 'application/json') => ({
      method: 'POST',
      url: '/verify-phone',
      status,
      contentType,
      headers: status === 429 ? { 'retry-after': '5' } : {},
      body: JSON.stringify(body),
    });
    expect(checkExchange(document, exchange(202, pending))).toEqual([]);
    // A field renamed, a field added, a status or code the route does not answer, a wrong type.
    const { expiresAt, ...renamed } = pending;
    expect(checkExchange(document, exchange(202, { ...renamed, expires: expiresAt }))).not.toEqual(
      [],
    );
    expect(checkExchange(document, exchange(202, { ...pending, code: '123456' }))).not.toEqual([]);
    expect(checkExchange(document, exchange(200, pending))).not.toEqual([]);
    expect(
      checkExchange(document, exchange(400, { error: { code: 'invalid_code', message: 'x' } })),
    ).not.toEqual([]);
    expect(
      checkExchange(document, exchange(400, { error: { code: 'invalid_phone', message: 'x' } })),
    ).toEqual([]);
    expect(
      checkExchange(document, {
        ...exchange(429, { error: { code: 'rate_limited', message: 'x', retryAfter: 5 } }),
        headers: {},
      }),
    ).not.toEqual([]);
    expect(checkExchange(document, exchange(202, pending, 'text/html'))).not.toEqual([]);
    expect(checkExchange(document, { ...exchange(404, { nope: 1 }), url: '/nowhere' })).not.toEqual(
      [],
    );
  });
});

describe('GET /docs', () => {
  it('renders the document with Swagger UI served from the package, under a strict policy', async () => {
    const { app } = buildTestApp();
    const page = await request(app).get('/docs').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const policy = String(page.headers['content-security-policy']);
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    // No inline script and nothing from elsewhere: every script and style is a file of ours.
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(sources.length).toBeGreaterThanOrEqual(4);
    for (const source of sources) expect(source).toMatch(/^\/(docs\/|openapi\.json)/);
    expect(page.text).not.toMatch(/<script>(?!<\/script>)/);
    for (const source of sources.filter((s) => s?.startsWith('/docs/'))) {
      const asset = await request(app).get(String(source)).expect(200);
      expect(asset.headers['x-content-type-options']).toBe('nosniff');
    }
    const bundle = await request(app).get('/docs/swagger-ui-bundle.js').expect(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
    // The package's demo page (which loads a remote API) and other files are not served.
    await request(app).get('/docs/index.html').expect(404);
    await request(app).get('/docs/..%2Fpackage.json').expect(404);
    const undecodable = await request(app).get('/docs/%E0%A4%A').expect(404);
    expect(undecodable.body.error.code).toBe('not_found');
  });
});
