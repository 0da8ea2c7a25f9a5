/**
 * Defects an outside user hit in the real server (issue 11), each driven through the assembled app
 * (the same createApp the server runs), and the embedded router held to what the server gets.
 */
import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { createVerificationRouter } from '../../routes/index';
import { buildConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../../src/providers/mock';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, lastCode } from '../support/app';

const PHONE = '+15551234567';
const EMAIL = 'ada@example.com';

/** The link in the newest email to `to`, as the person receiving it would click it. */
function lastLink(outbox: Outbox, to: string): URL {
  const body = outbox.list({ to }).at(-1)?.body ?? '';
  const href = body.match(/https?:\/\/\S+/)?.[0];
  if (!href) throw new Error(`no link in the outbox for ${to}`);
  return new URL(href);
}

/** The hidden inputs of the confirm page's form, as a browser would submit them. */
function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [, name, value] of html.matchAll(
    /<input type="hidden" name="(\w+)" value="([^"]*)">/g,
  ))
    fields[name as string] = (value as string).replaceAll('&amp;', '&');
  return fields;
}

describe('email links with a purpose', () => {
  it.each(['verification', 'login'])(
    'confirms a %s link through the page the link opens, as a browser posts its form',
    async (purpose) => {
      const { app, outbox } = buildTestApp({ env: { PURPOSES: 'verification,login' } });
      await request(app).post('/verify-email').send({ email: EMAIL, purpose }).expect(202);
      const link = lastLink(outbox, EMAIL);
      expect(link.searchParams.get('purpose')).toBe(purpose);

      const page = await request(app).get(`${link.pathname}${link.search}`).expect(200);
      const fields = formFields(page.text);
      expect(fields).toEqual({ token: link.searchParams.get('token'), purpose });
      const confirmed = await request(app)
        .post('/verify-email-token')
        .type('form')
        .send(fields)
        .expect(200);
      expect(confirmed.text).toContain('Email confirmed');
    },
  );

  it('does not echo a malformed purpose from the query into the page', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const token = lastLink(outbox, EMAIL).searchParams.get('token');
    const page = await request(app)
      .get('/verify-email-token')
      .query({ token, purpose: '"><script>x</script>' })
      .expect(200);
    expect(page.text).not.toContain('<script>');
    expect(formFields(page.text)).toEqual({ token });
    // Nor into the page that tells a bad token apart.
    const bad = await request(app)
      .get('/verify-email-token')
      .query({ token: 'a.b.c', purpose: '"><script>x</script>' })
      .expect(400);
    expect(bad.text).not.toContain('<script>');
    expect(bad.text).not.toContain('<form');
  });
});

describe('PUBLIC_URL', () => {
  it('is where email links point, keeping its path', async () => {
    const { app, outbox } = buildTestApp({
      env: { PUBLIC_URL: 'https://id.example.com/verifyd/', HOST: '0.0.0.0', PORT: '8080' },
      publicUrl: undefined,
    });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const link = lastLink(outbox, EMAIL);
    expect(`${link.origin}${link.pathname}`).toBe(
      'https://id.example.com/verifyd/verify-email-token',
    );
  });

  it('without one, a development server never links to a wildcard address', async () => {
    const { app, outbox } = buildTestApp({
      env: { HOST: '0.0.0.0', PORT: '8080' },
      publicUrl: undefined,
    });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    expect(lastLink(outbox, EMAIL).origin).toBe('http://localhost:8080');
  });

  it('EMAIL_LINK_BASE_URL still wins for links that open the app’s own page', async () => {
    const { app, outbox } = buildTestApp({
      env: {
        PUBLIC_URL: 'https://id.example.com',
        EMAIL_LINK_BASE_URL: 'https://app.example.com/confirm',
      },
    });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const link = lastLink(outbox, EMAIL);
    expect(`${link.origin}${link.pathname}`).toBe('https://app.example.com/confirm');
  });
});

describe('bodies', () => {
  it.each([
    ['null', 'null'],
    ['a string', '"x"'],
    ['a number', '1'],
    ['an array', '[]'],
  ])(
    'answers 400 invalid_request to a JSON body that is %s, on every JSON route',
    async (_what, body) => {
      const { app } = buildTestApp({ env: { BOT_PROTECTION: 'pow' } });
      for (const path of [
        '/verify-phone',
        '/verify-phone-code',
        '/verify-email',
        '/verify-email-token',
        '/resend-verification',
        '/challenge/verify',
      ]) {
        const res = await request(app)
          .post(path)
          .set('content-type', 'application/json')
          .send(body);
        expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
          path,
          status: 400,
          code: 'invalid_request',
        });
      }
    },
  );

  it.each([
    [{ phone: 15551234567 }, 'phone', 'phone must be a string'],
    [{ phone: PHONE, userId: 7 }, 'userId', 'userId must be a string'],
    [{ phone: PHONE, userId: 'ada\ud800' }, 'userId', 'userId must be well-formed Unicode text'],
    [{ phone: PHONE, purpose: false }, 'purpose', 'purpose must be a string'],
  ])('says which field has the wrong type: %j', async (body, field, message) => {
    const { app } = buildTestApp();
    const res = await request(app).post('/verify-phone').send(body).expect(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', field });
    expect(res.body.error.message).toContain(message);
  });

  it('takes a form body only where a page posts one', async () => {
    const { app } = buildTestApp();
    const form = await request(app).post('/verify-phone').type('form').send({ phone: PHONE });
    expect(form.status).toBe(415);
    const page = await request(app).post('/verify-email-token').type('form').send({ token: 'x' });
    expect(page.status).toBe(400);
    expect(page.type).toBe('text/html');
  });
});

