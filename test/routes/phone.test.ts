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

  it.each(['12345', 'not a phone', '+999123', ''])(
    'refuses %j with 400 invalid_phone',
    async (phone) => {
      const { app, outbox } = buildTestApp();
      const res = await request(app).post('/verify-phone').send({ phone });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_phone');
      expect(res.body.error.message).toEqual(expect.any(String));
      expect(outbox.size).toBe(0);
    },
  );

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

  it('replaces an earlier code when a new one is sent', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const first = lastCode(outbox, PHONE);
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const second = lastCode(outbox, PHONE);
    if (first !== second) {
      const old = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: first });
      expect(old.body.error.code).toBe('invalid_code');
    }
    const res = await request(app).post('/verify-phone-code').send({ phone: PHONE, code: second });
    expect(res.status).toBe(200);
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
