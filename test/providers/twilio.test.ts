import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { DeliveryFailedError } from '../../src/errors';
import { createTwilioSmsProvider, type TwilioSmsProviderOptions } from '../../src/providers/twilio';
import { type Captured, type Handler, startRecordingServer } from '../support/recording-server';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'test-auth-token-0123456789abcdef';
const FROM = '+15005550006';
const SERVICE_SID = 'MG0123456789abcdef0123456789abcdef';
const TO = '+15558675310';
const BODY = 'Your verification code is 493817';
const MESSAGE_SID = 'SM1f0e8ae6ade43cb3c0ce4525424e404f';

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
  handler = answer(201, messageResource());
});

function answer(status: number, payload: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(payload));
  };
}

/** Shaped like Twilio's answer to POST .../Messages.json. */
function messageResource(overrides: Record<string, unknown> = {}) {
  return {
    account_sid: SID,
    api_version: '2010-04-01',
    body: BODY,
    date_created: 'Thu, 24 Aug 2023 05:01:45 +0000',
    date_sent: null,
    date_updated: 'Thu, 24 Aug 2023 05:01:45 +0000',
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: FROM,
    messaging_service_sid: null,
    num_media: '0',
    num_segments: '1',
    price: null,
    price_unit: 'USD',
    sid: MESSAGE_SID,
    status: 'queued',
    subresource_uris: {
      media: `/2010-04-01/Accounts/${SID}/Messages/${MESSAGE_SID}/Media.json`,
    },
    to: TO,
    uri: `/2010-04-01/Accounts/${SID}/Messages/${MESSAGE_SID}.json`,
    ...overrides,
  };
}

function provider(overrides: Partial<TwilioSmsProviderOptions> = {}) {
  return createTwilioSmsProvider({
    accountSid: SID,
    authToken: TOKEN,
    from: FROM,
    timeoutMs: 2000,
    baseUrl,
    ...overrides,
  });
}

async function sendFailure(options: Partial<TwilioSmsProviderOptions> = {}) {
  const error = await provider(options)
    .send({ to: TO, body: BODY })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(DeliveryFailedError);
  const failure = error as DeliveryFailedError;
  expect(failure.code).toBe('delivery_failed');
  expect(failure.status).toBe(502);
  // Neither the message nor anything reachable from it may carry the code.
  expect(failure.message).not.toContain('493817');
  expect(inspect(failure, { depth: 10 })).not.toContain('493817');
  expect(JSON.stringify(failure)).not.toContain('493817');
  return failure;
}

describe('Twilio SMS provider', () => {
  it('posts the message form-encoded to the Messages resource with basic auth', async () => {
    const receipt = await provider().send({ to: TO, body: BODY });

    expect(receipt).toEqual({ id: MESSAGE_SID });
    expect(captured).toHaveLength(1);
    const [request] = captured;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(request?.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    );
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.headers.accept).toBe('application/json');
    const form = new URLSearchParams(request?.body);
    expect(Object.fromEntries(form)).toEqual({ To: TO, Body: BODY, From: FROM });
  });

  it('sends MessagingServiceSid instead of From when a messaging service is configured', async () => {
    handler = answer(201, messageResource({ from: null, messaging_service_sid: SERVICE_SID }));

    const receipt = await provider({ messagingServiceSid: SERVICE_SID }).send({
      to: TO,
      body: BODY,
    });

    expect(receipt).toEqual({ id: MESSAGE_SID });
    const form = new URLSearchParams(captured[0]?.body);
    expect(Object.fromEntries(form)).toEqual({
      To: TO,
      Body: BODY,
      MessagingServiceSid: SERVICE_SID,
    });
  });

  it('keeps a path prefix of the base URL', async () => {
    await provider({ baseUrl: `${baseUrl}/twilio/` }).send({ to: TO, body: BODY });

    expect(captured[0]?.url).toBe(`/twilio/2010-04-01/Accounts/${SID}/Messages.json`);
  });

  it('rejects a 400 with a Twilio error as DeliveryFailedError naming the error code', async () => {
    handler = answer(400, {
      code: 21211,
      message: `The 'To' number ${TO} is not a valid phone number.`,
      more_info: 'https://www.twilio.com/docs/errors/21211',
      status: 400,
    });

    const failure = await sendFailure();

    expect(String((failure.cause as Error).message)).toBe(
      'Twilio answered HTTP 400, Twilio error 21211 (https://www.twilio.com/docs/errors/21211)',
    );
  });

  it('rejects a 401 as DeliveryFailedError', async () => {
    handler = answer(401, {
      code: 20003,
      message: 'Authenticate',
      more_info: 'https://www.twilio.com/docs/errors/20003',
      status: 401,
    });

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toContain('HTTP 401');
  });

  it('rejects a 5xx as DeliveryFailedError', async () => {
    handler = (_req, res) => {
      res.writeHead(503, { 'Content-Type': 'text/html' });
      res.end('<html><body>Service Unavailable</body></html>');
    };

    const failure = await sendFailure();

    expect((failure.cause as Error).message).toBe('Twilio answered HTTP 503');
    expect(captured).toHaveLength(1);
  });

  it('rejects a 2xx that is not a Twilio message', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>captive portal</html>');
    };
    const notJson = await sendFailure();
    expect((notJson.cause as Error).message).toBe('Twilio answered with a body that is not JSON');

    handler = answer(201, messageResource({ sid: null }));
    const noSid = await sendFailure();
    expect((noSid.cause as Error).message).toBe('Twilio answered 2xx without a message SID');
  });

  it('rejects when the connection is refused', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    closed.close();
    await once(closed, 'close');

    const failure = await sendFailure({ baseUrl: `http://127.0.0.1:${port}` });

    expect((failure.cause as Error).message).toBe('Twilio request failed (ECONNREFUSED)');
  });

  it('rejects within about timeoutMs when Twilio never answers', async () => {
    let hungUp: Promise<unknown> = Promise.resolve();
    handler = (req) => {
      hungUp = once(req.socket, 'close');
    };
    const started = performance.now();

    const failure = await sendFailure({ timeoutMs: 300 });

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    expect((failure.cause as Error).message).toBe('Twilio did not answer within 300 ms');
    expect(captured).toHaveLength(1);
    // The SDK's own timeout abandons the connection too, so nothing is left dangling.
    await hungUp;
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
