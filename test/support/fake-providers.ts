import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import sendgridSpec from '../providers/spec/sendgrid-mail-send.json';
import twilioSpec from '../providers/spec/twilio-messages-create.json';
import { type OpenApiFragment, OpenApiValidator } from './openapi';
import { type Captured, startRecordingServer } from './recording-server';

/** What the fake answers one request with. */
export type Playback =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'empty'; status: number; headers?: Record<string, string> }
  /** Reads the request and never answers: the client's timeout has to end it. */
  | { kind: 'hang' }
  /** Reads the request, then drops the connection: the provider may have acted on it. */
  | { kind: 'reset' };

export interface FakeApi {
  baseUrl: string;
  /** Every request received, in order, whole. */
  requests: Captured[];
  /** Each way a request broke the provider's API description; a test expects none. */
  violations: string[];
  /** Answers for the next requests, in order; afterwards the provider's normal answer. */
  next(...answers: Playback[]): void;
  close(): Promise<void>;
}

interface FakeApiOptions {
  spec: OpenApiFragment;
  /** The provider's answer to a request with the wrong credentials, or undefined to go on. */
  refuseCredentials(request: Captured): Playback | undefined;
  /** The provider's answer to a valid request. */
  accept(request: Captured): Playback;
  /** Answers a request that breaks the API description, as the provider would. */
  invalid(problems: string[]): Playback;
}

/**
 * A loopback server standing in for a provider: it checks every request against the provider's
 * own API description (test/providers/spec) and the configured credentials, then plays back the
 * next scripted answer or the provider's normal one.
 */
async function startFakeApi(options: FakeApiOptions): Promise<FakeApi> {
  const validator = new OpenApiValidator(options.spec);
  const requests: Captured[] = [];
  const violations: string[] = [];
  const script: Playback[] = [];
  const server = await startRecordingServer((captured, req, res) => {
    requests.push(captured);
    const problems = validator.validateRequest({
      method: captured.method ?? '',
      url: captured.url ?? '',
      headers: captured.headers,
      body: captured.body,
    });
    violations.push(...problems);
    const answer =
      problems.length > 0
        ? options.invalid(problems)
        : (options.refuseCredentials(captured) ?? script.shift() ?? options.accept(captured));
    play(answer, req, res);
  });
  return {
    baseUrl: server.baseUrl,
    requests,
    violations,
    next: (...answers) => {
      script.push(...answers);
    },
    close: () => server.close(),
  };
}

function play(answer: Playback, req: IncomingMessage, res: ServerResponse): void {
  switch (answer.kind) {
    case 'hang':
      return;
    case 'reset':
      req.socket.destroy();
      return;
    case 'empty':
      res.writeHead(answer.status, { 'Content-Length': '0', ...answer.headers });
      res.end();
      return;
    case 'json':
      res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
      res.end(JSON.stringify(answer.body));
  }
}

// --- Twilio -------------------------------------------------------------------------------------

export const TWILIO_MESSAGES_PATH = '/2010-04-01/Accounts/{AccountSid}/Messages.json';

/** Twilio's error body, as its REST API answers every 4xx/5xx. */
export function twilioError(status: number, code: number, message: string): Playback {
  return {
    kind: 'json',
    status,
    body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
  };
}

export interface FakeTwilio extends FakeApi {
  /** The Message resource the fake answers a form with; `overrides` change single fields. */
  messageFor(form: URLSearchParams, overrides?: Record<string, unknown>): Record<string, unknown>;
  /** The form of the i-th request (default: the last). */
  form(index?: number): URLSearchParams;
}

export async function startFakeTwilio(account: {
  accountSid: string;
  authToken: string;
}): Promise<FakeTwilio> {
  const validator = new OpenApiValidator(twilioSpec as OpenApiFragment);
  const responseSchema = validator.responseSchema(
    'post',
    TWILIO_MESSAGES_PATH.replace('{AccountSid}', account.accountSid),
    201,
    'application/json',
  );
  if (!responseSchema) throw new Error('the Twilio fragment lacks the 201 message schema');
  const expected = `Basic ${Buffer.from(`${account.accountSid}:${account.authToken}`).toString('base64')}`;

  const messageFor = (form: URLSearchParams, overrides: Record<string, unknown> = {}) => {
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const now = new Date().toUTCString().replace('GMT', '+0000');
    const message = {
      account_sid: account.accountSid,
      api_version: '2010-04-01',
      body: form.get('Body'),
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: form.get('From'),
      messaging_service_sid: form.get('MessagingServiceSid'),
      num_media: '0',
      num_segments: '1',
      price: null,
      price_unit: 'USD',
      sid,
      status: form.has('MessagingServiceSid') ? 'accepted' : 'queued',
      subresource_uris: {
        media: `/2010-04-01/Accounts/${account.accountSid}/Messages/${sid}/Media.json`,
      },
      to: form.get('To'),
      uri: `/2010-04-01/Accounts/${account.accountSid}/Messages/${sid}.json`,
      ...overrides,
    };
    // The fake's own answers must be ones Twilio could give.
    const problems = validator.validate(message, responseSchema, 'response');
    if (problems.length > 0) throw new Error(`fake Twilio message invalid: ${problems.join('; ')}`);
    return message;
  };

  const fake = await startFakeApi({
    spec: twilioSpec as OpenApiFragment,
    refuseCredentials: (request) =>
      request.headers.authorization === expected &&
      request.url?.startsWith(`/2010-04-01/Accounts/${account.accountSid}/`)
        ? undefined
        : twilioError(401, 20003, 'Authenticate'),
    accept: (request) => ({
      kind: 'json',
      status: 201,
      body: messageFor(new URLSearchParams(request.body)),
    }),
    invalid: (problems) => twilioError(400, 21601, `Invalid request: ${problems.join('; ')}`),
  });
  return {
    ...fake,
    messageFor,
    form: (index = -1) => new URLSearchParams(fake.requests.at(index)?.body ?? ''),
  };
}

// --- SendGrid -----------------------------------------------------------------------------------

/** SendGrid's error body: `errors` with message, field and help. */
export function sendgridError(
  status: number,
  errors: { message: string; field: string | null; help: string | null }[],
  headers?: Record<string, string>,
): Playback {
  return { kind: 'json', status, body: { errors }, ...(headers ? { headers } : {}) };
}

export interface FakeSendGrid extends FakeApi {
  /** The JSON body of the i-th request (default: the last). */
  mail(index?: number): Record<string, unknown>;
}

export async function startFakeSendGrid(apiKey: string): Promise<FakeSendGrid> {
  const fake = await startFakeApi({
    spec: sendgridSpec as OpenApiFragment,
    refuseCredentials: (request) =>
      request.headers.authorization === `Bearer ${apiKey}`
        ? undefined
        : sendgridError(401, [
            {
              message: 'The provided authorization grant is invalid, expired, or revoked',
              field: null,
              help: null,
            },
          ]),
    accept: () => ({
      kind: 'empty',
      status: 202,
      headers: { 'X-Message-Id': randomBytes(16).toString('base64url') },
    }),
    invalid: (problems) =>
      sendgridError(
        400,
        problems.map((message) => ({ message, field: null, help: null })),
      ),
  });
  return {
    ...fake,
    mail: (index = -1) => JSON.parse(fake.requests.at(index)?.body ?? 'null'),
  };
}
