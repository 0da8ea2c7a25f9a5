import jwt from 'jsonwebtoken';
import request from 'supertest';
import type { EmailMessage } from '../../src/providers/types';
import { buildTestApp, lastToken } from '../support/app';

/**
 * Emailed codes: POST /verify-email with "method": "code" sends a code instead of a link, checked
 * at POST /verify-email-code with the answers, attempt limits and proof of phone codes.
 */

const EMAIL = 'ada@example.com';

/** An email provider that keeps what it was handed, HTML part included. */
function recordingEmail() {
  const sent: EmailMessage[] = [];
  return {
    sent,
    provider: {
      name: 'recording',
      async send(message: EmailMessage) {
        sent.push(message);
        return { id: `m${sent.length}` };
      },
    },
  };
}

const codeIn = (text: string | undefined) => text?.match(/\b\d{6}\b/)?.[0] ?? '';

describe('emailed codes', () => {
  it('sends a code in the text and the HTML part, with the configured subject and template', async () => {
    const email = recordingEmail();
    const { app } = buildTestApp({
      email: email.provider,
      env: { EMAIL_CODE_SUBJECT: 'Your Acme code', EMAIL_CODE_TEMPLATE: '<Acme> code: {code}' },
    });
    const res = await request(app)
      .post('/verify-email')
      .send({ email: ' Ada@Example.com ', method: 'code' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'pending',
      channel: 'email',
      to: EMAIL,
      codeLength: 6,
      verificationId: expect.any(String),
    });
    const [message] = email.sent;
    expect(message?.subject).toBe('Your Acme code');
    const code = codeIn(message?.text);
    expect(message?.text).toContain(`<Acme> code: ${code}`);
    // The template is text: escaped in the HTML part, the code set apart.
    expect(message?.html).toContain('&lt;Acme&gt; code: <strong');
    expect(message?.html).toContain(`>${code}</strong>`);
    expect(message?.text).not.toContain('token=');
  });

  it("shows an emailed code in the outbox's code field, read where EMAIL_CODE_TEMPLATE puts it", async () => {
    const { app } = buildTestApp({
      env: { EMAIL_CODE_TEMPLATE: 'Acme 2026: your code is {code}.' },
    });
    await request(app).post('/verify-email').send({ email: EMAIL, method: 'code' });
    const latest = await request(app).get('/dev/outbox/latest').query({ to: EMAIL });
    expect(latest.status).toBe(200);
    expect(latest.body.message).toMatchObject({
      channel: 'email',
      code: expect.stringMatching(/^\d{6}$/),
      link: null,
    });
    const check = await request(app)
      .post('/verify-email-code')
      .send({ email: EMAIL, code: latest.body.message.code });
    expect(check.status).toBe(200);

    // A link email carries no code.
    await request(app).post('/verify-email').send({ email: 'bob@example.com' });
    const link = await request(app).get('/dev/outbox/latest').query({ to: 'bob@example.com' });
    expect(link.body.message).toMatchObject({
      code: null,
      link: expect.stringContaining('token='),
    });
  });

  it('checks the code once: wrong, then right with a proof for the address, then gone', async () => {
    const { app, outbox, config } = buildTestApp();
    const sent = await request(app).post('/verify-email').send({ email: EMAIL, method: 'code' });
    const code = codeIn(outbox.list({ to: EMAIL }).at(-1)?.body);
    const wrong = await request(app)
      .post('/verify-email-code')
      .send({ email: EMAIL, code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatchObject({ code: 'invalid_code', attemptsRemaining: 4 });
    const right = await request(app)
      .post('/verify-email-code')
      .send({ email: 'Ada@example.com', code, verificationId: sent.body.verificationId });
    expect(right.status).toBe(200);
    expect(right.body).toMatchObject({ verified: true, email: EMAIL });
    const claims = jwt.verify(right.body.proof, config.JWT_SECRET) as jwt.JwtPayload;
    expect(claims).toMatchObject({ sub: EMAIL, channel: 'email' });
    const again = await request(app).post('/verify-email-code').send({ email: EMAIL, code });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('code_expired');
  });

  it('compares at most OTP_MAX_ATTEMPTS codes in a burst of wrong ones', async () => {
    const { app, outbox } = buildTestApp({ env: { OTP_MAX_ATTEMPTS: '3' } });
    await request(app).post('/verify-email').send({ email: EMAIL, method: 'code' });
    const code = codeIn(outbox.list({ to: EMAIL }).at(-1)?.body);
    const wrong = code === '000000' ? '111111' : '000000';
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(app).post('/verify-email-code').send({ email: EMAIL, code: wrong }),
      ),
    );
    const codes = answers.map((a) => a.body.error.code);
    expect(codes.filter((c) => c === 'invalid_code')).toHaveLength(3);
    expect(codes.filter((c) => c === 'too_many_attempts')).toHaveLength(7);
    // Spent: the right code is refused too.
    const right = await request(app).post('/verify-email-code').send({ email: EMAIL, code });
    expect(right.status).toBe(429);
  });

  it('shares the address cooldown with links, and keeps codes and links apart', async () => {
    const { app, outbox } = buildTestApp({ env: { SEND_COOLDOWN_SECONDS: '30' } });
    expect((await request(app).post('/verify-email').send({ email: EMAIL })).status).toBe(202);
    const code = await request(app).post('/verify-email').send({ email: EMAIL, method: 'code' });
    expect(code.status).toBe(429);
    expect(code.body.error.code).toBe('rate_limited');
    // The link is untouched, and no code exists to check.
    const none = await request(app)
      .post('/verify-email-code')
      .send({ email: EMAIL, code: '123456' });
    expect(none.body.error.code).toBe('code_expired');
    const link = await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, EMAIL) });
    expect(link.status).toBe(200);
  });

  it('refuses an unknown method', async () => {
    const { app } = buildTestApp();
    const res = await request(app).post('/verify-email').send({ email: EMAIL, method: 'sms' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', field: 'method' });
  });
});
