/**
 * TEST_IDENTITIES: numbers that verify with a fixed code, for CI and app-store review. They get no
 * message and pass the send limits, but never the attempt limits (a fixed code must not become
 * guessable by resending), stop working at their expiry, and every use is logged without the code.
 */
import { Writable } from 'node:stream';
import request from 'supertest';
import { createApp } from '../../src/app';
import { buildConfig, loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../../src/providers/mock';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, countingSms, FakeClock } from '../support/app';
import { sectionBlocks } from '../support/readme';

const TEST_NUMBER = '+15005550006';
const CODE = '123456';
const OTHER_TEST_NUMBER = '+15551230001';
const OTHER_CODE = '654321';
const REAL = '+15551234567';
const DAY = 86_400_000;

/** Every limit at its default, but for the ones a test names. */
function app(env: Record<string, string> = {}, clock = new FakeClock()) {
  const counting = countingSms();
  const lines: string[] = [];
  const test = buildTestApp({
    env: {
      // buildTestApp relaxes the limits for other suites; these tests need the real defaults.
      RATE_LIMIT_MAX: '100000',
      SEND_COOLDOWN_SECONDS: '30',
      SEND_MAX_PER_TARGET: '5',
      RESEND_MAX: '3',
      IP_MAX_TARGETS_PER_HOUR: '20',
      TARGET_MAX_FAILURES: '10',
      OTP_MAX_ATTEMPTS: '5',
      TEST_IDENTITIES: `${TEST_NUMBER}=${CODE}, ${OTHER_TEST_NUMBER}=${OTHER_CODE}:2026-11-22`,
      TEST_IDENTITIES_EXPIRE: '2027-03-01',
      LOG_LEVEL: 'info',
      ...env,
    },
    clock,
    sms: counting.provider,
    logLines: lines,
  });
  return { ...test, clock, smsCalls: counting.calls, lines };
}

const send = (target: ReturnType<typeof app>, phone = TEST_NUMBER) =>
  request(target.app).post('/verify-phone').send({ phone });
const check = (target: ReturnType<typeof app>, code: string, extra: object = {}) =>
  request(target.app)
    .post('/verify-phone-code')
    .send({ phone: TEST_NUMBER, code, ...extra });

describe('a test identity', () => {
  it('gets no message, and its fixed code verifies it, with or without the verificationId', async () => {
    const target = app();
    const sent = await send(target).expect(202);
    expect(sent.body).toMatchObject({ status: 'pending', to: TEST_NUMBER, codeLength: 6 });
    expect(target.smsCalls).toEqual([]);
    expect(target.outbox.list()).toEqual([]);
    const verified = await check(target, CODE, { verificationId: sent.body.verificationId });
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ verified: true, phone: TEST_NUMBER });

    await send(target).expect(202);
    await check(target, CODE).expect(200);
    // Used once, as any code.
    expect((await check(target, CODE)).body.error.code).toBe('code_expired');
  });

  it('is written the way people type it: spaces and dashes in the configured number', async () => {
    const target = app({ TEST_IDENTITIES: '+1 500-555-0006=123456' });
    await send(target).expect(202);
    await check(target, CODE).expect(200);
    expect(target.smsCalls).toEqual([]);
  });

  it('passes the send limits in a burst, where another number is stopped by its cooldown', async () => {
    const target = app();
    const burst = await Promise.all(Array.from({ length: 20 }, () => send(target)));
    expect(burst.map((answer) => answer.status)).toEqual(Array(20).fill(202));
    const resends = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(target.app).post('/resend-verification').send({ phone: TEST_NUMBER }),
      ),
    );
    expect(resends.map((answer) => answer.status)).toEqual(Array(10).fill(202));
    await check(target, CODE).expect(200);

    const real = await Promise.all(Array.from({ length: 20 }, () => send(target, REAL)));
    expect(real.filter((answer) => answer.status === 202)).toHaveLength(1);
    expect(real.filter((answer) => answer.status === 429)).toHaveLength(19);
    expect(target.smsCalls.map((m) => m.to)).toEqual([REAL]);
  });

  it('keeps the attempt limit of its code: after OTP_MAX_ATTEMPTS wrong guesses the fixed code fails', async () => {
    const target = app();
    await send(target).expect(202);
    const guesses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => check(target, String(200000 + i))),
    );
    expect(guesses.filter((a) => a.body.error?.code === 'invalid_code')).toHaveLength(5);
    const right = await check(target, CODE);
    expect(right.status).toBe(429);
    expect(right.body.error.code).toBe('too_many_attempts');
  });

  it('keeps the recipient lock: resending does not buy more guesses at the fixed code', async () => {
    const target = app();
    let wrong = 0;
    // Each send brings a fresh code with fresh attempts, but the recipient's failures count on.
    for (let round = 0; round < 4; round++) {
      await send(target).expect(202);
      const guesses = await Promise.all(
        Array.from({ length: 5 }, () => check(target, String(300000 + wrong++))),
      );
      expect(guesses.every((a) => a.status === 400 || a.status === 429)).toBe(true);
    }
    await send(target).expect(202);
    const right = await check(target, CODE);
    expect(right.status).toBe(429);
    expect(right.body.error.code).toBe('too_many_attempts');
  });

  it('stops at its expiry: the code it set dies then, and later sends are ordinary ones', async () => {
    // The other entry expires at 2026-11-22T00:00Z; the clock starts at 2026-11-21T12:00Z.
    const clock = new FakeClock(Date.UTC(2026, 10, 21, 23, 59, 0));
    const target = app({}, clock);
    const early = await request(target.app)
      .post('/verify-phone')
      .send({ phone: OTHER_TEST_NUMBER })
      .expect(202);
    // The code lives to the entry's end, not the ten minutes of an ordinary code.
    expect(early.body.expiresAt).toBe('2026-11-22T00:00:00.000Z');
    clock.advance(61_000);
    const late = await request(target.app)
      .post('/verify-phone-code')
      .send({ phone: OTHER_TEST_NUMBER, code: OTHER_CODE });
    expect(late.body.error.code).toBe('code_expired');

    await request(target.app).post('/verify-phone').send({ phone: OTHER_TEST_NUMBER }).expect(202);
    expect(target.smsCalls.map((m) => m.to)).toEqual([OTHER_TEST_NUMBER]);
    const fixed = await request(target.app)
      .post('/verify-phone-code')
      .send({ phone: OTHER_TEST_NUMBER, code: OTHER_CODE });
    expect(fixed.body.error.code).toBe('invalid_code');
    // The entry without its own expiry lives on until TEST_IDENTITIES_EXPIRE.
    await send(target).expect(202);
    await check(target, CODE).expect(200);
    clock.current = Date.UTC(2027, 2, 1);
    await send(target).expect(202);
    expect(target.smsCalls.map((m) => m.to)).toEqual([OTHER_TEST_NUMBER, TEST_NUMBER]);
  });

  it('logs each use, never the code nor the number', async () => {
    const target = app();
    await send(target).expect(202);
    await check(target, CODE).expect(200);
    const lines = target.lines.map((line) => JSON.parse(line));
    const uses = lines.filter((line) => line.testIdentity === true);
    expect(uses).toHaveLength(1);
    expect(uses[0]).toMatchObject({
      level: 30,
      channel: 'sms',
      target: expect.stringMatching(/^[\w-]{22}$/),
      msg: 'test identity used: fixed code set, no SMS sent',
    });
    const startup = lines.find((line) => line.testIdentities !== undefined);
    expect(startup).toMatchObject({ testIdentities: 2, live: 2 });
    const everything = target.lines.join('\n');
    expect(everything).not.toContain(CODE);
    expect(everything).not.toContain(OTHER_CODE);
    expect(everything).not.toContain('5005550006');
    expect(everything).not.toContain('5551230001');
  });

  it('logs each use at warn in production', async () => {
    const lines: string[] = [];
    const config = buildConfig({
      TEST_IDENTITIES: `${TEST_NUMBER}=${CODE}`,
      TEST_IDENTITIES_EXPIRE: new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10),
    });
    const outbox = new Outbox(10);
    // createApp as the server runs it, with production's setting; production's other
    // requirements (a real store and providers) do not change what is logged here.
    const production = createApp({
      config: { ...config, NODE_ENV: 'production', LOG_LEVEL: 'warn' },
      store: new MemoryStore(),
      logger: createLogger({
        level: 'warn',
        destination: new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(...chunk.toString().split('\n').filter(Boolean));
            done();
          },
        }),
      }),
      sms: createMockSmsProvider(outbox),
      email: createMockEmailProvider(outbox),
    });
    await request(production).post('/verify-phone').send({ phone: TEST_NUMBER }).expect(202);
    await request(production)
      .post('/verify-phone-code')
      .send({ phone: TEST_NUMBER, code: CODE })
      .expect(200);
    const uses = lines.map((line) => JSON.parse(line)).filter((line) => line.testIdentity);
    expect(uses).toEqual([expect.objectContaining({ level: 40 })]);
    expect(outbox.list()).toEqual([]);
  });

  it('leaves other numbers as they were', async () => {
    const target = app();
    await send(target, REAL).expect(202);
    const code = /\d{6}/.exec(target.smsCalls.at(-1)?.body ?? '')?.[0];
    expect(code).toMatch(/^\d{6}$/);
    const wrong = await request(target.app)
      .post('/verify-phone-code')
      .send({ phone: REAL, code: CODE === code ? OTHER_CODE : CODE });
    expect(wrong.body.error.code).toBe('invalid_code');
    await request(target.app).post('/verify-phone-code').send({ phone: REAL, code }).expect(200);
  });
});

