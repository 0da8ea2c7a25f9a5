import { RateLimitError, refusedBy, VerifydError } from '../src/errors';
import type { AdmissionCounter, SecretWrite, Store } from '../src/store/types';
import type { Clock } from './runtime';
import type { Channel } from './targets';

export interface SendLimitSettings {
  cooldownSeconds: number;
  resendMax: number;
  resendWindowSeconds: number;
  sendMaxPerTarget: number;
  sendTargetWindowSeconds: number;
  ipMaxTargetsPerHour: number;
  smsHourlyBudget: number;
}

/** A key whose presence refuses a send or a check before anything is counted, e.g. a target's lock. */
export interface Blocker {
  key: string;
  /** The error to throw, given the value found at the key. */
  refusal(value: string): Error;
}

export interface SendRequest {
  channel: Channel;
  /** Non-reversible id of the phone number or address (see targetId). */
  targetId: string;
  /** The sender's client key (an IPv4 address or an IPv6 network), as every per-client limit counts it. */
  client: string;
  /** Resends also count against RESEND_MAX. */
  isResend: boolean;
  blockers?: readonly Blocker[];
  /** The code or link the send delivers, stored only when every limit allows the send. */
  secret?: SecretWrite;
}

/** What a send consumed, so a failed delivery can be handed back. */
export interface SendTicket {
  /** The cooldown this send started, if any. */
  cooldownKey: string | undefined;
  /** The counters it counted (with their distinct markers). */
  counted: AdmissionCounter[];
}

interface Limit {
  counter: AdmissionCounter;
  refusal(retryAfterSeconds: number): Error;
}

const HOUR = 3600;

/** What each limit answers when it refuses, given the seconds until its window ends. */
const refusals = {
  resend: (wait: number) =>
    refusedBy('resend', tooSoon('Too many resends for this recipient; try again later.', wait)),
  send: (wait: number) =>
    refusedBy('recipient', tooSoon('Too many messages to this recipient; try again later.', wait)),
  ipTargets: (wait: number) =>
    refusedBy(
      'client_recipients',
      tooSoon('Too many different recipients from this network; try again later.', wait),
    ),
  smsBudget: (wait: number) => refusedBy('sms_budget', budgetSpent(wait)),
};

/**
 * Every limit on sending, checked and counted by one atomic store operation (store.admit), so
 * concurrent sends to one number cannot slip past a limit and a send costs one store round trip:
 * of 20 simultaneous sends, only the one that starts the cooldown reaches the provider, and a
 * refused send counts nothing, so a flood of refused sends cannot keep a limit full.
 */
export function createSendLimits(store: Store, settings: SendLimitSettings, clock: Clock) {
  // Braces hold what places a key where the store spreads keys over several servers (see Store):
  // a recipient's keys live together, and so do a client's; the SMS budget is one key (README:
  // one shard handles it with room to spare, and a split budget would be an inexact money cap).
  // On Redis Cluster those are three slots, and the store runs one script per slot with
  // take-back (RedisStore.admitAcrossSlots).
  function limitsFor({ channel, targetId, client, isResend }: SendRequest): Limit[] {
    const limits: Limit[] = [];
    if (isResend) {
      limits.push({
        counter: {
          key: `limit:resend:${channel}:{${targetId}}`,
          windowSeconds: settings.resendWindowSeconds,
          max: settings.resendMax,
        },
        refusal: refusals.resend,
      });
    }
    limits.push({
      counter: {
        key: `limit:send:${channel}:{${targetId}}`,
        windowSeconds: settings.sendTargetWindowSeconds,
        max: settings.sendMaxPerTarget,
      },
      refusal: refusals.send,
    });
    // Counting distinct recipients per client stops one client from pumping messages to many
    // numbers; a recipient already counted for this client in the hour costs nothing again.
    limits.push({
      counter: {
        key: `limit:ip-targets:{${client}}`,
        windowSeconds: HOUR,
        max: settings.ipMaxTargetsPerHour,
        distinct: { key: `limit:ip-target:{${client}}:${targetId}`, ttlSeconds: HOUR },
      },
      refusal: refusals.ipTargets,
    });
    if (channel === 'sms') {
      limits.push({
        counter: { key: 'limit:sms-budget', windowSeconds: HOUR, max: settings.smsHourlyBudget },
        refusal: refusals.smsBudget,
      });
    }
    return limits;
  }

  return {
    /** Throws a blocker's refusal, RateLimitError or sms_budget_exhausted when a limit says no. */
    async acquire(request: SendRequest): Promise<SendTicket> {
      const blockers = request.blockers ?? [];
      const limits = limitsFor(request);
      // The cooldown is the gate: a marker holding its end time, so that only a refused send
      // pays for computing its Retry-After. It stays spent when a counter refuses.
      const cooldown =
        settings.cooldownSeconds > 0
          ? {
              key: `limit:cooldown:${request.channel}:{${request.targetId}}`,
              value: String(clock.now() + settings.cooldownSeconds * 1000),
              ttlSeconds: settings.cooldownSeconds,
            }
          : undefined;
      const outcome = await store.admit({
        blockers: blockers.map((blocker) => blocker.key),
        ...(cooldown ? { gate: cooldown } : {}),
        counters: limits.map((limit) => limit.counter),
        ...(request.secret ? { secret: request.secret } : {}),
      });
      switch (outcome.status) {
        case 'blocked':
          throw (blockers[outcome.index] as Blocker).refusal(outcome.value);
        case 'gated': {
          const endsAt = Number(outcome.value);
          const wait = Number.isFinite(endsAt) ? (endsAt - clock.now()) / 1000 : 1;
          throw refusedBy(
            'cooldown',
            tooSoon(
              `Wait before requesting another ${request.channel === 'sms' ? 'code' : 'link'}.`,
              wait,
            ),
          );
        }
        case 'exceeded':
          throw (limits[outcome.index] as Limit).refusal(outcome.resetMs / 1000);
        default:
          return {
            cooldownKey: cooldown?.key,
            counted: limits.filter((_, i) => outcome.counted[i]).map((limit) => limit.counter),
          };
      }
    },

    /**
     * Gives back what a send consumed when the provider did not deliver it: the person did not get
     * a message, so the failure must not cost them a resend or make them wait out a cooldown. A
     * recipient's marker goes with its count, so the recipient is counted again next time.
     */
    async refund(ticket: SendTicket): Promise<void> {
      await Promise.all([
        ticket.cooldownKey === undefined ? undefined : store.delete(ticket.cooldownKey),
        ...ticket.counted.flatMap((counter) => [
          store.decrement(counter.key),
          counter.distinct ? store.delete(counter.distinct.key) : undefined,
        ]),
      ]);
    },
  };
}

export type SendLimits = ReturnType<typeof createSendLimits>;

function budgetSpent(retryAfterSeconds: number): VerifydError {
  return new VerifydError(
    'sms_budget_exhausted',
    'The hourly SMS budget is spent; try again later.',
    {
      retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)),
    },
  );
}

function tooSoon(message: string, retryAfterSeconds: number): RateLimitError {
  return new RateLimitError('rate_limited', message, retryAfterSeconds);
}
