import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { buildTestApp } from '../support/app';

const ROUTES = [
  '/verify-phone',
  '/verify-phone-code',
  '/verify-email',
  '/verify-email-token',
  '/resend-verification',
];
const RUNS_PER_ROUTE = 5000;
const GET_ROUTES = [
  '/verify-email-token',
  '/dev/outbox',
  '/dev/outbox/latest',
  '/dev',
  '/challenge',
  '/health',
];

const fieldValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '+15551234567',
    '+1 (555) 123-4567',
    'ada@example.com',
    '123456',
    'a.b.c',
    '',
    ' ',
    '\u0000',
    '+',
  ),
  fc.string({ minLength: 2_000, maxLength: 12_000 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.anything(), { maxLength: 5 }),
  fc.object({ maxDepth: 4 }),
);

const bodyObject = fc.record(
  {
    phone: fieldValue,
    email: fieldValue,
    code: fieldValue,
    token: fieldValue,
    purpose: fieldValue,
    userId: fieldValue,
    altcha: fieldValue,
    challengeSession: fieldValue,
    __proto__: fieldValue,
    constructor: fieldValue,
  },
  { requiredKeys: [] },
);

/** A raw body and the content type it is sent with: valid JSON, broken JSON, or the wrong type. */
const request = fc.oneof(
  bodyObject.map((body) => ({ body: JSON.stringify(body), type: 'application/json' })),
  fc
    .jsonValue({ maxDepth: 6 })
    .map((body) => ({ body: JSON.stringify(body), type: 'application/json' })),
  fc.string({ maxLength: 200 }).map((body) => ({ body, type: 'application/json' })),
  fc
    .string({ unit: 'binary', maxLength: 200 })
    .map((body) => ({ body, type: 'application/json; charset=utf-8' })),
  fc
    .tuple(
      bodyObject,
      fc.constantFrom(
        'text/plain',
        'application/xml',
        'multipart/form-data',
        'application/x-www-form-urlencoded',
        '',
        'application/json; charset=utf-16',
        'application/json; charset=bogus',
      ),
    )
    .map(([body, type]) => ({ body: JSON.stringify(body), type })),
  fc
    .string({ maxLength: 300 })
    .map((body) => ({ body, type: 'application/x-www-form-urlencoded' })),
);

describe('malformed input at volume', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const { app } = buildTestApp();
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it(`answers ${RUNS_PER_ROUTE * ROUTES.length}+ random requests with 2xx/4xx JSON only, never 5xx`, async () => {
    const statuses = new Map<number, number>();
    for (const route of ROUTES) {
      await fc.assert(
        fc.asyncProperty(request, async ({ body, type }) => {
          const headers: Record<string, string> = {};
          if (type) headers['content-type'] = type;
          const res = await fetch(base + route, { method: 'POST', headers, body });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400 && res.headers.get('content-type')?.includes('json')) {
            const parsed = (await res.json()) as { error: { code: string; message: string } };
            expect(typeof parsed.error.code).toBe('string');
            expect(typeof parsed.error.message).toBe('string');
          } else {
            await res.arrayBuffer();
          }
        }),
        { numRuns: RUNS_PER_ROUTE },
      );
    }
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...GET_ROUTES),
        fc.string({ unit: 'binary', maxLength: 300 }),
        async (route, query) => {
          const res = await fetch(
            `${base}${route}?token=${encodeURIComponent(query)}&to=${encodeURIComponent(query)}`,
          );
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 1000 },
    );
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(ROUTES.length * RUNS_PER_ROUTE);
    expect(statuses.get(413)).toBeGreaterThan(0);
    expect(statuses.get(415)).toBeGreaterThan(0);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
  }, 600_000);
});
