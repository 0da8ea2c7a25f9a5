/**
 * Fault numbers and addresses in mock mode: each makes the mock provider fail as the real provider
 * would, so that a CI suite can drive every delivery error over HTTP. For each one, the app on the
 * mock providers is held to the app on the real adapters (pointed at the fake Twilio or SendGrid,
 * scripted to give the provider's own answer): the same status, body and Retry-After, for the
 * send and for the retry right after it (a refusal gives the cooldown back, an unknown outcome
 * keeps it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { buildConfig } from '../../src/config';
import { ERROR_STATUS } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createProviders } from '../../src/providers';
import {
  FAULT_EMAIL_DOMAIN,
  failureOf,
  MOCK_FAULTS,
  type MockFault,
} from '../../src/providers/mock-faults';
import { buildTestApp, RELAXED_LIMITS } from '../support/app';
import {
  type FakeSendGrid,
  type FakeTwilio,
  type Playback,
  sendgridError,
  startFakeSendGrid,
  startFakeTwilio,
  twilioError,
} from '../support/fake-providers';
import { freePort } from '../support/servers';

const SID = 'AC0123456789abcdef0123456789abcdef';
const AUTH_TOKEN = 'twilio-auth-token-0123456789abcdef';
const API_KEY = 'SG.sendgrid-key.0123456789abcdef';

/** A real cooldown, so the retry shows whether the failed send was counted. */
const SETTINGS = { ...RELAXED_LIMITS, SEND_COOLDOWN_SECONDS: '30', PROVIDER_TIMEOUT_MS: '300' };

let twilio: FakeTwilio;
let sendgrid: FakeSendGrid;
/** A loopback port nobody listens on: connections to it are refused. */
let closedPort: number;

beforeAll(async () => {
  [twilio, sendgrid, closedPort] = await Promise.all([
    startFakeTwilio({ accountSid: SID, authToken: AUTH_TOKEN }),
    startFakeSendGrid(API_KEY),
    freePort(),
  ]);
});

afterAll(() => Promise.all([twilio.close(), sendgrid.close()]));

afterEach(() => {
  expect([...twilio.violations, ...sendgrid.violations]).toEqual([]);
});

/** The provider's own answer to the request that the fault stands for. */
function providerAnswer(fault: MockFault): Playback | 'refuse connection' {
  const { answer } = fault;
  switch (answer.kind) {
    case 'timeout':
      return { kind: 'hang' };
    case 'network':
      return 'refuse connection';
    case 'dropped':
      return fault.provider === 'twilio'
        ? { kind: 'json', status: 201, body: twilio.messageFor(new URLSearchParams()) }
        : { kind: 'empty', status: 202 };
    case 'status':
      return fault.provider === 'twilio'
        ? twilioError(answer.httpStatus, answer.providerCode ?? answer.httpStatus * 100, 'failed')
        : sendgridError(answer.httpStatus, [{ message: 'failed', field: null, help: null }]);
  }
}

/** The app on the real adapters, as the server wires them, answering as `fault` says. */
function realApp(fault: MockFault): Express {
  const answer = providerAnswer(fault);
  const refused = `http://127.0.0.1:${closedPort}`;
  const settings = {
    ...SETTINGS,
    SMS_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_FROM: '+15005550006',
    TWILIO_API_BASE_URL: answer === 'refuse connection' ? refused : twilio.baseUrl,
    EMAIL_PROVIDER: 'sendgrid',
    SENDGRID_API_KEY: API_KEY,
    EMAIL_FROM: 'verifyd <no-reply@example.com>',
    SENDGRID_API_BASE_URL: answer === 'refuse connection' ? refused : sendgrid.baseUrl,
    // With a real provider the SMS pumping defences are on by default, and they refuse Twilio's
    // +1 500 magic numbers (personal numbers) before any provider call; here the comparison is
    // of the provider's answers alone, as the mock (defences off) gives them.
    SMS_PUMPING_DEFENCES: 'off',
  };
  if (answer !== 'refuse connection') {
    // The retry reaches the provider only when the failed send was refused: otherwise the
    // cooldown stops it, and an answer queued for it would be left for the next test.
    const reached = failureOf(fault, 300)?.outcome === 'refused' ? 2 : 1;
    (fault.provider === 'twilio' ? twilio : sendgrid).next(
      ...Array.from({ length: reached }, () => answer),
    );
  }
  const { sms, email } = createProviders(buildConfig(settings), {
    logger: createLogger({ level: 'silent' }),
  });
  return buildTestApp({ env: settings, sms, email }).app;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: unknown;
}

/** A send to the fault's recipient and the retry right after it. */
async function sendTwice(app: Express, fault: MockFault): Promise<Answer[]> {
  const route = fault.channel === 'sms' ? '/verify-phone' : '/verify-email';
  const body = fault.channel === 'sms' ? { phone: fault.recipient } : { email: fault.recipient };
  const answers: Answer[] = [];
  for (const _ of [1, 2]) {
    const res = await request(app).post(route).send(body);
    answers.push({
      status: res.status,
      retryAfter: res.headers['retry-after'],
      // What differs by nature between two sends: times and the verification's id.
      body: res.status === 202 ? { status: res.body.status, to: res.body.to } : res.body,
    });
  }
  return answers;
}

