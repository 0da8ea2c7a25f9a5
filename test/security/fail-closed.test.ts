import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { buildTestApp, lastCode, lastToken } from '../support/app';
import {
  describeMemcached,
  describeRedis,
  type PrivateServer,
  sleep,
  startPrivateMemcached,
  startPrivateRedis,
  uniquePrefix,
} from '../support/servers';

const PHONE = '+15551234567';
const EMAIL = 'closed@example.com';

function failClosedSuite(
  start: () => Promise<PrivateServer>,
  env: (server: PrivateServer) => Record<string, string>,
) {
  let server: PrivateServer;
  let store: Store;

  beforeAll(async () => {
    server = await start();
    store = await createStore(
      buildConfig({
        ...env(server),
        KEY_PREFIX: uniquePrefix('fail-closed'),
        STORE_TIMEOUT_MS: '300',
      }),
    );
  });

  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('answers 503 store_unavailable on every route while the store is down, then recovers by itself', async () => {
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
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('store_unavailable');
    }
    const health = await request(app).get('/health');
    expect(health.status).toBe(503);
    expect(health.body.store.ok).toBe(false);

    await server.start();
    const deadline = Date.now() + 15_000;
    while ((await request(app).get('/health')).status !== 200) {
      if (Date.now() > deadline) throw new Error('service did not recover within 15 s');
      await sleep(100);
    }
    // The restarted server is empty: the old code is gone (never a success), new sends work.
    const old = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(old.body.error.code).toBe('code_expired');
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const ok = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(ok.status).toBe(200);
  });

  it('rejects instead of waving requests through when the rate limiter cannot count', async () => {
    const { app } = buildTestApp({ store, env: { RATE_LIMIT_MAX: '1' } });
    await server.stop();
    try {
      const res = await request(app).get('/challenge');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('store_unavailable');
    } finally {
      await server.start();
    }
  });
}

describeRedis('fail closed with Redis', () => {
  failClosedSuite(startPrivateRedis, (server) => ({ STORE: 'redis', REDIS_URL: server.address }));
});

describeMemcached('fail closed with Memcached', () => {
  failClosedSuite(startPrivateMemcached, (server) => ({
    STORE: 'memcached',
    MEMCACHED_SERVERS: server.address,
  }));
});
