import type { DeliveryFailure } from '../errors';
import {
  DEFAULT_PROVIDER_RETRY_AFTER_SECONDS,
  outcomeOfNetError,
  outcomeOfStatus,
  providerErrorRow,
} from './failures';

/**
 * Fault numbers and addresses: recipients for which the mock providers fail the way a real
 * provider would, so that a CI suite can drive every delivery error of the API over HTTP (as
 * Twilio's magic test numbers do). Each fault is described as the provider's answer, and turned
 * into an error by the same rules the real adapters follow (./failures.ts), so a fault number is
 * answered exactly as the real provider's failure would be.
 */

/** What the simulated provider does with the request. */
export type SimulatedAnswer =
  /** Answers with an error status, and for Twilio its numeric error code. */
  | { kind: 'status'; httpStatus: number; providerCode?: number }
  /** Never answers: the send fails after PROVIDER_TIMEOUT_MS, as the real adapters' deadline does. */
  | { kind: 'timeout' }
  /** The connection fails with this transport error code. */
  | { kind: 'network'; netError: string }
  /** Accepts the message (the send succeeds) and silently never delivers it. */
  | { kind: 'dropped' };

export interface MockFault {
  channel: 'sms' | 'email';
  /** E.164 number, or the address (any `+tag` in its local part is ignored when matching). */
  recipient: string;
  /** Which provider's answer is imitated: Twilio's for SMS, SendGrid's for email. */
  provider: 'twilio' | 'sendgrid';
  answer: SimulatedAnswer;
  /** What it stands for, in a few words (README table). */
  simulates: string;
}

/** The domain of the email fault addresses: `.test` is reserved (RFC 2606), nobody receives mail there. */
export const FAULT_EMAIL_DOMAIN = 'faults.test';

const sms = (last: string, answer: SimulatedAnswer, simulates: string): MockFault => ({
  channel: 'sms',
  recipient: `+1500555${last}`,
  provider: 'twilio',
  answer,
  simulates,
});

const email = (local: string, answer: SimulatedAnswer, simulates: string): MockFault => ({
  channel: 'email',
  recipient: `${local}@${FAULT_EMAIL_DOMAIN}`,
  provider: 'sendgrid',
  answer,
  simulates,
});

/**
 * The documented faults. The first five numbers are Twilio's own magic "To" numbers for test
 * credentials, with the error codes Twilio documents for them (Twilio docs, "Test credentials",
 * test inputs for SMS), so a suite behaves alike against the mock and against Twilio's test
 * account; the rest of the +1 500 555 00xx range is verifyd's. +1 500 555 0006, Twilio's number
 * that passes every check, is deliberately no fault.
 */
export const MOCK_FAULTS: readonly MockFault[] = [
  sms('0001', { kind: 'status', httpStatus: 400, providerCode: 21211 }, 'invalid number'),
  sms('0002', { kind: 'status', httpStatus: 400, providerCode: 21612 }, 'number not reachable'),
  sms(
    '0003',
    { kind: 'status', httpStatus: 400, providerCode: 21408 },
    'no permission for the region',
  ),
  sms('0004', { kind: 'status', httpStatus: 400, providerCode: 21610 }, 'recipient opted out'),
  sms('0009', { kind: 'status', httpStatus: 400, providerCode: 21614 }, 'not a mobile number'),
  sms('0010', { kind: 'status', httpStatus: 401, providerCode: 20003 }, 'credentials refused'),
  sms('0011', { kind: 'status', httpStatus: 429 }, 'provider throttling'),
  sms('0012', { kind: 'status', httpStatus: 503 }, 'temporary provider failure'),
  sms('0013', { kind: 'timeout' }, 'no answer (time-out)'),
  sms('0014', { kind: 'network', netError: 'ECONNREFUSED' }, 'connection refused'),
  sms('0015', { kind: 'dropped' }, 'accepted, never delivered'),
  email('invalid', { kind: 'status', httpStatus: 400 }, 'address refused'),
  email('misconfigured', { kind: 'status', httpStatus: 401 }, 'credentials refused'),
  email('throttled', { kind: 'status', httpStatus: 429 }, 'provider throttling'),
  email('temporary', { kind: 'status', httpStatus: 503 }, 'temporary provider failure'),
  email('timeout', { kind: 'timeout' }, 'no answer (time-out)'),
  email('refused', { kind: 'network', netError: 'ECONNREFUSED' }, 'connection refused'),
  email(
    'suppressed',
    { kind: 'dropped' },
    'accepted, never delivered (SendGrid drops mail to an unsubscribed or bounced address)',
  ),
];

const BY_RECIPIENT = new Map(MOCK_FAULTS.map((fault) => [fault.recipient, fault]));

/** The fault for a recipient, if it is one of the documented fault numbers or addresses. */
export function faultFor(channel: 'sms' | 'email', to: string): MockFault | undefined {
  let key = to;
  if (channel === 'email') {
    const at = key.lastIndexOf('@');
    const local = key.slice(0, at).toLowerCase();
    const plus = local.indexOf('+');
    key = `${plus > 0 ? local.slice(0, plus) : local}@${key.slice(at + 1).toLowerCase()}`;
  }
  const fault = BY_RECIPIENT.get(key);
  return fault?.channel === channel ? fault : undefined;
}

/**
 * The failure a real adapter reports for this answer: the outcome from the status or transport
 * error, the public answer from the provider error table, Retry-After as when the provider names
 * none. Only `provider` differs ("mock"), so the log tells a fault number from a real failure.
 */
export function failureOf(fault: MockFault, timeoutMs: number): DeliveryFailure | undefined {
  const { answer } = fault;
  switch (answer.kind) {
    case 'dropped':
      return undefined;
    case 'timeout':
      return {
        outcome: 'unknown',
        failure: {
          provider: 'mock',
          netError: 'ETIMEDOUT',
          reason: `no answer within ${timeoutMs} ms`,
        },
      };
    case 'network':
      return {
        outcome: outcomeOfNetError(answer.netError),
        failure: { provider: 'mock', netError: answer.netError, reason: 'request failed' },
      };
    case 'status': {
      const outcome = outcomeOfStatus(answer.httpStatus);
      const row =
        outcome === 'refused'
          ? providerErrorRow(fault.provider, {
              ...(answer.providerCode === undefined ? {} : { providerCode: answer.providerCode }),
              httpStatus: answer.httpStatus,
            })
          : undefined;
      return {
        outcome,
        ...(row ? { code: row.answer } : {}),
        ...(row?.answer === 'provider_rate_limited'
          ? { retryAfterSeconds: DEFAULT_PROVIDER_RETRY_AFTER_SECONDS }
          : {}),
        failure: {
          provider: 'mock',
          httpStatus: answer.httpStatus,
          ...(answer.providerCode === undefined ? {} : { providerCode: answer.providerCode }),
          reason:
            row?.reason ??
            (outcome === 'refused'
              ? 'request refused'
              : 'server error; the message may have been accepted'),
        },
      };
    }
  }
}