describe('malformed codes', () => {
  it.each(['12345', '1234567', 'abcdef', '12 34 5x'])(
    'refuses %j with 400 invalid_request and spends none of the code’s attempts',
    async (code) => {
      const { app, outbox } = buildTestApp({ env: { OTP_MAX_ATTEMPTS: '1' } });
      await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
      for (let i = 0; i < 3; i++) {
        const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'invalid_request', field: 'code' });
      }
      // With one attempt allowed, any counted miss above would have killed the code.
      const ok = await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
      expect(ok.status).toBe(200);
    },
  );

  it('still takes a well-formed code written with spaces or dashes', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const code = lastCode(outbox, PHONE);
    const spaced = `${code.slice(0, 3)} - ${code.slice(3)}`;
    await request(app).post('/verify-phone-code').send({ phone: PHONE, code: spaced }).expect(200);
  });
});

describe('phone numbers', () => {
  it('places an Ofcom drama number (+44 7700 900xxx) in GB, so a GB allow-list takes it', async () => {
    const { app, outbox } = buildTestApp({ env: { SMS_ALLOWED_COUNTRIES: 'GB' } });
    await request(app).post('/verify-phone').send({ phone: '+447700900123' }).expect(202);
    expect(outbox.list({ to: '+447700900123' })).toHaveLength(1);
    const us = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(us.body.error).toMatchObject({ code: 'country_not_allowed', country: 'US' });
  });

  it('gives an example a real provider accepts when the provider is real', async () => {
    const twilio = buildTestApp({
      env: {
        SMS_PROVIDER: 'twilio',
        TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
        TWILIO_AUTH_TOKEN: 'x'.repeat(32),
        TWILIO_FROM: '+12125550100',
      },
    });
    const res = await request(twilio.app).post('/verify-phone').send({ phone: '12' }).expect(400);
    const example = res.body.error.message.match(/\+\d+/)?.[0] ?? '';
    // The example must itself pass the same route's validation in that mode.
    const check = await request(twilio.app)
      .post('/verify-phone-code')
      .send({ phone: example, code: '123456' });
    expect(check.body.error?.code).not.toBe('invalid_phone');
  });
});

describe('an embedded router gets what the standalone server gets', () => {
  function embedded(options: { trustProxy?: boolean; env?: Record<string, string> } = {}) {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line));
        done();
      },
    });
    const outbox = new Outbox(10);
    const logger = createLogger({ level: 'debug', destination });
    const host = express();
    if (options.trustProxy) host.set('trust proxy', 1);
    host.use(
      '/auth',
      createVerificationRouter({
        config: buildConfig({ SEND_COOLDOWN_SECONDS: '0', ...options.env }),
        store: new MemoryStore({ sweepIntervalSeconds: 0 }),
        logger,
        sms: createMockSmsProvider(outbox),
        email: createMockEmailProvider(outbox),
        outbox,
        publicUrl: 'https://app.example.com/auth',
      }),
    );
    return { host, outbox, lines };
  }

  it('security headers, the request log and /health', async () => {
    const { host, lines } = embedded();
    const health = await request(host).get('/auth/health').expect(200);
    expect(health.body.status).toBe('ok');
    const res = await request(host).post('/auth/verify-phone').send({ phone: PHONE }).expect(202);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'request completed',
        req: expect.objectContaining({ path: '/auth/verify-phone' }),
      }),
    );
  });

  it('email links that point at the router’s public URL', async () => {
    const { host, outbox } = embedded();
    await request(host).post('/auth/verify-email').send({ email: EMAIL }).expect(202);
    const link = lastLink(outbox, EMAIL);
    expect(`${link.origin}${link.pathname}`).toBe(
      'https://app.example.com/auth/verify-email-token',
    );
  });

  it('a warning when TRUST_PROXY is set but the host app trusts no proxy', async () => {
    const warned = embedded({ env: { TRUST_PROXY: '1' } });
    await request(warned.host).get('/auth/health');
    await request(warned.host).get('/auth/health');
    const warnings = warned.lines.filter((l) => String(l.msg).includes('TRUST_PROXY'));
    expect(warnings).toHaveLength(1);

    const fine = embedded({ env: { TRUST_PROXY: '1' }, trustProxy: true });
    await request(fine.host).get('/auth/health');
    expect(fine.lines.filter((l) => String(l.msg).includes('TRUST_PROXY'))).toEqual([]);
  });
});
