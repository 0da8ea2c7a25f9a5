import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createProviders } from '../../src/providers';
import { buildTestApp, RELAXED_LIMITS } from '../support/app';
import {
  type FakeSendGrid,
  type FakeTwilio,
  sendgridError,
  startFakeSendGrid,
  startFakeTwilio,
  twilioError,
} from '../support/fake-providers';

/**
 * The assembled app with the real providers as the server builds them (createProviders from the
 * config), pointed at the fake Twilio and SendGrid through TWILIO_API_BASE_URL and
 * SENDGRID_API_BASE_URL: what a client is answered, what an operator reads in the log, and what
 * happens to the code and the send limits when a provider fails.
 */

const SID = 'AC0123456789abcdef0123456789abcdef';
const AUTH_TOKEN = 'twilio-auth-token-0123456789abcdef';
const API_KEY = 'SG.sendgrid-key.0123456789abcdef';
const PHONE = '+12125550123';
const EMAIL = 'ada@example.org';

let twilio: FakeTwilio;
let sendgrid: FakeSendGrid;

beforeAll(async () => {
  [twilio, sendgrid] = await Promise.all([
    startFakeTwilio({ accountSid: SID, authToken: AUTH_TOKEN }),
    startFakeSendGrid(API_KEY),
  ]);
});

afterAll(() => Promise.all([twilio.close(), sendgrid.close()]));

beforeEach(() => {
  twilio.requests.length = 0;
  sendgrid.requests.length = 0;
});

afterEach(() => {
  expect([...twilio.violations, ...sendgrid.violations]).toEqual([]);
  twilio.violations.length = 0;
  sendgrid.violations.length = 0;
});

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The app as `npm start` wires it, with a real cooldown; `env` overrides single settings. */
function start(env: Record<string, string> = {}) {
  const settings = {
    ...RELAXED_LIMITS,
    SEND_COOLDOWN_SECONDS: '30',
    PROVIDER_TIMEOUT_MS: '300',
    SMS_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_FROM: '+15005550006',
    TWILIO_API_BASE_URL: twilio.baseUrl,
    EMAIL_PROVIDER: 'sendgrid',
    SENDGRID_API_KEY: API_KEY,
    EMAIL_FROM: 'verifyd <no-reply@example.com>',
    SENDGRID_API_BASE_URL: sendgrid.baseUrl,
    ...env,
  };
  const { sms, email } = createProviders(buildConfig(settings), {
    logger: createLogger({ level: 'silent' }),
  });
  const lines: string[] = [];
  const { app } = buildTestApp({ env: settings, sms, email, logLines: lines });
  return {
    app,
    lines,
    /** The provider-failure lines (there is one per failed send). */
    failures: () =>
      lines
        .map((line) => JSON.parse(line) as LogLine)
        .filter((line) => typeof line.provider === 'string' && line.level >= 40),
  };
}

/** The code in the SMS the fake Twilio received last. */
function codeSent(): string {
  const code = twilio.form().get('Body')?.match(/\d{6}/)?.[0];
  if (!code) throw new Error('no code in the last Twilio request');
  return code;
}

/** The token in the email the fake SendGrid received last. */
function tokenSent(): string {
  const text = (sendgrid.mail().content as { value: string }[])[0]?.value ?? '';
  const token = text.match(/token=([\w.-]+)/)?.[1];
  if (!token) throw new Error('no link in the last SendGrid request');
  return token;
}

