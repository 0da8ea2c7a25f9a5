import jwt from 'jsonwebtoken';
import request from 'supertest';
import { buildTestApp, FakeClock, lastToken } from '../support/app';

const EMAIL = 'ada@example.com';

describe('POST /verify-email', () => {
  it('emails a link with a text and an HTML part and answers 202 pending', async () => {
    const { app, outbox, config } = buildTestApp();
    const res = await request(app).post('/verify-email').send({ email: ' Ada@Example.com ' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      success: true,
      status: 'pending',
      channel: 'email',
      to: EMAIL,
      expiresAt: expect.any(String),
      resendAvailableAt: expect.any(String),
    });
    const [message] = outbox.list({ to: EMAIL });
    expect(message?.subject).toBe(config.EMAIL_SUBJECT);
    expect(message?.body).toContain('http://verifyd.test/verify-email-token?token=');
    const token = lastToken(outbox, EMAIL);
    expect(JSON.stringify(res.body)).not.toContain(token);
  });

  it('signs an HS256 JWT with the documented claims', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({ clock, env: { PURPOSES: 'verification,signup' } });
    await request(app).post('/verify-email').send({ email: EMAIL, purpose: 'signup' });
    const token = lastToken(outbox, EMAIL);
    const decoded = jwt.decode(token, { complete: true });
    expect(decoded?.header.alg).toBe('HS256');
    const payload = decoded?.payload as jwt.JwtPayload;
    expect(payload).toMatchObject({
      sub: EMAIL,
      purpose: 'signup',
      iss: 'verifyd',
      aud: 'verifyd:email-link',
    });
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.iat).toBe(Math.floor(clock.now() / 1000));
    expect(payload.exp).toBe(Math.floor(clock.now() / 1000) + 600);
  });

  it.each(['nope', 'a@', '@b.com', 'a b@c.com', `${'x'.repeat(250)}@example.com`])(
    'refuses %j with 400 invalid_email',
    async (email) => {
      const { app } = buildTestApp();
      const res = await request(app).post('/verify-email').send({ email });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_email');
    },
  );
});

describe('GET /verify-email-token', () => {
  it('shows a confirm page that POSTs and does not consume the token', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL });
    const token = lastToken(outbox, EMAIL);
    for (let i = 0; i < 3; i++) {
      const page = await request(app).get(`/verify-email-token?token=${token}`);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect(page.text).toContain('method="post"');
      expect(page.text).toContain(`value="${token}"`);
    }
    const res = await request(app).post('/verify-email-token').send({ token });
    expect(res.status).toBe(200);
  });

  it('says at once that a link has expired or is not valid, instead of offering a button', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({ clock });
    await request(app).post('/verify-email').send({ email: EMAIL });
    const token = lastToken(outbox, EMAIL);
    const forged = await request(app).get(`/verify-email-token?token=${token.slice(0, -2)}xx`);
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('Could not confirm');
    expect(forged.text).not.toContain('<form');
    clock.advance(601_000);
    const expired = await request(app).get(`/verify-email-token?token=${token}`);
    expect(expired.status).toBe(400);
    expect(expired.headers['content-type']).toMatch(/text\/html/);
    expect(expired.text).toContain('expired');
    expect(expired.text).not.toContain('<form');
  });

  it('confirms through the page form and answers with a page', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL });
    const token = lastToken(outbox, EMAIL);
    const res = await request(app).post('/verify-email-token').type('form').send({ token });
    expect(res.status).toBe(200);
    expect(res.text).toContain('Email confirmed');
    const again = await request(app).post('/verify-email-token').type('form').send({ token });
    expect(again.status).toBe(400);
    expect(again.text).toContain('already used');
  });
});

describe('POST /verify-email-token', () => {
  it('verifies once, returns a proof, and answers token_used afterwards', async () => {
    const { app, outbox, config } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL, userId: 'u-1' });
    const token = lastToken(outbox, EMAIL);
    const res = await request(app).post('/verify-email-token').send({ token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ verified: true, email: EMAIL, proof: expect.any(String) });
    const proof = jwt.verify(res.body.proof, config.JWT_SECRET, {
      algorithms: ['HS256'],
      audience: config.PROOF_AUDIENCE,
    }) as jwt.JwtPayload;
    expect(proof).toMatchObject({
      sub: EMAIL,
      channel: 'email',
      userId: 'u-1',
      purpose: 'verification',
    });

    const again = await request(app).post('/verify-email-token').send({ token });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('token_used');
  });

  it('keeps the last RESEND_MAX + 1 links of a verification usable; one use consumes them all', async () => {
    const { app, outbox, config } = buildTestApp({ env: { RESEND_MAX: '2' } });
    const tokens: string[] = [];
    for (let i = 0; i < config.RESEND_MAX + 2; i++) {
      await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
      tokens.push(lastToken(outbox, EMAIL));
    }
    // The oldest has dropped out; the next oldest still works, and its use ends the verification.
    const dropped = await request(app).post('/verify-email-token').send({ token: tokens[0] });
    expect(dropped.body.error.code).toBe('token_used');
    await request(app).post('/verify-email-token').send({ token: tokens[1] }).expect(200);
    for (const token of tokens.slice(2)) {
      const res = await request(app).post('/verify-email-token').send({ token });
      expect(res.body.error.code).toBe('token_used');
    }
  });

  it('lets no number of clicks on a dropped-out link kill the newest one', async () => {
    const { app, outbox, config } = buildTestApp({ env: { RESEND_MAX: '2' } });
    await request(app).post('/verify-email').send({ email: EMAIL });
    const old = lastToken(outbox, EMAIL);
    for (let i = 0; i <= config.RESEND_MAX; i++) {
      await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    }
    const newest = lastToken(outbox, EMAIL);
    for (let i = 0; i < config.OTP_MAX_ATTEMPTS + 2; i++) {
      const res = await request(app).post('/verify-email-token').send({ token: old });
      expect(res.body.error.code).toBe('token_used');
    }
    const res = await request(app).post('/verify-email-token').send({ token: newest });
    expect(res.status).toBe(200);
  });

  it('answers token_expired after EMAIL_TOKEN_TTL_SECONDS', async () => {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({ clock });
    await request(app).post('/verify-email').send({ email: EMAIL });
    clock.advance(601_000);
    const res = await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, EMAIL) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('token_expired');
  });

  it('answers invalid_token for a bad signature, a foreign audience and garbage', async () => {
    const { app, outbox, config } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL });
    const token = lastToken(outbox, EMAIL);
    const payload = jwt.decode(token) as jwt.JwtPayload;
    const forged = jwt.sign(payload, 'some-other-secret', { algorithm: 'HS256' });
    const wrongAud = jwt.sign({ ...payload, aud: 'elsewhere' }, config.JWT_SECRET, {
      algorithm: 'HS256',
    });
    for (const bad of [forged, wrongAud, 'not.a.jwt', 'x']) {
      const res = await request(app).post('/verify-email-token').send({ token: bad });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_token');
    }
    expect((await request(app).post('/verify-email-token').send({ token })).status).toBe(200);
  });
});
