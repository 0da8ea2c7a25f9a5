/**
 * PostgreSQL going away under a running verifyd: a private server (never the shared one) is
 * stopped as a crash would stop it, then restarted, and frozen, then thawed. While it is gone
 * every route answers 503 store_unavailable, never a success and never a 500; afterwards the
 * service recovers by itself, and since the tables are logged, a code sent before the crash
 * still works after it.
 */
import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { buildTestApp, lastCode, lastToken } from '../support/app';
import { sleep, uniquePrefix } from '../support/servers';
import { describePostgres, type PrivatePostgres, startPrivatePostgres } from '../support/sql';

const PHONE = '+15551234567';
const EMAIL = 'outage@example.com';

/** Polls /health until it answers 200; resolves how long that took. */
async function untilHealthy(app: Parameters<typeof request>[0], limitMs = 30_000) {
  const started = Date.now();
  while ((await request(app).get('/health')).status !== 200) {
    if (Date.now() - started > limitMs) throw new Error(`not healthy within ${limitMs} ms`);
    await sleep(20);
  }
  return Date.now() - started;
}

describePostgres('PostgreSQL outage over HTTP', () => {
  let server: PrivatePostgres;
  let store: Store;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    store = await createStore(
      buildConfig({
        STORE: 'postgres',
        DATABASE_URL: server.url,
        KEY_PREFIX: uniquePrefix('sql-outage'),
        STORE_TIMEOUT_MS: '500',
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await server?.destroy();
  });

  it('answers 503 store_unavailable on every route while it is down, recovers by itself, and the pending code survives the crash', async () => {
    const { app, outbox } = buildTestApp({ store, env: { RATE_LIMIT_MAX: '1000' } });
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const code = lastCode(outbox, PHONE);
    const token = lastToken(outbox, EMAIL);

    await server.stop();
    const calls = [
      () => request(app).post('/verify-phone').send({ phone: PHONE }),
      () => request(app).post('/verify-phone-code').send({ phone: PHONE, code }),
      () => request(app).post('/verify-email').send({ email: EMAIL }),
      () => request(app).post('/verify-email-token').send({ token }),
      () => request(app).post('/resend-verification').send({ phone: PHONE }),
      () => request(app).get(`/verify-email-token?token=${token}`),
    ];
    for (const call of calls) {
      const res = await call();
      expect({ status: res.status, code: res.body.error?.code }).toEqual({
        status: 503,
        code: 'store_unavailable',
      });
    }
    const health = await request(app).get('/health');
    expect(health.status).toBe(503);
    expect(health.body.store).toEqual({ backend: 'postgres', ok: false });

    const restarted = Date.now();
    await server.start();
    const answeredMs = Date.now() - restarted;
    const recoveryMs = await untilHealthy(app);
    // VERIFYD_MEASURE=1 prints the figures the README quotes.
    if (process.env.VERIFYD_MEASURE) {
      console.log(
        `postgres outage: the server answered ${answeredMs} ms after pg_ctl start (crash recovery included), verifyd was healthy ${recoveryMs} ms after that`,
      );
    }

    // Nothing refused during the outage happened; what was committed before it did.
    const ok = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(ok.status).toBe(200);
    await request(app).post('/verify-email-token').send({ token }).expect(200);
  });

  it('answers 503 within STORE_TIMEOUT_MS while the server is frozen, then recovers when it thaws', async () => {
    const { app } = buildTestApp({ store, env: { RATE_LIMIT_MAX: '1000' } });
    await request(app).get('/health').expect(200);
    await server.pause();
    try {
      const started = Date.now();
      const res = await request(app).post('/verify-phone').send({ phone: '+15551230000' });
      expect({ status: res.status, code: res.body.error?.code }).toEqual({
        status: 503,
        code: 'store_unavailable',
      });
      // Every store call of the route has the 500 ms deadline; none waits for the frozen server.
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      server.resume();
    }
    await untilHealthy(app);
    await request(app).post('/verify-phone').send({ phone: '+15551230001' }).expect(202);
  });
});
