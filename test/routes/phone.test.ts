import jwt from 'jsonwebtoken';
import request from 'supertest';
import { buildTestApp, FakeClock, lastCode } from '../support/app';

const PHONE = '+15551234567';

describe('POST /verify-phone', () => {
  it('sends a code by SMS and answers 202 pending without the code', async () => {
    const { app, outbox } = buildTestApp();
    const res = await request(app).post('/verify-phone').send({ phone: '+1 (555) 123-4567' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      success: true,
      status: 'pending',
      channel: 'sms',
      to: PHONE,
      expiresAt: expect.any(String),
      resendAvailableAt: expect.any(String),
      codeLength: 6,
      // At least 128 random bits, base64url.
      verificationId: expect.stringMatching(/^[\w-]{22,}$/),
    });
    const code = lastCode(outbox, PHONE);
    expect(code).toMatch(/^\d{6}$/);
    expect(outbox.list({ to: PHONE })[0]?.body).toBe(`Your verification code is ${code}`);
    expect(JSON.stringify(res.body)).not.toContain(code);
  });

  it('puts expiresAt OTP_TTL_SECONDS ahead and honours OTP_LENGTH and the template', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({
      clock,
      env: {
        OTP_LENGTH: '8',
        OTP_TTL_SECONDS: '120',
        SMS_TEMPLATE: 'Code {code} for Acme',
        SEND_COOLDOWN_SECONDS: '30',
      },
    });
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.body.codeLength).toBe(8);
    expect(Date.parse(res.body.expiresAt)).toBe(clock.now() + 120_000);
    expect(Date.parse(res.body.resendAvailableAt)).toBe(clock.now() + 30_000);
    expect(outbox.list({ to: PHONE })[0]?.body).toMatch(/^Code \d{8} for Acme$/);
  });

  it.each([
    '12345',
    'not a phone',
    '+999123',
    '',
    // A number inside other text, or with an extension, is not taken as the number it contains.
    '📞+15551234567',
    'tel:+15551234567',
    '+15551234568 ext. 123',
    '+15551234568x123',
    '+1555123456７',
  ])('refuses %j with 400 invalid_phone', async (phone) => {
    const { app, outbox } = buildTestApp();
    const res = await request(app).post('/verify-phone').send({ phone });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_phone');
    expect(res.body.error.message).toEqual(expect.any(String));
    expect(outbox.size).toBe(0);
  });

  it('refuses unassigned numbers when a real provider is configured', async () => {
    const { app } = buildTestApp({
      env: {
        SMS_PROVIDER: 'twilio',
        TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef',
        TWILIO_AUTH_TOKEN: 't',
        TWILIO_FROM: '+15005550006',
      },
    });
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_phone');
  });
});

describe('POST /verify-phone-code', () => {
  it('verifies the right code once and returns a proof JWT', async () => {
    const { app, outbox, config } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE, userId: 'user-42' });
    const code = lastCode(outbox, PHONE);
    const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ verified: true, phone: PHONE, proof: expect.any(String) });
    const claims = jwt.verify(res.body.proof, config.JWT_SECRET, {
      algorithms: ['HS256'],
      audience: config.PROOF_AUDIENCE,
      issuer: config.JWT_ISSUER,
    }) as jwt.JwtPayload;
    expect(claims).toMatchObject({ sub: PHONE, channel: 'sms', purpose: 'verification' });

    const again = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('code_expired');
  });

  it('carries the userId of the send into the proof', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE, userId: 'u-7' });
    const res = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect((jwt.decode(res.body.proof) as jwt.JwtPayload).userId).toBe('u-7');
  });

  it('answers a wrong code with invalid_code and the attempts remaining', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const wrong = lastCode(outbox, PHONE) === '000000' ? '111111' : '000000';
    const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: wrong });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_code', attemptsRemaining: 4 });
  });

  it('kills the code after OTP_MAX_ATTEMPTS misses, even for the right code', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const code = lastCode(outbox, PHONE);
    const wrong = code === '000000' ? '111111' : '000000';
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: wrong });
      remaining.push(res.body.error.attemptsRemaining);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('too_many_attempts');
    expect(res.headers['retry-after']).toBe(String(res.body.error.retryAfter));
  });

  it('answers code_expired when no code was sent and after the TTL', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({ clock });
    const none = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: '123456' });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('code_expired');

    await request(app).post('/verify-phone').send({ phone: PHONE });
    clock.advance(600_001);
    const late = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(late.body.error.code).toBe('code_expired');
  });

  it('keeps the earlier codes of the verification usable after a new send, with one id', async () => {
    const { app, outbox, config } = buildTestApp({ env: { RESEND_MAX: '2' } });
    const codes: string[] = [];
    const ids = new Set<string>();
    for (let i = 0; i < config.RESEND_MAX + 2; i++) {
      const res = await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
      ids.add(res.body.verificationId);
      codes.push(lastCode(outbox, PHONE));
    }
    // One verification: the same id for every send, and its newest RESEND_MAX + 1 codes.
    expect(ids.size).toBe(1);
    const dropped = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: codes[0] });
    // (Unless the dropped code happens to equal a kept one: one chance in a million per code.)
    if (!codes.slice(1).includes(codes[0] as string)) {
      expect(dropped.body.error.code).toBe('invalid_code');
    }
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: codes[1] })
      .expect(200);
    // A success consumes every code of the verification.
    const after = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: codes.at(-1) });
    expect(after.body.error.code).toBe('code_expired');
  });

  it('shares one attempt count among the codes of a verification', async () => {
    const { app, outbox, config } = buildTestApp({ env: { RESEND_MAX: '2' } });
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const first = lastCode(outbox, PHONE);
    const wrong = String((Number(first) + 1) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < config.OTP_MAX_ATTEMPTS - 1; i++) {
      await request(app).post('/verify-phone-code').send({ phone: PHONE, code: wrong }).expect(400);
    }
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    if (lastCode(outbox, PHONE) === wrong) return; // one chance in a million
    const last = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: wrong });
    expect(last.body.error.attemptsRemaining).toBe(0);
    // The lane is used up: a right code is refused too, and the next send starts afresh.
    const locked = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: first });
    expect(locked.body.error.code).toBe('too_many_attempts');
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) })
      .expect(200);
  });

  it('validates the body', async () => {
    const { app } = buildTestApp();
    const missing = await request(app).post('/verify-phone-code').send({ phone: PHONE });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: 'invalid_request', field: 'code' });
    const badType = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: 123456 });
    expect(badType.body.error.code).toBe('invalid_request');
  });
});