/** What each documented fault must answer the first time: the contract a CI suite relies on. */
const EXPECTED: Record<string, { status: number; code?: string; outcome?: string }> = {
  '+15005550001': { status: 400, code: 'invalid_phone' },
  '+15005550002': { status: 400, code: 'invalid_phone' },
  '+15005550003': { status: 403, code: 'country_not_allowed' },
  '+15005550004': { status: 403, code: 'recipient_opted_out' },
  '+15005550009': { status: 400, code: 'invalid_phone' },
  '+15005550010': { status: 503, code: 'provider_misconfigured' },
  '+15005550011': { status: 503, code: 'provider_rate_limited' },
  '+15005550012': { status: 502, code: 'delivery_failed', outcome: 'unknown' },
  '+15005550013': { status: 502, code: 'delivery_failed', outcome: 'unknown' },
  '+15005550014': { status: 502, code: 'delivery_failed', outcome: 'refused' },
  '+15005550015': { status: 202 },
  [`invalid@${FAULT_EMAIL_DOMAIN}`]: { status: 502, code: 'delivery_failed', outcome: 'refused' },
  [`misconfigured@${FAULT_EMAIL_DOMAIN}`]: { status: 503, code: 'provider_misconfigured' },
  [`throttled@${FAULT_EMAIL_DOMAIN}`]: { status: 503, code: 'provider_rate_limited' },
  [`temporary@${FAULT_EMAIL_DOMAIN}`]: {
    status: 502,
    code: 'delivery_failed',
    outcome: 'unknown',
  },
  [`timeout@${FAULT_EMAIL_DOMAIN}`]: { status: 502, code: 'delivery_failed', outcome: 'unknown' },
  [`refused@${FAULT_EMAIL_DOMAIN}`]: { status: 502, code: 'delivery_failed', outcome: 'refused' },
  [`suppressed@${FAULT_EMAIL_DOMAIN}`]: { status: 202 },
};

/** The README row of a fault, rendered from the fault and what it answers. */
function readmeRow(fault: MockFault): string {
  const { answer } = fault;
  const provider = fault.provider === 'twilio' ? 'Twilio' : 'SendGrid';
  const detail =
    answer.kind === 'status'
      ? `${provider} ${answer.providerCode ?? `HTTP ${answer.httpStatus}`}`
      : answer.kind === 'network'
        ? answer.netError
        : undefined;
  const failure = failureOf(fault, 10_000);
  let answered = '`202`, never in the outbox';
  if (failure) {
    const code = failure.code ?? 'delivery_failed';
    answered = `\`${ERROR_STATUS[code]} ${code}\``;
    if (code === 'delivery_failed') answered += `, outcome \`${failure.outcome}\``;
    if (failure.retryAfterSeconds !== undefined) {
      answered += `, \`Retry-After: ${failure.retryAfterSeconds}\``;
    }
  }
  return `| \`${fault.recipient}\` | ${fault.simulates}${detail ? ` (${detail})` : ''} | ${answered} |`;
}

describe('the README table of fault numbers', () => {
  it('is the list, row for row', () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    const table = readme
      .split('<!-- mock-faults:start -->')[1]
      ?.split('<!-- mock-faults:end -->')[0];
    const rows = (table ?? '').trim().split('\n').slice(2);
    expect(rows).toEqual(MOCK_FAULTS.map(readmeRow));
  });
});

describe('fault numbers and addresses over HTTP', () => {
  it('are the documented ones, each once', () => {
    expect(MOCK_FAULTS.map((fault) => fault.recipient).sort()).toEqual(
      Object.keys(EXPECTED).sort(),
    );
  });

  it.each(MOCK_FAULTS.map((fault) => [fault.recipient, fault.simulates, fault] as const))(
    '%s (%s) is answered as the real provider failure is',
    async (recipient, _simulates, fault) => {
      const mock = buildTestApp({ env: SETTINGS });
      const [first, retry] = (await sendTwice(mock.app, fault)) as [Answer, Answer];
      const expected = EXPECTED[recipient]!;

      expect(first.status).toBe(expected.status);
      if (expected.code) {
        expect(first.body).toMatchObject({ error: { code: expected.code } });
        expect((first.body as { error: { outcome?: string } }).error.outcome).toBe(
          expected.outcome,
        );
      }
      if (expected.code === 'provider_rate_limited') expect(first.retryAfter).toBe('30');
      // A refusal gives the cooldown back, so the retry meets the provider again; an unknown
      // outcome (or a message accepted and dropped) keeps it, so the retry is refused here.
      const counted = expected.outcome === 'unknown' || expected.status === 202;
      expect(retry.status).toBe(counted ? 429 : expected.status);
      // Nothing reached the outbox: the message failed, or the provider dropped it.
      expect(mock.outbox.list()).toEqual([]);

      expect(await sendTwice(realApp(fault), fault)).toEqual([first, retry]);
    },
  );

  it('ignore a +tag in the address, and leave other recipients alone', async () => {
    const { app, outbox } = buildTestApp({ env: SETTINGS });
    const tagged = await request(app)
      .post('/verify-email')
      .send({ email: `throttled+ci-42@${FAULT_EMAIL_DOMAIN}` });
    expect(tagged.status).toBe(503);
    expect(tagged.body.error.code).toBe('provider_rate_limited');
    // The same local parts elsewhere, and the numbers just outside the list, are delivered.
    await request(app).post('/verify-email').send({ email: 'throttled@example.com' }).expect(202);
    await request(app).post('/verify-phone').send({ phone: '+15005550005' }).expect(202);
    await request(app).post('/verify-phone').send({ phone: '+15005550006' }).expect(202);
    expect(outbox.list().map((m) => m.to)).toEqual([
      'throttled@example.com',
      '+15005550005',
      '+15005550006',
    ]);
  });
});
