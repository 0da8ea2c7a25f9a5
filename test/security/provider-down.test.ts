import request from 'supertest';
import type { RandomSource } from '../../services/runtime';
import { buildTestApp, lastCode } from '../support/app';

const PHONE = '+15551234567';
const EMAIL = 'down@example.com';

/** Predictable codes, so the test knows the code of a message that was never delivered. */
function knownCodes(): RandomSource & { last: () => string } {
  // Ids (link jtis, verification ids) count apart, so that last() is the last code drawn.
  let n = 123455;
  let ids = 0;
  return { int: () => ++n, id: () => `id-${++ids}`, last: () => String(n) };
}

describe('provider down', () => {
  it('answers 502 delivery_failed on a provider failure and leaves no usable code', async () => {
    const random = knownCodes();
    const { app, sms } = buildTestApp({ random });
    sms.failNext(1);
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('delivery_failed');
    const undelivered = random.last();
    const check = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: undelivered });
    expect(check.status).toBe(400);
    expect(check.body.error.code).toBe('code_expired');
  });

  it('leaves the earlier code of the verification usable when a resend is refused', async () => {
    const { app, sms, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const first = lastCode(outbox, PHONE);
    sms.failNext(1);
    await request(app).post('/resend-verification').send({ phone: PHONE }).expect(502);
    // The person still holds the first code: a failed resend must not take it away.
    await request(app).post('/verify-phone-code').send({ phone: PHONE, code: first }).expect(200);
  });

  it('lets the person retry at once after the provider recovers, without spending a resend', async () => {
    const { app, sms, outbox } = buildTestApp({
      env: { SEND_COOLDOWN_SECONDS: '30', RESEND_MAX: '1' },
    });
    sms.failNext(1);
    await request(app).post('/resend-verification').send({ phone: PHONE }).expect(502);
    // No cooldown and no resend were used up by the failed attempt.
    await request(app).post('/resend-verification').send({ phone: PHONE }).expect(202);
    const ok = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(ok.status).toBe(200);
  });

  it('keeps a slow refusal a refusal, for email too', async () => {
    const { app, email } = buildTestApp({ env: { SEND_COOLDOWN_SECONDS: '30' } });
    email.failNext(1, { delayMs: 50 });
    const res = await request(app).post('/verify-email').send({ email: EMAIL });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'delivery_failed', outcome: 'refused' });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
  });

  it('keeps the code and the limits charged when the outcome is unknown', async () => {
    const random = knownCodes();
    const { app, sms } = buildTestApp({
      random,
      env: { SEND_COOLDOWN_SECONDS: '30', RESEND_MAX: '1' },
    });
    sms.failNext(1, { outcome: 'unknown', delayMs: 50 });
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'delivery_failed', outcome: 'unknown' });
    const mayArrive = random.last();
    // The SMS may still arrive: a retry must not send a second one before the cooldown ends.
    const retry = await request(app).post('/resend-verification').send({ phone: PHONE });
    expect(retry.status).toBe(429);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: mayArrive })
      .expect(200);
  });
});
