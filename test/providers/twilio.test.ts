import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { DeliveryFailedError } from '../../src/errors';
import { createTwilioSmsProvider, type TwilioSmsProviderOptions } from '../../src/providers/twilio';
import type { SmsMessage } from '../../src/providers/types';
import { type FakeTwilio, startFakeTwilio, twilioError } from '../support/fake-providers';

/**
 * The Twilio adapter runs the real `twilio` SDK against a loopback server that checks each request
 * against Twilio's own API description (spec/twilio-messages-create.json) and plays back Twilio's
 * answers, errors included.
 */

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'test-auth-token-0123456789abcdef';
const FROM = '+15005550006';
const SERVICE_SID = 'MG0123456789abcdef0123456789abcdef';
const TO = '+15558675310';
const CODE = '493817';
const BODY = `Your verification code is ${CODE}`;

let fake: FakeTwilio;

beforeAll(async () => {
  fake = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
});

afterAll(() => fake.close());

beforeEach(() => {
  fake.requests.length = 0;
});

// Whatever a test plays back, what the SDK sent must be what Twilio documents.
afterEach(() => {
  expect(fake.violations).toEqual([]);
  fake.violations.length = 0;
});

function provider(overrides: Partial<TwilioSmsProviderOptions> = {}) {
  return createTwilioSmsProvider({
    accountSid: SID,
    authToken: TOKEN,
    from: FROM,
    timeoutMs: 2000,
    baseUrl: fake.baseUrl,
    ...overrides,
  });
}

async function sendFailure(
  options: Partial<TwilioSmsProviderOptions> = {},
  message: SmsMessage = { to: TO, body: BODY },
) {
  const error = await provider(options)
    .send(message)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(DeliveryFailedError);
  const failure = error as DeliveryFailedError;
  expect(failure.channel).toBe('sms');
  expect(failure.failure.provider).toBe('twilio');
  // Neither the error nor anything reachable from it may carry the code, number or token.
  for (const rendered of [
    failure.message,
    inspect(failure, { depth: 10 }),
    JSON.stringify(failure),
  ]) {
    expect(rendered).not.toContain(CODE);
    expect(rendered).not.toContain(TO.slice(1));
    expect(rendered).not.toContain(TOKEN);
  }
  return failure;
}

describe('Twilio SMS provider: requests', () => {
  it('posts a documented CreateMessage form with basic auth and returns the SID', async () => {
    const receipt = await provider().send({ to: TO, body: BODY, validForSeconds: 600 });

    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(request?.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    );
    expect(Object.fromEntries(fake.form())).toEqual({
      To: TO,
      Body: BODY,
      From: FROM,
      ValidityPeriod: '600',
    });
    expect(receipt.id).toMatch(/^SM[0-9a-f]{32}$/);
  });

  it('sends MessagingServiceSid instead of From when a messaging service is configured', async () => {
    await provider({ messagingServiceSid: SERVICE_SID }).send({ to: TO, body: BODY });

    expect(Object.fromEntries(fake.form())).toEqual({
      To: TO,
      Body: BODY,
      MessagingServiceSid: SERVICE_SID,
    });
  });

  it('keeps a path prefix of the base URL', async () => {
    // The prefix is not in Twilio's description, so this request is checked by hand.
    const prefixed = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    try {
      await provider({ baseUrl: `${prefixed.baseUrl}/twilio/` })
        .send({ to: TO, body: BODY })
        .catch(() => undefined);
      expect(prefixed.requests.map((r) => r.url)).toEqual([
        `/twilio/2010-04-01/Accounts/${SID}/Messages.json`,
      ]);
    } finally {
      await prefixed.close();
    }
  });

  // Item 11: a late SMS never carries a dead code.
  it.each([
    [600, '600'],
    [599.7, '599'],
    [30, '30'],
    [86_400, '36000'],
    [0.4, '1'],
    [-5, '1'],
  ])(
    'sends ValidityPeriod within the code lifetime and Twilio range (%p s → %s)',
    async (seconds, sent) => {
      await provider().send({ to: TO, body: BODY, validForSeconds: seconds });

      expect(fake.form().get('ValidityPeriod')).toBe(sent);
    },
  );

  it('leaves ValidityPeriod to Twilio when the message has no lifetime', async () => {
    await provider().send({ to: TO, body: BODY });

    expect(fake.form().has('ValidityPeriod')).toBe(false);
  });
});

