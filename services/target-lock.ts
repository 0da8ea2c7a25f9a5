import { RateLimitError } from '../src/errors';
import type { FailureLimit, Store } from '../src/store/types';

export interface TargetLockOptions {
  store: Store;
  /** TARGET_MAX_FAILURES: wrong codes per target per window in checks by recipient alone. */
  maxFailures: number;
  windowSeconds: number;
  /** TARGET_MAX_DAILY_FAILURES: wrong codes per target per day over every path. */
  maxDailyFailures: number;
}

/** How a check names the code it tries: by its verificationId, or by the recipient alone. */
export type CheckPath = 'verification' | 'recipient';

const DAY = 86_400;

/**
 * Counts wrong codes per recipient across codes, purposes and resends. Without it an attacker could
 * request a fresh code after every five misses, or one code per purpose, and keep guessing.
 * The counters are not checked and counted here: they are handed to the attempt itself
 * (Store.attemptSecret `failures`), because a count taken in a step after the comparison lets every
 * guess of a burst be compared before the first one is counted.
 *
 * Two counters, because the two paths differ in who can use them. Anybody who knows a number can
 * check by recipient alone, so those checks get TARGET_MAX_FAILURES per window, and when that is
 * full only they are refused: a check presenting its verificationId is judged on its own code and
 * the daily count, so strangers cannot lock an owner who holds the id out of its own verification.
 * The daily counter takes every wrong guess, on either path, so that a number gets at most
 * TARGET_MAX_DAILY_FAILURES (100, NIST SP 800-63B) a day however the guesses arrive; anybody who
 * can request codes for a number can spend it, at the price of one send per OTP_MAX_ATTEMPTS
 * guesses. Neither counter refuses sends.
 */
export function createTargetLock(options: TargetLockOptions) {
  const { store, maxFailures, windowSeconds, maxDailyFailures } = options;
  // In braces, so the counters live with the recipient's codes and limits (see Store, placement).
  const windowKey = (id: string) => `limit:fail:{${id}}`;
  const dayKey = (id: string) => `limit:fail-day:{${id}}`;

  return {
    /** The counters a check on `path` must find room in, and counts a wrong guess on. */
    failures(targetId: string, path: CheckPath): FailureLimit[] {
      const day = { key: dayKey(targetId), windowSeconds: DAY, max: maxDailyFailures };
      if (path === 'verification') return [day];
      return [{ key: windowKey(targetId), windowSeconds, max: maxFailures }, day];
    },

    /** The answer to a guess refused because one of the recipient's counters is full. */
    refusal(resetMs: number): RateLimitError {
      return new RateLimitError(
        'too_many_attempts',
        'Too many wrong attempts for this recipient; try again later.',
        resetMs / 1000,
      );
    },

    /**
     * A success starts the window's count over. The daily count stays: it bounds the guesses a
     * number gets per day, and an owner's success must not hand an attacker a fresh hundred.
     */
    async clear(targetId: string): Promise<void> {
      await store.delete(windowKey(targetId));
    },
  };
}

export type TargetLock = ReturnType<typeof createTargetLock>;