/** Nothing in the log may help an attacker or leak a live code or link. */
function expectCleanLog(lines: string[], secrets: string[]) {
  const text = lines.join('\n');
  for (const secret of [AUTH_TOKEN, API_KEY, PHONE, PHONE.slice(1), EMAIL, ...secrets]) {
    expect(text).not.toContain(secret);
  }
  expect(text).not.toMatch(/"(Body|body|text|html)"\s*:\s*"[^[]/);
}

describe('base URLs from the config (item 15)', () => {
  it('sends SMS and email through TWILIO_API_BASE_URL and SENDGRID_API_BASE_URL', async () => {
    const { app } = start();

    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);

    expect(twilio.requests.map((r) => r.url)).toEqual([
      `/2010-04-01/Accounts/${SID}/Messages.json`,
    ]);
    expect(sendgrid.requests.map((r) => r.url)).toEqual(['/v3/mail/send']);
    // Item 11, end to end: the SMS may not outlive its code (OTP_TTL_SECONDS, 600 by default),
    // whose life started a few milliseconds before the request.
    const validity = Number(twilio.form().get('ValidityPeriod'));
    expect(validity).toBeLessThanOrEqual(600);
    expect(validity).toBeGreaterThanOrEqual(595);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: codeSent() })
      .expect(200);
    await request(app).post('/verify-email-token').send({ token: tokenSent() }).expect(200);
  });

  it('keeps ValidityPeriod within Twilio range for a long OTP_TTL_SECONDS', async () => {
    const { app } = start({ OTP_TTL_SECONDS: '86400' });

    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);

    expect(twilio.form().get('ValidityPeriod')).toBe('36000');
  });
});

describe('Twilio errors as answers and log lines (items 6 and 8)', () => {
  it.each([
    [21211, 'invalid_phone', 400],
    [21217, 'invalid_phone', 400],
    [21612, 'invalid_phone', 400],
    [21614, 'invalid_phone', 400],
    [21610, 'recipient_opted_out', 403],
    [21408, 'country_not_allowed', 403],
  ])('Twilio %p → %s (%p), logged at warn', async (twilioCode, code, status) => {
    const { app, lines, failures } = start();
    twilio.next(twilioError(400, twilioCode, `The 'To' number ${PHONE} is refused.`));

    const res = await request(app).post('/verify-phone').send({ phone: PHONE });

    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toEqual(expect.any(String));
    expect(failures()).toEqual([
      expect.objectContaining({
        level: 40,
        provider: 'twilio',
        channel: 'sms',
        httpStatus: 400,
        providerCode: twilioCode,
        reason: expect.any(String),
        outcome: 'refused',
      }),
    ]);
    expectCleanLog(lines, [codeSent()]);
  });

  it('answers a wrong auth token (20003) with 503 provider_misconfigured, logged at error', async () => {
    const { app, lines, failures } = start({ TWILIO_AUTH_TOKEN: 'wrong-token-0123456789' });

    const res = await request(app).post('/verify-phone').send({ phone: PHONE });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('provider_misconfigured');
    expect(failures()).toEqual([
      expect.objectContaining({
        level: 50,
        provider: 'twilio',
        httpStatus: 401,
        providerCode: 20003,
        reason: expect.stringContaining('authentication'),
      }),
    ]);
    expectCleanLog(lines, ['wrong-token-0123456789', codeSent()]);
  });

  it('answers a Twilio 429 with 503 provider_rate_limited and Retry-After', async () => {
    const { app, failures } = start();
    twilio.next({
      ...(twilioError(429, 20429, 'Too Many Requests') as Extract<
        ReturnType<typeof twilioError>,
        { kind: 'json' }
      >),
      headers: { 'Retry-After': '12' },
    });

    const res = await request(app).post('/verify-phone').send({ phone: PHONE });

    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: 'provider_rate_limited', retryAfter: 12 });
    expect(res.headers['retry-after']).toBe('12');
    expect(failures()).toEqual([
      expect.objectContaining({ level: 40, httpStatus: 429, providerCode: 20429 }),
    ]);
  });

  it('answers a 201 with status failed as a failure, not a success', async () => {
    const { app, failures } = start();
    twilio.next({
      kind: 'json',
      status: 201,
      body: twilio.messageFor(new URLSearchParams({ To: PHONE, From: '+15005550006' }), {
        status: 'failed',
        error_code: 30_008,
      }),
    });

    const res = await request(app).post('/verify-phone').send({ phone: PHONE });

    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'delivery_failed', outcome: 'refused' });
    expect(failures()).toEqual([
      expect.objectContaining({ httpStatus: 201, providerCode: 30_008, outcome: 'refused' }),
    ]);
  });
});

