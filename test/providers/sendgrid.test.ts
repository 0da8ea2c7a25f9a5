import { once } from 'node:events';
import { inspect } from 'node:util';
import { DeliveryFailedError } from '../../src/errors';
import {
  createSendGridEmailProvider,
  type SendGridEmailProviderOptions,
} from '../../src/providers/sendgrid';
import { type Captured, type Handler, startRecordingServer } from '../support/recording-server';

const API_KEY = 'SG.test-key.0123456789abcdef';
const FROM = 'verifyd <no-reply@example.com>';
const TO = 'ada@example.org';
const LINK = 'https://verify.example.com/email/confirm?token=eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig';
const MESSAGE = {
  to: TO,
  subject: 'Confirm your email address',
  text: `Open this link to confirm: ${LINK}`,
  html: `<p><a href="${LINK}">Confirm your email address</a></p>`,
};
const MESSAGE_ID = 'W86EgYT6SQKk0lRflfLRsA';

let fake: Awaited<ReturnType<typeof startRecordingServer>>;
let baseUrl: string;
let captured: Captured[];
let handler: Handler;

beforeAll(async () => {
  fake = await startRecordingServer((request, req, res) => {
    captured.push(request);
    handler(req, res);
  });
  baseUrl = fake.baseUrl;
});

afterAll(() => fake.close());

beforeEach(() => {
  captured = [];
  handler = accepted();
});

/** SendGrid's answer to an accepted send: 202, no body, the id in a header. */
function accepted(): Handler {
  return (_req, res) => {
    res.writeHead(202, { 'X-Message-Id': MESSAGE_ID, 'Content-Length': '0' });
    res.end();
  };
}

function answer(status: number, payload: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(payload));
  };
}

function provider(overrides: Partial<SendGridEmailProviderOptions> = {}) {
  return createSendGridEmailProvider({
    apiKey: API_KEY,
    from: FROM,
    timeoutMs: 2000,
    baseUrl,
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
  expect(failure.code).toBe('delivery_failed');
  expect(failure.status).toBe(502);
  // Neither the message nor anything reachable from it may carry the link.
  for (const rendered of [
    failure.message,
    inspect(failure, { depth: 10 }),
    JSON.stringify(failure),
  ]) {
    expect(rendered).not.toContain('eyJhbGciOiJIUzI1NiJ9');
  }
  return failure;
}

describe('SendGrid email provider', () => {
  it('posts the mail as JSON to /v3/mail/send with bearer auth', async () => {
    const receipt = await provider().send(MESSAGE);

    expect(receipt).toEqual({ id: MESSAGE_ID });
    expect(captured).toHaveLength(1);
    const [request] = captured;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/v3/mail/send');
    expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request?.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(request?.body ?? '');
    expect(body.personalizations).toHaveLength(1);
    expect(body.personalizations[0].to).toEqual([{ email: TO }]);
    expect(body.from).toEqual({ email: 'no-reply@example.com', name: 'verifyd' });
    expect(body.subject).toBe(MESSAGE.subject);
    expect(body.content).toEqual([
      { type: 'text/plain', value: MESSAGE.text },
      { type: 'text/html', value: MESSAGE.html },
    ]);
  });

  it('gives each provider its own client', async () => {
    const other = createSendGridEmailProvider({
      apiKey: 'SG.other-key',
      from: FROM,
      timeoutMs: 2000,
      baseUrl,
    });

    await provider().send(MESSAGE);
    await other.send(MESSAGE);

    expect(captured.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${API_KEY}`,
      'Bearer SG.other-key',
    ]);
  });

  it('rejects a 400 as DeliveryFailedError naming only the rejected fields', async () => {
    handler = answer(400, {
      errors: [
        {
          message: 'The from address does not match a verified Sender Identity.',
          field: 'from',
          help: 'http://sendgrid.com/docs/for-developers/sending-email/sender-identity/',
        },
      ],
    });

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toBe('SendGrid answered HTTP 400 (fields: from)');
  });

  it('rejects a 401 as DeliveryFailedError', async () => {
    handler = answer(401, {
      errors: [{ field: null, message: 'The provided authorization grant is invalid.' }],
    });

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toBe('SendGrid answered HTTP 401');
  });

  it('rejects a 5xx as DeliveryFailedError', async () => {
    handler = (_req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    };

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toBe('SendGrid answered HTTP 502');
    expect(captured).toHaveLength(1);
  });

  it('rejects a 2xx without X-Message-Id', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>captive portal</html>');
    };

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toBe('SendGrid answered 2xx without X-Message-Id');
  });

  it('rejects a redirect instead of following it', async () => {
    handler = (_req, res) => {
      res.writeHead(307, { Location: '/elsewhere' });
      res.end();
    };

    const failure = await sendFailure();

    expect(captured.map((r) => r.url)).toEqual(['/v3/mail/send']);
    expect((failure.cause as Error).message).toBe('SendGrid answered HTTP 307');
  });

  it('rejects within about timeoutMs when SendGrid never answers', async () => {
    let hungUp: Promise<unknown> = Promise.resolve();
    handler = (req) => {
      hungUp = once(req.socket, 'close');
    };
    const started = performance.now();

    const failure = await sendFailure({ timeoutMs: 300 });

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    expect((failure.cause as Error).message).toBe('SendGrid did not answer within 300 ms');
    // The SDK's own timeout abandons the connection too, so nothing is left dangling.
    await hungUp;
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
