import request from 'supertest';
import { buildTestApp, FakeClock, lastCode, lastToken } from '../support/app';

const PHONE = '+15551234567';
const EMAIL = 'grace@example.com';

describe('POST /resend-verification', () => {
  it('sends a new code that kills the old one and answers like /verify-phone', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const first = lastCode(outbox, PHONE);
    const res = await request(app).post('/resend-verification').send({ phone: PHONE });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      success: true,
      status: 'pending',
      channel: 'sms',
      to: PHONE,
      codeLength: 6,
    });
    const second = lastCode(outbox, PHONE);
    expect(outbox.list({ to: PHONE })).toHaveLength(2);
    // The first code stays usable (a late SMS is typed after asking for another), and using it
    // consumes the second too.
    expect(
      (await request(app).post('/verify-phone-code').send({ phone: PHONE, code: first })).status,
    ).toBe(200);
    expect(
      (await request(app).post('/verify-phone-code').send({ phone: PHONE, code: second })).body
        .error.code,
    ).toBe('code_expired');
  });

  it('sends a new link while the old one stays usable, and either use consumes both', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL });
    const first = lastToken(outbox, EMAIL);
    const res = await request(app).post('/resend-verification').send({ email: EMAIL });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ channel: 'email', to: EMAIL });
    const second = lastToken(outbox, EMAIL);
    expect((await request(app).post('/verify-email-token').send({ token: first })).status).toBe(
      200,
    );
    expect(
      (await request(app).post('/verify-email-token').send({ token: second })).body.error.code,
    ).toBe('token_used');
  });

  it('allows RESEND_MAX resends per window, then 429 rate_limited until the window ends', async () => {
    const clock = new FakeClock();
    const { app } = buildTestApp({ clock, env: { RESEND_MAX: '3', RESEND_WINDOW_SECONDS: '300' } });
    for (let i = 0; i < 3; i++) {
      expect((await request(app).post('/resend-verification').send({ phone: PHONE })).status).toBe(
        202,
      );
    }
    const res = await request(app).post('/resend-verification').send({ phone: PHONE });
    expect(res.status).toBe(429);
    expect(res.body.error).toMatchObject({ code: 'rate_limited', retryAfter: 300 });
    expect(res.headers['retry-after']).toBe('300');
    clock.advance(300_000);
    expect((await request(app).post('/resend-verification').send({ phone: PHONE })).status).toBe(
      202,
    );
  });

  it('enforces SEND_COOLDOWN_SECONDS between any two sends to one target', async () => {
    const clock = new FakeClock();
    const { app } = buildTestApp({ clock, env: { SEND_COOLDOWN_SECONDS: '30' } });
    expect((await request(app).post('/verify-phone').send({ phone: PHONE })).status).toBe(202);
    clock.advance(10_000);
    const soon = await request(app).post('/resend-verification').send({ phone: PHONE });
    expect(soon.status).toBe(429);
    expect(soon.body.error).toMatchObject({ code: 'rate_limited', retryAfter: 20 });
    expect(soon.headers['retry-after']).toBe('20');
    // Another target is not affected.
    expect((await request(app).post('/verify-phone').send({ phone: '+15551234568' })).status).toBe(
      202,
    );
    clock.advance(20_000);
    expect((await request(app).post('/resend-verification').send({ phone: PHONE })).status).toBe(
      202,
    );
  });

  it('leaves the code already delivered usable when a send is refused', async () => {
    const { app, outbox } = buildTestApp({
      env: { SEND_COOLDOWN_SECONDS: '0', SEND_MAX_PER_TARGET: '1' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const delivered = lastCode(outbox, PHONE);
    const refused = await request(app).post('/resend-verification').send({ phone: PHONE });
    expect(refused.status).toBe(429);
    expect(outbox.list({ to: PHONE })).toHaveLength(1);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: delivered })
      .expect(200);
  });

  it('leaves the link already delivered usable during the cooldown', async () => {
    const { app, outbox } = buildTestApp({ env: { SEND_COOLDOWN_SECONDS: '30' } });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const delivered = lastToken(outbox, EMAIL);
    await request(app).post('/resend-verification').send({ email: EMAIL }).expect(429);
    await request(app).post('/verify-email-token').send({ token: delivered }).expect(200);
  });

  it('wants exactly one of phone or email', async () => {
    const { app } = buildTestApp();
    for (const body of [{}, { phone: PHONE, email: EMAIL }]) {
      const res = await request(app).post('/resend-verification').send(body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });
});
