import { RateLimitError, VerifydError } from '../src/errors';
import type { Store } from '../src/store/types';
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

export interface SendRequest {
  channel: Channel;
  /** Non-reversible id of the phone number or address (see targetId). */
  targetId: string;
  ip: string;
  /** Resends also count against RESEND_MAX. */
  isResend: boolean;
}

/** What a send consumed, so a failed delivery can be handed back. */
export interface SendTicket {
  /** One give-back per count this send took, run when its delivery fails. */
  refunds: Refund[];
}

type Refund = () => Promise<unknown>;

const HOUR = 3600;

/**
 * Every limit on sending, checked in order of cheapness to the attacker's target. Each check is a
 * single atomic store operation, so concurrent sends to one number cannot slip past a limit: of 20
 * simultaneous sends, only the one that set the cooldown reaches the provider.
 */
export function createSendLimits(store: Store, settings: SendLimitSettings, clock: Clock) {
  /** Counts one send under `key`; resolves the key when within `max`, else rejects. */
  async function charge(
    key: string,
    windowSeconds: number,
    max: number,
    onExceeded: (retryAfter: number) => Error,
  ): Promise<Refund> {
    const { count, resetMs } = await store.increment(key, windowSeconds);
    if (count > max) {
      // A refused send must not eat into the limit, or a flood of refused sends would keep it full.
      await store.decrement(key);
      throw onExceeded(resetMs / 1000);
    }
    return () => store.decrement(key);
  }

  /**
   * Counting distinct recipients per IP stops one client from pumping messages to many numbers;
   * a recipient already counted for this IP in the hour costs nothing again.
   */
  async function chargeDistinctTarget(ip: string, targetId: string): Promise<Refund | undefined> {
    const marker = `limit:ip-target:${ip}:${targetId}`;
    if (!(await store.setIfAbsent(marker, '1', HOUR))) return undefined;
    try {
      const uncount = await charge(
        `limit:ip-targets:${ip}`,
        HOUR,
        settings.ipMaxTargetsPerHour,
        (wait) =>
          tooSoon('Too many different recipients from this address; try again later.', wait),
      );
      // Marker and count go back together, so the recipient is counted again next time.
      return () => Promise.all([uncount(), store.delete(marker)]);
    } catch (error) {
      // Refused, so this recipient was not counted: forget the marker so a later try counts it.
      await store.delete(marker);
      throw error;
    }
  }

  return {
    /** Throws RateLimitError (or sms_budget_exhausted) when any limit says no. */
    async acquire(request: SendRequest): Promise<SendTicket> {
      const { channel, targetId, ip, isResend } = request;
      const refunds: Refund[] = [];

      // The cooldown goes first and alone: it is the gate that lets one of many concurrent sends
      // to a recipient through, and it stays spent when a later limit refuses. It is a
      // set-if-absent marker holding its end time, the cheapest atomic gate the store has; only a
      // refused send pays a second read, for its Retry-After.
      if (settings.cooldownSeconds > 0) {
        const key = `limit:cooldown:${channel}:${targetId}`;
        const endsAt = clock.now() + settings.cooldownSeconds * 1000;
        if (!(await store.setIfAbsent(key, String(endsAt), settings.cooldownSeconds))) {
          const current = Number(await store.get(key));
          const wait = Number.isFinite(current) ? (current - clock.now()) / 1000 : 1;
          throw tooSoon(
            `Wait before requesting another ${channel === 'sms' ? 'code' : 'link'}.`,
            wait,
          );
        }
        // A failed delivery ends the cooldown outright.
        refunds.push(() => store.delete(key));
      }

      // The other limits are independent, so they are counted concurrently (one network round trip
      // on Redis, which pipelines them). When one refuses, the others are given back.
      const charges: Promise<Refund | undefined>[] = [
        isResend
          ? charge(
              `limit:resend:${channel}:${targetId}`,
              settings.resendWindowSeconds,
              settings.resendMax,
              (wait) => tooSoon('Too many resends for this recipient; try again later.', wait),
            )
          : Promise.resolve(undefined),
        charge(
          `limit:send:${channel}:${targetId}`,
          settings.sendTargetWindowSeconds,
          settings.sendMaxPerTarget,
          (wait) => tooSoon('Too many messages to this recipient; try again later.', wait),
        ),
        chargeDistinctTarget(ip, targetId),
        channel === 'sms'
          ? charge('limit:sms-budget', HOUR, settings.smsHourlyBudget, (wait) => budgetSpent(wait))
          : Promise.resolve(undefined),
      ];
      const results = await Promise.allSettled(charges);
      const counted = results.flatMap((r) =>
        r.status === 'fulfilled' && r.value ? [r.value] : [],
      );
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (refused) {
        await Promise.all(counted.map((refund) => refund()));
        throw refused.reason;
      }
      return { refunds: [...refunds, ...counted] };
    },

    /**
     * Gives back what a send consumed when the provider did not deliver it: the person did not get
     * a message, so the failure must not cost them a resend or make them wait out a cooldown.
     */
    async refund(ticket: SendTicket): Promise<void> {
      await Promise.all(ticket.refunds.map((refund) => refund()));
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
