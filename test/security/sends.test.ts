import request from 'supertest';
import { buildTestApp, countingSms, FakeClock } from '../support/app';

const PHONE = '+15551234567';

describe('sends and SMS pumping', () => {
  it('caps sends per target at SEND_MAX_PER_TARGET per window', async () => {
    const clock = new FakeClock();
    const { app } = buildTestApp({
      clock,
      env: { SEND_MAX_PER_TARGET: '5', SEND_TARGET_WINDOW_SECONDS: '600' },
    });
    for (let i = 0; i < 5; i++)
      await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const capped = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(capped.status).toBe(429);
    expect(capped.body.error).toMatchObject({ code: 'rate_limited', retryAfter: 600 });
    clock.advance(600_000);
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
  });

  it('caps the distinct targets one IP may send to per hour', async () => {
    const { app } = buildTestApp({ env: { IP_MAX_TARGETS_PER_HOUR: '3' } });
    for (let i = 0; i < 3; i++) {
      await request(app)
        .post('/verify-phone')
        .send({ phone: `+1555000000${i}` })
        .expect(202);
    }
    // The same targets again are fine; a fourth one is not.
    await request(app).post('/verify-phone').send({ phone: '+15550000001' }).expect(202);
    const fourth = await request(app).post('/verify-email').send({ email: 'new@example.com' });
    expect(fourth.status).toBe(429);
    expect(fourth.body.error.code).toBe('rate_limited');
  });

  it('refuses numbers outside SMS_ALLOWED_COUNTRIES with 403 before any provider call', async () => {
    const sms = countingSms();
    const { app } = buildTestApp({ sms: sms.provider, env: { SMS_ALLOWED_COUNTRIES: 'us,CA' } });
    const uk = await request(app).post('/verify-phone').send({ phone: '+442071838750' });
    expect(uk.status).toBe(403);
    expect(uk.body.error).toMatchObject({ code: 'country_not_allowed', country: 'GB' });
    // International freephone (+800) belongs to no country, so no allow-list takes it.
    const unknown = await request(app).post('/verify-phone').send({ phone: '+80012345678' });
    expect(unknown.body.error).toMatchObject({ code: 'country_not_allowed', country: 'unknown' });
    expect(sms.calls).toHaveLength(0);
    await request(app).post('/verify-phone').send({ phone: '+12025550143' }).expect(202);
    // A fictional +1 555 number counts as the calling code's main country, the US.
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    expect(sms.calls).toHaveLength(2);
  });

  it('stops all SMS when the hourly budget is spent', async () => {
    const sms = countingSms();
    const clock = new FakeClock();
    const { app } = buildTestApp({ clock, sms: sms.provider, env: { SMS_HOURLY_BUDGET: '3' } });
    for (let i = 0; i < 3; i++)
      await request(app)
        .post('/verify-phone')
        .send({ phone: `+1555000001${i}` })
        .expect(202);
    const spent = await request(app).post('/verify-phone').send({ phone: '+15550000020' });
    expect(spent.status).toBe(503);
    expect(spent.body.error.code).toBe('sms_budget_exhausted');
    expect(Number(spent.headers['retry-after'])).toBe(3600);
    expect(sms.calls).toHaveLength(3);
    // Email is not part of the SMS budget.
    await request(app).post('/verify-email').send({ email: 'e@example.com' }).expect(202);
    clock.advance(3600_000);
    await request(app).post('/verify-phone').send({ phone: '+15550000020' }).expect(202);
  });

  it('20 concurrent sends to one number reach the provider once (cooldown)', async () => {
    const sms = countingSms();
    const { app } = buildTestApp({ sms: sms.provider, env: { SEND_COOLDOWN_SECONDS: '30' } });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => request(app).post('/verify-phone').send({ phone: PHONE })),
    );
    expect(results.filter((r) => r.status === 202)).toHaveLength(1);
    expect(results.filter((r) => r.status === 429)).toHaveLength(19);
    expect(sms.calls).toHaveLength(1);
  });

  it('20 concurrent sends with no cooldown stay within SEND_MAX_PER_TARGET', async () => {
    const sms = countingSms();
    const { app } = buildTestApp({
      sms: sms.provider,
      env: { SEND_COOLDOWN_SECONDS: '0', SEND_MAX_PER_TARGET: '5' },
    });
    await Promise.all(
      Array.from({ length: 20 }, () => request(app).post('/verify-phone').send({ phone: PHONE })),
    );
    expect(sms.calls).toHaveLength(5);
  });

  it('answers every well-formed address the same way (no enumeration)', async () => {
    const clock = new FakeClock();
    const { app } = buildTestApp({ clock });
    // A send's verificationId is random for every send, known or not.
    const shape = (body: Record<string, unknown>) => ({
      ...body,
      to: '<to>',
      ...('verificationId' in body ? { verificationId: '<id>' } : {}),
    });
    const a = await request(app).post('/verify-email').send({ email: 'known-user@example.com' });
    const b = await request(app).post('/verify-email').send({ email: 'nobody-ever@example.org' });
    expect(a.status).toBe(b.status);
    expect(shape(a.body)).toEqual(shape(b.body));
    const p = await request(app).post('/verify-phone').send({ phone: '+15551230001' });
    const q = await request(app).post('/verify-phone').send({ phone: '+15559870002' });
    expect(shape(p.body)).toEqual(shape(q.body));
  });
});
