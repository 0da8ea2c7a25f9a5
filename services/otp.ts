import { hmac, seal, unseal } from '../src/crypto';
import type { FailureLimit, SecretWrite, Store } from '../src/store/types';
import type { Clock, RandomSource } from './runtime';

export interface OtpOptions {
  store: Store;
  /** OTP_SECRET: keys the HMAC, so a store dump reveals neither codes nor which targets have them. */
  secret: string;
  /** Digits per code, 4–10. */
  length: number;
  ttlSeconds: number;
  maxAttempts: number;
  random: RandomSource;
  clock: Clock;
}

export type OtpCheck =
  /** `userId`: the one the send named, if it named one. */
  | { status: 'match'; userId?: string }
  | { status: 'mismatch'; attemptsRemaining: number }
  | { status: 'locked' }
  | { status: 'missing' }
  | { status: 'exhausted'; index: number; resetMs: number };

export interface OtpCheckOptions {
  /**
   * The id the send answered. With it the check is judged on that verification alone: its code's
   * own attempts, never those used by checks without it. A wrong id finds no code.
   */
  verificationId?: string;
  /**
   * The recipient's failure counters: a guess is refused uncompared once one is full, and a wrong
   * guess counts on each, in the same store step as the comparison (see Store.attemptSecret).
   */
  failures?: readonly FailureLimit[];
}

/** The recipient of a code: its E.164 number, and its non-reversible id (see targetId). */
export interface OtpTarget {
  to: string;
  id: string;
}

/**
 * One-time codes bound to (channel, purpose, target). Only an HMAC of the code is stored, and the
 * purpose and target go into both the key and the HMAC, so a code can never be replayed elsewhere.
 * The key uses the id the caller already derived for its limits, so no request pays for a second one.
 */
export function createOtpService(options: OtpOptions) {
  const { store, secret, length, ttlSeconds, maxAttempts, random, clock } = options;

  // The id in braces places the code with the recipient's limits and lock (see Store, placement).
  const keyFor = (purpose: string, target: OtpTarget) => `code:${purpose}:{${target.id}}`;
  const hashOf = (purpose: string, to: string, code: string) =>
    hmac(secret, 'otp', purpose, to, code);
  // Only this HMAC of a verificationId is stored, so a store dump yields no usable id.
  const bindingOf = (verificationId: string) => hmac(secret, 'verification-id', verificationId);

  return {
    length,
    /**
     * A fresh code and the write that makes it checkable, replacing any earlier code for the
     * target. Nothing is stored here: the caller stores `secret` in the same step as its send
     * limits (Store.admit), so a refused send never replaces the code the recipient already holds.
     * The plain code is returned only for delivery. `fixed` replaces the random code, for a test
     * identity's configured code (services/test-identities.ts).
     */
    mint(
      purpose: string,
      target: OtpTarget,
      userId?: string,
      fixed?: string,
    ): { code: string; verificationId: string; expiresAt: Date; secret: SecretWrite } {
      const code =
        fixed ??
        random
          .int(10 ** length)
          .toString()
          .padStart(length, '0');
      // At least 128 random bits (RandomSource.id): the caller's handle on this verification.
      const verificationId = random.id();
      const key = keyFor(purpose, target);
      return {
        code,
        verificationId,
        expiresAt: new Date(clock.now() + ttlSeconds * 1000),
        secret: {
          key,
          hash: hashOf(purpose, target.to, code),
          ttlSeconds,
          binding: bindingOf(verificationId),
          // The send's userId goes with its code, so that the proof names the user the code was
          // sent for, not whichever user a check names. Sealed: a store dump must not show it.
          ...(userId === undefined ? {} : { data: seal(secret, key, userId) }),
        },
      };
    },

    async check(
      purpose: string,
      target: OtpTarget,
      code: string,
      options: OtpCheckOptions = {},
    ): Promise<OtpCheck> {
      const key = keyFor(purpose, target);
      const outcome = await store.attemptSecret(
        key,
        hashOf(purpose, target.to, code),
        maxAttempts,
        {
          ...(options.failures ? { failures: options.failures } : {}),
          ...(options.verificationId === undefined
            ? {}
            : { binding: bindingOf(options.verificationId) }),
        },
      );
      switch (outcome.status) {
        case 'mismatch':
          return { status: 'mismatch', attemptsRemaining: outcome.remaining };
        case 'exhausted':
          return outcome;
        case 'match': {
          const userId = outcome.data === undefined ? undefined : unseal(secret, key, outcome.data);
          return userId === undefined ? { status: 'match' } : { status: 'match', userId };
        }
        case 'blocked':
          // No blocker is given, so none can answer; read as the safe answer all the same.
          return { status: 'locked' };
        default:
          return { status: outcome.status };
      }
    },
  };
}

export type OtpService = ReturnType<typeof createOtpService>;

/** A stable, non-reversible id for a phone number or address, used in store keys. */
export function targetId(secret: string, to: string): string {
  return hmac(secret, 'target', to).slice(0, 32);
}
