import { inspect } from 'node:util';
import { DeliveryFailedError } from '../../src/errors';
import {
  createSendGridEmailProvider,
  type SendGridEmailProviderOptions,
} from '../../src/providers/sendgrid';
import { type FakeSendGrid, sendgridError, startFakeSendGrid } from '../support/fake-providers';

/**
 * The SendGrid adapter runs the real `@sendgrid/mail` against a loopback server that checks each
 * request against SendGrid's own API description (spec/sendgrid-mail-send.json) and plays back
 * SendGrid's answers, errors included.
 */

const API_KEY = 'SG.test-key.0123456789abcdef';
const FROM = 'verifyd <no-reply@example.com>';
const TO = 'ada@example.org';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig';
const LINK = `https://verify.example.com/email/confirm?token=${TOKEN}`;
const MESSAGE = {
  to: TO,
  subject: 'Confirm your email address',
  text: `Open this link to confirm: ${LINK}`,
  html: `<p><a href="${LINK}">Confirm your email address</a></p>`,
};

let fake: FakeSendGrid;

beforeAll(async () => {
  fake = await startFakeSendGrid(API_KEY);
});

afterAll(() => fake.close());

beforeEach(() => {
  fake.requests.length = 0;
});

// Whatever a test plays back, what the SDK sent must be what SendGrid documents.
afterEach(() => {
  expect(fake.violations).toEqual([]);
  fake.violations.length = 0;
});

function provider(overrides: Partial<SendGridEmailProviderOptions> = {}) {
  return createSendGridEmailProvider({
    apiKey: API_KEY,
    from: FROM,
    timeoutMs: 2000,
    baseUrl: fake.baseUrl,
    ...overrides,
  });
}

async function sendFailure(options: Partial<SendGridEmailProviderOptions> = {}) {
  const error = await provider(options)
    .send(MESSAGE)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(DeliveryFailedError);
  const failure = error as DeliveryFailedError;
  expect(failure.channel).toBe('email');
  expect(failure.failure.provider).toBe('sendgrid');
  // Neither the error nor anything reachable from it may carry the link, address or key.
  for (const rendered of [
    failure.message,
    inspect(failure, { depth: 10 }),
    JSON.stringify(failure),
  ]) {
    expect(rendered).not.toContain(TOKEN);
    expect(rendered).not.toContain(TO);
    expect(rendered).not.toContain(API_KEY);
  }
  return failure;
}