describe('Twilio SMS provider: errors it maps (item 8)', () => {
  it.each([
    [21211, 'invalid_phone', 400, `The 'To' number ${TO} is not a valid phone number.`],
    [21217, 'invalid_phone', 400, 'Phone number does not appear to be valid'],
    [
      21612,
      'invalid_phone',
      400,
      `The 'To' phone number: ${TO}, is not currently reachable using the 'From' phone number: ${FROM} via SMS.`,
    ],
    [21614, 'invalid_phone', 400, `'To' number ${TO} is not a valid mobile number`],
    [21610, 'recipient_opted_out', 403, 'Attempt to send to unsubscribed recipient'],
    [
      21408,
      'country_not_allowed',
      403,
      `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${TO}.`,
    ],
  ])('Twilio %p (HTTP 400) → %s (%p), a refusal', async (twilioCode, answer, ourStatus, text) => {
    fake.next(twilioError(400, twilioCode, text));

    const failure = await sendFailure();

    expect(failure.code).toBe(answer);
    expect(failure.status).toBe(ourStatus);
    expect(failure.outcome).toBe('refused');
    expect(failure.failure).toMatchObject({ httpStatus: 400, providerCode: twilioCode });
    // Twilio's own text quotes the number; only the fixed reason travels.
    expect(failure.failure.reason).not.toContain(TO);
  });

  it('maps a wrong auth token (Twilio 20003) to provider_misconfigured', async () => {
    const failure = await sendFailure({ authToken: 'not-the-token' });

    expect(failure.code).toBe('provider_misconfigured');
    expect(failure.status).toBe(503);
    expect(failure.outcome).toBe('refused');
    expect(failure.failure).toMatchObject({ httpStatus: 401, providerCode: 20003 });
  });

  it('maps a 429 to provider_rate_limited with the Retry-After Twilio gave', async () => {
    fake.next({
      ...(twilioError(429, 20429, 'Too Many Requests') as {
        kind: 'json';
        status: number;
        body: unknown;
      }),
      headers: { 'Retry-After': '17' },
    });

    const failure = await sendFailure();

    expect(failure.code).toBe('provider_rate_limited');
    expect(failure.status).toBe(503);
    expect(failure.details.retryAfter).toBe(17);
    expect(failure.outcome).toBe('refused');
    expect(failure.failure).toMatchObject({ httpStatus: 429, providerCode: 20429 });
  });

  it('waits a default 30 s after a 429 without Retry-After', async () => {
    fake.next(twilioError(429, 20429, 'Too Many Requests'));

    const failure = await sendFailure();

    expect(failure.code).toBe('provider_rate_limited');
    expect(failure.details.retryAfter).toBe(30);
  });

  it('answers delivery_failed, refused, to a 4xx it has no answer for', async () => {
    fake.next(twilioError(400, 21602, 'Message body is required.'));

    const failure = await sendFailure();

    expect(failure.code).toBe('delivery_failed');
    expect(failure.status).toBe(502);
    expect(failure.outcome).toBe('refused');
    expect(failure.details.outcome).toBe('refused');
    expect(failure.failure).toMatchObject({ httpStatus: 400, providerCode: 21602 });
  });

  it.each([
    ['failed', 30_008, 'delivery_failed'],
    ['undelivered', 21_614, 'invalid_phone'],
  ])(
    'treats a 201 whose status is %s as a refusal (error %p → %s)',
    async (status, errorCode, answer) => {
      fake.next({
        kind: 'json',
        status: 201,
        body: fake.messageFor(new URLSearchParams({ To: TO, From: FROM, Body: BODY }), {
          status,
          error_code: errorCode,
          error_message: 'Unknown error',
        }),
      });

      const failure = await sendFailure();

      expect(failure.code).toBe(answer);
      expect(failure.outcome).toBe('refused');
      expect(failure.failure).toMatchObject({ httpStatus: 201, providerCode: errorCode });
    },
  );
});

describe('Twilio SMS provider: outcomes (item 7)', () => {
  it('calls a 5xx unknown: Twilio may have queued the message', async () => {
    fake.next(twilioError(500, 20500, 'Internal Server Error'));
    const json = await sendFailure();
    expect(json.code).toBe('delivery_failed');
    expect(json.outcome).toBe('unknown');
    expect(json.details.outcome).toBe('unknown');
    expect(json.failure.httpStatus).toBe(500);

    fake.next({ kind: 'empty', status: 503, headers: { 'Content-Type': 'text/html' } });
    expect((await sendFailure()).outcome).toBe('unknown');
  });

  it('calls a 2xx that is not a Twilio message unknown', async () => {
    fake.next({ kind: 'empty', status: 200, headers: { 'Content-Type': 'text/html' } });
    const notJson = await sendFailure();
    expect(notJson.outcome).toBe('unknown');

    fake.next({
      kind: 'json',
      status: 201,
      body: fake.messageFor(new URLSearchParams({ To: TO, From: FROM }), { sid: null }),
    });
    const noSid = await sendFailure();
    expect(noSid.outcome).toBe('unknown');
    expect(noSid.failure.reason).toBe('answered 2xx without a message SID');
  });

  it('calls a refused connection a refusal: nothing was written', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    await once(closed, 'close');

    const failure = await sendFailure({ baseUrl: `http://127.0.0.1:${port}` });

    expect(failure.outcome).toBe('refused');
    expect(failure.code).toBe('delivery_failed');
    expect(failure.failure.netError).toBe('ECONNREFUSED');
  });

  it('calls no answer within timeoutMs unknown, and gives up in about timeoutMs', async () => {
    fake.next({ kind: 'hang' });
    const started = performance.now();

    const failure = await sendFailure({ timeoutMs: 300 });

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    expect(failure.outcome).toBe('unknown');
    expect(failure.failure.reason).toBe('no answer within 300 ms');
    // Named by a timeout's code (the SDK's, or ours when our deadline came first), for the error
    // label of the provider metrics.
    expect(['ECONNABORTED', 'ETIMEDOUT']).toContain(failure.failure.netError);
    // Twilio read the whole request: it may well send the message.
    expect(fake.form().get('Body')).toBe(BODY);
  });

  it('calls a connection lost after the request was read unknown', async () => {
    fake.next({ kind: 'reset' });

    const failure = await sendFailure();

    expect(failure.outcome).toBe('unknown');
    expect(failure.failure.netError).toBe('ECONNRESET');
    expect(fake.requests).toHaveLength(1);
  });
});
