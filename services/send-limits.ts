import { RateLimitError, refusedBy, VerifydError } from '../src/errors';
import { type Channel, keys } from '../src/store/keys';
import type { Admission, AdmissionCounter, AdmissionOutcome } from '../src/store/types';
import type { Clock } from './runtime';

export interface SendLimitSettings {
  cooldownSeconds: number;
  resendMax: number;
  resendWindowSeconds: number;
  sendMaxPerTarget: number;
  sendTargetWindowSeconds: number;
  ipMaxTargetsPerHour: number;
  smsHourlyBudget: number;
}

export interface SendRequest {
  channel: Channel;
  /** Non-reversible id of the phone number or mailbox (see recipientId). */
  recipient: string;
  /**
   * The sender's client key (an IPv4 address or an IPv6 network). Absent when the caller is a
   * backend that did not say whose request it relays (the Twilio-compatible API without
   * DeviceIp): then no per-client limit applies, since every request would share its address.
   */
  client: string | undefined;
  /** Resends also count against RESEND_MAX. */
  isResend: boolean;
}

/** The limits of one send, as the store checks them, and what each refusal answers. */
export interface SendPlan {
  admission: Pick<Admission, 'gate' | 'counters'>;
  /** The error for a refused admission. */
  refusal(outcome: Exclude<AdmissionOutcome, { status: 'admitted' }>): Error;
}

interface Limit {
  counter: AdmissionCounter;
  refusal(retryAfterSeconds: number): Error;
}

const HOUR = 3600;

/** Which limit refused a send, for a front door that answers each differently (the Twilio API). */
export type SendLimitKind = 'cooldown' | 'resend' | 'send' | 'client';

/** A send refused by one of its limits; `sendLimit` says which (the Twilio front door maps it). */
export class SendLimitError extends RateLimitError {
  constructor(
    readonly sendLimit: SendLimitKind,
    message: string,
    retryAfterSeconds: number,
  ) {
    super('rate_limited', message, retryAfterSeconds);
  }
}

/** What each limit answers when it refuses, given the seconds until its window ends. */
const refusals = {
  resend: (wait: number) =>
    refusedBy(
      'resend',
      tooSoon('resend', 'Too many resends for this recipient; try again later.', wait),
    ),
  send: (wait: number) =>
    refusedBy(
      'recipient',
      tooSoon('send', 'Too many messages to this recipient; try again later.', wait),
    ),
  ipTargets: (wait: number) =>
    refusedBy(
      'client_recipients',
      tooSoon('client', 'Too many different recipients from this network; try again later.', wait),
    ),
  smsBudget: (wait: number) => refusedBy('sms_budget', budgetSpent(wait)),
};

/**
 * Every limit on sending, as a plan the send flow hands to one atomic store operation
 * (Store.admit): concurrent sends to one number cannot slip past a limit, of 20 simultaneous sends
 * only the one that starts the cooldown reaches the provider, and a refused send counts nothing.
 * Pure: the send flow makes the store calls.
 */
export function createSendLimits(settings: SendLimitSettings, clock: Clock) {
  function limitsFor({ channel, recipient, client, isResend }: SendRequest): Limit[] {
    const limits: Limit[] = [];
    if (isResend) {
      limits.push({
        counter: {
          key: keys.resends(channel, recipient),
          windowSeconds: settings.resendWindowSeconds,
          max: settings.resendMax,
        },
        refusal: refusals.resend,
      });
    }
    limits.push({
      counter: {
        key: keys.sends(channel, recipient),
        windowSeconds: settings.sendTargetWindowSeconds,
        max: settings.sendMaxPerTarget,
      },
      refusal: refusals.send,
    });
    // Counting distinct recipients per client stops one client from pumping messages to many
    // numbers; a recipient already counted for this client in the hour costs nothing again.
    if (client !== undefined) {
      limits.push({
        counter: {
          key: keys.clientRecipients(client),
          windowSeconds: HOUR,
          max: settings.ipMaxTargetsPerHour,
          distinct: { key: keys.clientRecipient(client, recipient), ttlSeconds: HOUR },
        },
        refusal: refusals.ipTargets,
      });
    }
    if (channel === 'sms') {
      limits.push({
        counter: { key: keys.smsBudget(), windowSeconds: HOUR, max: settings.smsHourlyBudget },
        refusal: refusals.smsBudget,
      });
    }
    return limits;
  }

  return {
    plan(request: SendRequest): SendPlan {
      const limits = limitsFor(request);
      // The cooldown is the gate: a marker holding its end time, so that only a refused send
      // pays for computing its Retry-After. A counter's refusal takes it back with the counts.
      const gate =
        settings.cooldownSeconds > 0
          ? {
              key: keys.cooldown(request.channel, request.recipient),
              value: String(clock.now() + settings.cooldownSeconds * 1000),
              ttlSeconds: settings.cooldownSeconds,
            }
          : undefined;
      return {
        admission: { ...(gate ? { gate } : {}), counters: limits.map((limit) => limit.counter) },
        refusal(outcome) {
          if (outcome.status === 'exceeded') {
            return (limits[outcome.index] as Limit).refusal(outcome.resetMs / 1000);
          }
          const endsAt = Number(outcome.value);
          const wait = Number.isFinite(endsAt) ? (endsAt - clock.now()) / 1000 : 1;
          return refusedBy(
            'cooldown',
            tooSoon(
              'cooldown',
              `Wait before requesting another ${request.channel === 'sms' ? 'code' : 'link'}.`,
              wait,
            ),
          );
        },
      };
    },
  };
}

export type SendLimits = ReturnType<typeof createSendLimits>;

function budgetSpent(retryAfterSeconds: number): VerifydError {
  return new VerifydError(
    'sms_budget_exhausted',
    'The hourly SMS budget is spent; try again later.',
    { retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)) },
  );
}

function tooSoon(limit: SendLimitKind, message: string, retryAfterSeconds: number): RateLimitError {
  return new SendLimitError(limit, message, retryAfterSeconds);
}
