import express from 'express';
import request from 'supertest';
import { createVerificationRouter } from '../../routes/index';
import { createApp } from '../../src/app';
import { buildConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../../src/providers/mock';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, lastCode } from '../support/app';

const PHONE = '+15551234567';

describe('HTTP contract', () => {
  it('answers invalid JSON, wrong content types, big bodies and unknown paths in the error format', async () => {
    const { app } = buildTestApp();
    const badJson = await request(app)
      .post('/verify-phone')
      .set('content-type', 'application/json')
      .send('{"phone":');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('invalid_json');

    const text = await request(app)
      .post('/verify-phone')
      .set('content-type', 'text/plain')
      .send('phone=1');
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');

    const big = await request(app)
      .post('/verify-phone')
      .send({ phone: 'x'.repeat(11_000) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload_too_large');

    const array = await request(app).post('/verify-phone').send([1, 2]);
    expect(array.status).toBe(400);
    expect(array.body.error.code).toBe('invalid_request');

    const missing = await request(app).get('/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('sets security headers and hides X-Powered-By', async () => {
    const { app } = buildTestApp();
    const res = await request(app).get('/health');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';frame-ancestors 'none'",
    );
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('gives the confirm page a policy that allows its inline style and its form, nothing else', async () => {
    const { app } = buildTestApp();
    const res = await request(app).get('/verify-email-token?token=abc');
    const policy = res.headers['content-security-policy'];
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("style-src 'unsafe-inline'");
    expect(policy).toContain("form-action 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('applies per-IP limits with standard RateLimit headers and a Retry-After on 429', async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_SECONDS: '60' } });
    for (let i = 0; i < 3; i++) {
      const res = await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: '123456' });
      expect(res.status).toBe(400);
      expect(res.headers.ratelimit).toMatch(/r=\d+/);
      expect(res.headers['ratelimit-policy']).toMatch(/q=3/);
    }
    const limited = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body.error.retryAfter).toBe(Number(limited.headers['retry-after']));
  });

  it('keys per-IP limits on the client address behind a trusted proxy', async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_MAX: '1', TRUST_PROXY: '1' } });
    const a = await request(app).get('/challenge').set('x-forwarded-for', '203.0.113.1');
    const b = await request(app).get('/challenge').set('x-forwarded-for', '203.0.113.2');
    const a2 = await request(app).get('/challenge').set('x-forwarded-for', '203.0.113.1');
    expect(a.status).not.toBe(429);
    expect(b.status).not.toBe(429);
    expect(a2.status).toBe(429);
  });
});

describe('GET /health', () => {
  it('reports the store and the bot-protection mode, and nothing about pending codes', async () => {
    const { app } = buildTestApp({ env: { BOT_PROTECTION: 'pow' } });
    await request(app).post('/verify-phone').send({ phone: PHONE, altcha: 'x' });
    await request(app).post('/verify-email').send({ email: 'h@example.com' });
    const res = await request(app).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      store: { backend: 'memory', ok: true },
      botProtection: { kind: 'pow', mode: 'adaptive' },
    });
  });

  it('answers 503 with ok:false when the store does not answer, and stays up', async () => {
    const { app, store } = buildTestApp();
    store.ping = async () => {
      throw new Error('down');
    };
    const res = await request(app).get('/health');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ status: 'unavailable', store: { backend: 'memory', ok: false } });
    expect((await request(app).get('/health')).status).toBe(503);
  });
});

describe('GET /dev/outbox', () => {
  it('lists messages newest last, filters by recipient, and clears', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE });
    await request(app).post('/verify-email').send({ email: 'x@example.com' });
    const all = await request(app).get('/dev/outbox');
    expect(all.body.messages.map((m: { channel: string }) => m.channel)).toEqual(['sms', 'email']);
    const sms = await request(app).get('/dev/outbox').query({ to: PHONE });
    expect(sms.body.messages).toEqual([
      {
        id: expect.any(String),
        channel: 'sms',
        to: PHONE,
        body: expect.stringMatching(/\d{6}/),
        code: expect.stringMatching(/^\d{6}$/),
        link: null,
        sentAt: expect.any(String),
      },
    ]);
    expect(sms.body.messages[0].body).toContain(sms.body.messages[0].code);
    const email = await request(app).get('/dev/outbox?to=x@example.com');
    expect(email.body.messages[0]).toMatchObject({ channel: 'email', subject: expect.any(String) });
    expect((await request(app).delete('/dev/outbox')).status).toBe(204);
    expect((await request(app).get('/dev/outbox')).body.messages).toEqual([]);
  });

  it('is not mounted in production or without a mock outbox', async () => {
    const config = buildConfig();
    const deps = {
      store: new MemoryStore(),
      logger: createLogger({ level: 'silent' }),
      sms: createMockSmsProvider(new Outbox(10)),
      email: createMockEmailProvider(new Outbox(10)),
    };
    // createApp itself, as src/server.ts runs it: buildTestApp always hands it an outbox, and
    // production settings with mock providers would not pass buildConfig.
    const production = createApp({
      ...deps,
      config: { ...config, NODE_ENV: 'production' },
      outbox: new Outbox(10),
    });
    const noOutbox = createApp({ ...deps, config });
    for (const app of [production, noOutbox]) {
      for (const path of [
        '/dev/outbox',
        '/dev',
        '/dev/inbox.js',
        '/dev/outbox/latest',
        '/dev/outbox/events',
      ]) {
        const response = await request(app).get(path);
        expect(response.status).toBe(404);
        expect(response.body.error.code).toBe('not_found');
      }
    }
  });
});

describe('createVerificationRouter', () => {
  it('mounts under a path of an existing app and keeps the error format', async () => {
    const outbox = new Outbox(10);
    const host = express();
    host.get('/', (_req, res) => {
      res.send('host app');
    });
    host.use(
      '/auth',
      createVerificationRouter({
        config: buildConfig({ SEND_COOLDOWN_SECONDS: '0' }),
        store: new MemoryStore(),
        logger: createLogger({ level: 'silent' }),
        sms: createMockSmsProvider(outbox),
        email: createMockEmailProvider(outbox),
        outbox,
      }),
    );
    expect((await request(host).get('/')).text).toBe('host app');
    expect((await request(host).post('/auth/verify-phone').send({ phone: PHONE })).status).toBe(
      202,
    );
    const ok = await request(host)
      .post('/auth/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(ok.body.verified).toBe(true);
    const bad = await request(host).post('/auth/verify-phone').send({ phone: 'x' });
    expect(bad.body.error.code).toBe('invalid_phone');
  });
});