describe('SendGrid errors as answers and log lines (items 6 and 8)', () => {
  it('answers a wrong API key with 503 provider_misconfigured, logged at error', async () => {
    const { app, lines, failures } = start({ SENDGRID_API_KEY: 'SG.revoked-key' });

    const res = await request(app).post('/verify-email').send({ email: EMAIL });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('provider_misconfigured');
    expect(failures()).toEqual([
      expect.objectContaining({
        level: 50,
        provider: 'sendgrid',
        channel: 'email',
        httpStatus: 401,
      }),
    ]);
    expectCleanLog(lines, ['SG.revoked-key', tokenSent()]);
  });

  it('answers a 403 (unverified sender) with 503 provider_misconfigured', async () => {
    const { app, failures } = start();
    sendgrid.next(
      sendgridError(403, [
        {
          message: 'The from address does not match a verified Sender Identity.',
          field: 'from',
          help: 'https://sendgrid.com/docs/for-developers/sending-email/sender-identity/',
        },
      ]),
    );

    const res = await request(app).post('/verify-email').send({ email: EMAIL });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('provider_misconfigured');
    expect(failures()).toEqual([expect.objectContaining({ level: 50, httpStatus: 403 })]);
  });

  it('answers a SendGrid 429 with 503 provider_rate_limited and Retry-After', async () => {
    const { app } = start();
    sendgrid.next(sendgridError(429, [{ message: 'rate limit', field: null, help: null }]));

    const res = await request(app).post('/verify-email').send({ email: EMAIL });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('provider_rate_limited');
    // SendGrid gave no Retry-After: the default wait.
    expect(res.headers['retry-after']).toBe('30');
  });
});

describe('refused sends are refunded, unknown outcomes are not (item 7)', () => {
  it('after a refusal the code is void and an immediate retry is allowed', async () => {
    const { app } = start();
    twilio.next(twilioError(400, 21612, 'not reachable'));

    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(400);
    const refusedCode = codeSent();
    const check = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: refusedCode });
    expect(check.body.error.code).toBe('code_expired');

    // No cooldown was spent: the retry reaches Twilio and its code works.
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    expect(twilio.requests).toHaveLength(2);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: codeSent() })
      .expect(200);
  });

  it.each([
    ['Twilio does not answer in time', { kind: 'hang' } as const],
    ['the connection drops after Twilio read the request', { kind: 'reset' } as const],
    ['Twilio answers 500', twilioError(500, 20500, 'Internal Server Error')],
  ])('when %s, the code stays valid and the cooldown holds', async (_what, playback) => {
    const { app, lines, failures } = start();
    twilio.next(playback);

    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'delivery_failed', outcome: 'unknown' });
    const maybeDelivered = codeSent();

    // An immediate retry would send a second SMS: the cooldown refuses it, nothing reaches Twilio.
    const retry = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(retry.status).toBe(429);
    expect(retry.body.error.code).toBe('rate_limited');
    expect(twilio.requests).toHaveLength(1);

    expect(failures()).toEqual([
      expect.objectContaining({ level: 40, provider: 'twilio', outcome: 'unknown' }),
    ]);
    expectCleanLog(lines, [maybeDelivered]);

    // The SMS may arrive after all, and its code works.
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: maybeDelivered })
      .expect(200);
  });

  it('keeps the send counted: a timeout uses up SEND_MAX_PER_TARGET', async () => {
    const { app } = start({ SEND_COOLDOWN_SECONDS: '0', SEND_MAX_PER_TARGET: '2' });
    twilio.next({ kind: 'hang' }, { kind: 'hang' });

    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(502);
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(502);
    const third = await request(app).post('/verify-phone').send({ phone: PHONE });

    expect(third.status).toBe(429);
    expect(twilio.requests).toHaveLength(2);
  });

  it('keeps the link valid when SendGrid does not answer in time', async () => {
    const { app } = start();
    sendgrid.next({ kind: 'hang' });

    const res = await request(app).post('/verify-email').send({ email: EMAIL });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'delivery_failed', outcome: 'unknown' });
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(429);

    await request(app).post('/verify-email-token').send({ token: tokenSent() }).expect(200);
  });
});
