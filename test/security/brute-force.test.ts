import request from 'supertest';
import type { RandomSource } from '../../services/runtime';
import { buildTestApp, FakeClock, lastCode } from '../support/app';

const PHONE = '+15551234567';

/** Codes are predictable here so a test can aim misses precisely; 999999 is never issued. */
const sequentialRandom = (): RandomSource => {
  let n = 100000;
  return { int: () => n++, id: () => `id-${n++}` };
};

const miss = (app: Parameters<typeof request>[0], phone = PHONE) =>
  request(app).post('/verify-phone-code').send({ phone, code: '999999' });

describe('brute force', () => {
  it('locks a target after TARGET_MAX_FAILURES misses across resends until the window ends', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({
      clock,
      random: sequentialRandom(),
      env: {
        TARGET_MAX_FAILURES: '10',
        TARGET_FAILURE_WINDOW_SECONDS: '3600',
        OTP_MAX_ATTEMPTS: '5',
      },
    });
    // Two codes, five misses each: the per-code limit alone would allow endless fresh codes.
    for (let round = 0; round < 2; round++) {
      await request(app).post('/resend-verification').send({ phone: PHONE }).expect(202);
      for (let i = 0; i < 5; i++) expect((await miss(app)).status).toBe(400);
    }
    await request(app).post('/resend-verification').send({ phone: PHONE });
    const locked = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('too_many_attempts');
    expect(locked.body.error.retryAfter).toBeGreaterThan(3500);
    // Failures never refuse a send (a stranger's guesses must not keep the owner from a new
    // code), but the new code's checks stay refused until the window ends.
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const stillLocked = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(stillLocked.body.error.code).toBe('too_many_attempts');
    // Another number is unaffected.
    await request(app).post('/verify-phone').send({ phone: '+15551234568' }).expect(202);

    clock.advance(3600_000);
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const ok = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(ok.status).toBe(200);
  });

  it("refuses a locked target's guesses without spending its code", async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({
      clock,
      random: sequentialRandom(),
      env: { TARGET_MAX_FAILURES: '3', TARGET_FAILURE_WINDOW_SECONDS: '60', OTP_MAX_ATTEMPTS: '5' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const code = lastCode(outbox, PHONE);
    for (let i = 0; i < 3; i++) expect((await miss(app)).status).toBe(400);
    // Locked: the right code is refused, and neither it nor more misses touch the pending code.
    for (const guess of [code, '999999', '999999', code]) {
      const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: guess });
      expect(res.body.error.code).toBe('too_many_attempts');
    }
    clock.advance(60_000);
    // Three misses so far of five: the code is still pending and still accepts the right guess.
    await request(app).post('/verify-phone-code').send({ phone: PHONE, code }).expect(200);
  });

  it('counts each of 50 concurrent misses that compared a live code, and none at a dead one', async () => {
    const { app, store } = buildTestApp({
      random: sequentialRandom(),
      env: { TARGET_MAX_FAILURES: '1000', OTP_MAX_ATTEMPTS: '20' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const results = await Promise.all(Array.from({ length: 50 }, () => miss(app)));
    expect(results.filter((r) => r.body.error?.code === 'invalid_code')).toHaveLength(20);
    expect(results.filter((r) => r.body.error?.code === 'too_many_attempts')).toHaveLength(30);
    // The per-target failure counter saw every guess that was compared, and none of the 30 at the
    // dead code: those cannot succeed, and counting them would let one send and one burst spend
    // the number's whole daily budget.
    const failures = [];
    for await (const entry of (store as { scan: () => AsyncIterable<{ key: string }> }).scan()) {
      if (/^\{[^}]+\}limit:fail$/.test(entry.key)) failures.push(await store.get(entry.key));
    }
    expect(failures).toEqual(['20']);
  });

  it('locks the target when the misses arrive concurrently', async () => {
    const { app, outbox } = buildTestApp({
      random: sequentialRandom(),
      env: { TARGET_MAX_FAILURES: '10' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const code = lastCode(outbox, PHONE);
    await Promise.all(Array.from({ length: 30 }, () => miss(app)));
    const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(res.status).toBe(429);
  });

  it('clears the failures of a target on success', async () => {
    const { app, outbox } = buildTestApp({
      random: sequentialRandom(),
      env: { TARGET_MAX_FAILURES: '10' },
    });
    for (let round = 0; round < 2; round++) {
      await request(app).post('/verify-phone').send({ phone: PHONE });
      for (let i = 0; i < 4; i++) await miss(app);
      await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: lastCode(outbox, PHONE) })
        .expect(200);
    }
    // Had the failures stayed, 4 more would cross 10 and lock the number.
    await request(app).post('/verify-phone').send({ phone: PHONE });
    for (let i = 0; i < 4; i++) expect((await miss(app)).status).toBe(400);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) })
      .expect(200);
  });
});

describe('purpose and target binding', () => {
  it('a code issued for one purpose or one number verifies nothing else', async () => {
    const { app, outbox } = buildTestApp({ env: { PURPOSES: 'verification,signup,login' } });
    await request(app).post('/verify-phone').send({ phone: PHONE, purpose: 'signup' });
    const code = lastCode(outbox, PHONE);
    const otherPurpose = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code, purpose: 'login' });
    expect(otherPurpose.body.error.code).toBe('code_expired');
    const defaultPurpose = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code });
    expect(defaultPurpose.body.error.code).toBe('code_expired');
    const otherNumber = await request(app)
      .post('/verify-phone-code')
      .send({ phone: '+15551234568', code, purpose: 'signup' });
    expect(otherNumber.body.error.code).toBe('code_expired');
    const right = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code, purpose: 'signup' });
    expect(right.status).toBe(200);
  });

  it('an email token issued for one purpose fails for another', async () => {
    const { app, outbox } = buildTestApp({
      env: { PURPOSES: 'verification,signup,password-reset' },
    });
    await request(app).post('/verify-email').send({ email: 'p@example.com', purpose: 'signup' });
    const token = outbox.list({ to: 'p@example.com' })[0]!.body.match(/token=([\w.-]+)/)![1]!;
    const wrong = await request(app)
      .post('/verify-email-token')
      .send({ token, purpose: 'password-reset' });
    expect(wrong.body.error.code).toBe('invalid_token');
    const right = await request(app).post('/verify-email-token').send({ token, purpose: 'signup' });
    expect(right.status).toBe(200);
  });
});