describe('TEST_IDENTITIES in the configuration', () => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ NODE_ENV: 'test', ...env });
      return [];
    } catch (error) {
      return [...(error as { problems: string[] }).problems];
    }
  };
  const inDays = (days: number) => new Date(Date.now() + days * DAY).toISOString().slice(0, 10);
  const production = {
    NODE_ENV: 'production',
    STORE: 'redis',
    OTP_SECRET: 'x'.repeat(40),
    JWT_SECRET: 'y'.repeat(40),
    PUBLIC_URL: 'https://verify.example.com',
    SMS_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
    TWILIO_AUTH_TOKEN: 'token',
    TWILIO_FROM: '+15005550006',
    EMAIL_PROVIDER: 'sendgrid',
    SENDGRID_API_KEY: 'SG.key',
    EMAIL_FROM: 'verify@example.com',
  };

  it("loads the README's example", () => {
    const block = sectionBlocks('## Test identities').find((b) => b.lang === 'sh');
    const env = Object.fromEntries(
      (block?.code ?? '')
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(Object.keys(env)).toEqual(['TEST_IDENTITIES', 'TEST_IDENTITIES_EXPIRE']);
    expect(problems(env)).toEqual([]);
  });

  it('accepts entries with a default or an own expiry, as a date or a time', () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      TEST_IDENTITIES: '+15005550006=123456,+15551230001=654321:2027-01-31T12:00:00+01:00',
      TEST_IDENTITIES_EXPIRE: '2027-03-01',
    });
    expect(config.TEST_IDENTITIES).toContain('+15005550006');
  });

  it.each([
    [
      'an address, with the reason',
      { TEST_IDENTITIES: 'qa@example.com=246810', TEST_IDENTITIES_EXPIRE: '2027-03-01' },
      'Invalid TEST_IDENTITIES: entry 1 of 1: expected a phone number: email verification sends signed single-use links',
    ],
    [
      'an entry without any expiry',
      { TEST_IDENTITIES: '+15005550006=123456' },
      'Missing TEST_IDENTITIES_EXPIRE: entry 1 of 1 of TEST_IDENTITIES has no expiry',
    ],
    [
      'a code of another length than OTP_LENGTH',
      { TEST_IDENTITIES: '+15005550006=1234:2027-03-01' },
      'Invalid TEST_IDENTITIES: entry 1 of 1: expected a code of OTP_LENGTH (6) digits.',
    ],
    [
      'a date that does not exist',
      { TEST_IDENTITIES: '+15005550006=123456', TEST_IDENTITIES_EXPIRE: '2027-02-30' },
      'Invalid TEST_IDENTITIES_EXPIRE (got "2027-02-30"): expected a date such as 2027-03-01',
    ],
    [
      'a number twice',
      { TEST_IDENTITIES: '+15005550006=123456:2027-03-01,+1 500 555 0006=111111:2027-03-01' },
      'Invalid TEST_IDENTITIES: entry 2 of 2: expected each number once.',
    ],
    [
      'an entry that is no entry',
      { TEST_IDENTITIES: '+15005550006:123456', TEST_IDENTITIES_EXPIRE: '2027-03-01' },
      'Invalid TEST_IDENTITIES: entry 1 of 1: expected number=code or number=code:expiry',
    ],
  ])('refuses %s, naming the entry but never its number or code', (_label, env, expected) => {
    const found = problems(env);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(expected);
    for (const secret of ['123456', '246810', '111111', 'qa@example.com', '5005550006']) {
      expect(found[0]).not.toContain(secret);
    }
  });

  it('refuses in production any entry that expires more than 90 days from now', () => {
    const far = problems({
      ...production,
      TEST_IDENTITIES: `+15005550006=123456,+12125550123=654321:${inDays(30)}`,
      TEST_IDENTITIES_EXPIRE: inDays(92),
    });
    expect(far).toEqual([
      expect.stringMatching(
        /^Invalid TEST_IDENTITIES: entry 1 of 2: expected an expiry at most 90 days away in production \(by \d{4}-\d{2}-\d{2}\)/,
      ),
    ]);
    expect(
      problems({
        ...production,
        TEST_IDENTITIES: '+15005550006=123456',
        TEST_IDENTITIES_EXPIRE: inDays(89),
      }),
    ).toEqual([]);
    // Outside production a long-lived entry is a CI fixture, and allowed.
    expect(
      problems({ TEST_IDENTITIES: '+15005550006=123456', TEST_IDENTITIES_EXPIRE: inDays(400) }),
    ).toEqual([]);
  });

  it('refuses with a real SMS provider a number the send route would refuse', () => {
    expect(
      problems({
        ...production,
        TEST_IDENTITIES: '+15551234567=123456',
        TEST_IDENTITIES_EXPIRE: inDays(30),
      }),
    ).toEqual([
      expect.stringContaining('expected a valid, assigned phone number in international format'),
    ]);
  });
});
