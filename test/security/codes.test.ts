import request from 'supertest';
import { cryptoRandom } from '../../services/runtime';
import { buildConfig, loadConfig } from '../../src/config';
import * as cryptoHelpers from '../../src/crypto';
import { ConfigError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, lastCode, lastToken } from '../support/app';

// The module object itself (not an interop copy), so spies see the calls made by the service.
const nodeCrypto: typeof import('node:crypto') = require('node:crypto');

const PHONE = '+15551234567';
const EMAIL = 'lin@example.com';

describe('codes', () => {
  it('come from crypto.randomInt over the full 10^OTP_LENGTH range', () => {
    const spy = jest.spyOn(nodeCrypto, 'randomInt');
    cryptoRandom.int(1_000_000);
    expect(spy).toHaveBeenCalledWith(0, 1_000_000);
    spy.mockRestore();
  });

  it('carry at least 20 bits (6 digits) by default and in production', () => {
    expect(buildConfig().OTP_LENGTH).toBe(6);
    expect(Math.log2(10 ** buildConfig().OTP_LENGTH)).toBeGreaterThanOrEqual(19.9);
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        OTP_LENGTH: '4',
        STORE: 'redis',
        OTP_SECRET: 'x'.repeat(32),
        JWT_SECRET: 'y'.repeat(32),
        SMS_PROVIDER: 'twilio',
        TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef',
        TWILIO_AUTH_TOKEN: 't',
        TWILIO_FROM: '+15005550006',
        EMAIL_PROVIDER: 'sendgrid',
        SENDGRID_API_KEY: 'k',
        EMAIL_FROM: 'a@b.co',
        PUBLIC_URL: 'https://verify.example.com',
      }),
    ).toThrow(new ConfigError('Invalid OTP_LENGTH: production needs at least 6 digits.'));
  });

  it('are spread over the whole range (no fixed digits, leading zeros kept)', async () => {
    const { app, outbox } = buildTestApp();
    const codes: string[] = [];
    for (let i = 0; i < 200; i++) {
      const phone = `+1555${String(1000000 + i)}`;
      await request(app).post('/verify-phone').send({ phone });
      codes.push(lastCode(outbox, phone));
    }
    expect(codes.every((c) => /^\d{6}$/.test(c))).toBe(true);
    expect(new Set(codes).size).toBeGreaterThan(190);
    for (let position = 0; position < 6; position++) {
      expect(new Set(codes.map((c) => c[position])).size).toBeGreaterThan(5);
    }
  });

  it('and tokens are stored only as HMACs: no key or value holds the code, the token or its jti', async () => {
    const store = new MemoryStore({ keyPrefix: 'scan:' });
    const { app, outbox } = buildTestApp({ store });
    await request(app).post('/verify-phone').send({ phone: PHONE });
    await request(app).post('/verify-email').send({ email: EMAIL });
    const code = lastCode(outbox, PHONE);
    const token = lastToken(outbox, EMAIL);
    const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;
    const dump: string[] = [];
    for await (const entry of store.scan())
      dump.push(entry.key, (await store.get(entry.key)) ?? '');
    expect(dump.length).toBeGreaterThan(4);
    const all = dump.join('\n');
    for (const secret of [code, token, jti, PHONE, EMAIL]) expect(all).not.toContain(secret);
  });

  it('are compared in constant time', async () => {
    const spy = jest.spyOn(nodeCrypto, 'timingSafeEqual');
    const store = new MemoryStore();
    await store.admit({
      counters: [],
      secret: {
        key: 'k',
        hash: cryptoHelpers.hmac('s', '123456'),
        ttlSeconds: 60,
        keep: 1,
        maxAttempts: 5,
        binding: 'b',
      },
    });
    await store.attempt({ key: 'k', hash: cryptoHelpers.hmac('s', '654321'), maxAttempts: 5 });
    expect(spy).toHaveBeenCalled();
    spy.mockRestore();
  });
});