describe('SendGrid email provider: requests', () => {
  it('posts a documented mail send with bearer auth and returns X-Message-Id', async () => {
    fake.next({
      kind: 'empty',
      status: 202,
      headers: { 'X-Message-Id': 'W86EgYT6SQKk0lRflfLRsA' },
    });

    const receipt = await provider().send(MESSAGE);

    expect(receipt).toEqual({ id: 'W86EgYT6SQKk0lRflfLRsA' });
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/v3/mail/send');
    expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    const mail = fake.mail();
    expect(mail.personalizations).toEqual([{ to: [{ email: TO }] }]);
    expect(mail.from).toEqual({ email: 'no-reply@example.com', name: 'verifyd' });
    expect(mail.subject).toBe(MESSAGE.subject);
    expect(mail.content).toEqual([
      { type: 'text/plain', value: MESSAGE.text },
      { type: 'text/html', value: MESSAGE.html },
    ]);
  });

  // Item 9: click tracking would rewrite the link through SendGrid's redirector.
  it('turns click, open and subscription tracking off on every email', async () => {
    await provider().send(MESSAGE);
    await provider().send({ ...MESSAGE, to: 'grace@example.org' });

    for (const index of [0, 1]) {
      expect(fake.mail(index).tracking_settings).toEqual({
        click_tracking: { enable: false, enable_text: false },
        open_tracking: { enable: false },
        subscription_tracking: { enable: false },
      });
    }
  });

  // Item 9: SendGrid's API description promises a 202, not the header.
  it('accepts a 202 without X-Message-Id, with no receipt id', async () => {
    fake.next({ kind: 'empty', status: 202 });

    const receipt = await provider().send(MESSAGE);

    expect(receipt).toEqual({});
  });

  it('gives each provider its own client', async () => {
    const other = startFakeSendGrid('SG.other-key');
    const second = await other;
    try {
      await provider().send(MESSAGE);
      await provider({ apiKey: 'SG.other-key', baseUrl: second.baseUrl }).send(MESSAGE);
      expect(fake.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${API_KEY}`]);
      expect(second.requests.map((r) => r.headers.authorization)).toEqual(['Bearer SG.other-key']);
      expect(second.violations).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

describe('SendGrid email provider: errors it maps (item 8)', () => {
  it('maps a wrong API key (401) to provider_misconfigured', async () => {
    const failure = await sendFailure({ apiKey: 'SG.revoked' });

    expect(failure.code).toBe('provider_misconfigured');
    expect(failure.status).toBe(503);
    expect(failure.outcome).toBe('refused');
    expect(failure.failure.httpStatus).toBe(401);
  });

  it('maps a 403 (unverified sender) to provider_misconfigured', async () => {
    fake.next(
      sendgridError(403, [
        {
          message:
            'The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.',
          field: 'from',
          help: 'https://sendgrid.com/docs/for-developers/sending-email/sender-identity/',
        },
      ]),
    );

    const failure = await sendFailure();

    expect(failure.code).toBe('provider_misconfigured');
    expect(failure.outcome).toBe('refused');
    expect(failure.failure.httpStatus).toBe(403);
  });

  it('maps a 429 to provider_rate_limited with the Retry-After SendGrid gave', async () => {
    fake.next(
      sendgridError(429, [{ message: 'too many requests', field: null, help: null }], {
        'Retry-After': '42',
      }),
    );

    const failure = await sendFailure();

    expect(failure.code).toBe('provider_rate_limited');
    expect(failure.details.retryAfter).toBe(42);
    expect(failure.outcome).toBe('refused');
  });

  it('answers delivery_failed, refused, to a 400, naming only the rejected fields', async () => {
    fake.next(
      sendgridError(400, [
        {
          message: `Does not contain a valid address: ${TO}`,
          field: 'personalizations.0.to.0.email',
          help: 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to',
        },
      ]),
    );

    const failure = await sendFailure();

    expect(failure.code).toBe('delivery_failed');
    expect(failure.outcome).toBe('refused');
    expect(failure.failure).toMatchObject({
      httpStatus: 400,
      reason: 'request refused (fields: personalizations.0.to.0.email)',
    });
  });

  it('refuses a redirect instead of following it', async () => {
    fake.next({ kind: 'empty', status: 307, headers: { Location: '/elsewhere' } });

    const failure = await sendFailure();

    expect(fake.requests.map((r) => r.url)).toEqual(['/v3/mail/send']);
    expect(failure.outcome).toBe('refused');
    expect(failure.failure.httpStatus).toBe(307);
  });
});

describe('SendGrid email provider: outcomes (item 7)', () => {
  it('calls a 5xx unknown: SendGrid may have queued the mail', async () => {
    fake.next(sendgridError(500, [{ message: 'internal error', field: null, help: null }]));

    const failure = await sendFailure();

    expect(failure.code).toBe('delivery_failed');
    expect(failure.outcome).toBe('unknown');
    expect(failure.failure.httpStatus).toBe(500);
  });

  it('calls a 2xx other than 202 unknown', async () => {
    fake.next({ kind: 'empty', status: 200, headers: { 'Content-Type': 'text/html' } });

    const failure = await sendFailure();

    expect(failure.outcome).toBe('unknown');
    expect(failure.failure.httpStatus).toBe(200);
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
  });

  it('calls a connection lost after the request was read unknown', async () => {
    fake.next({ kind: 'reset' });

    const failure = await sendFailure();

    expect(failure.outcome).toBe('unknown');
    expect(failure.failure.netError).toBe('ECONNRESET');
  });
});
