import { RateLimitError } from '../src/errors';
import { keys } from '../src/store/keys';
import type { FailureLimit } from '../src/store/types';

export interface FailureLimitSettings {
  /** TARGET_MAX_FAILURES: wrong codes per recipient per window in checks by recipient alone. */
  maxFailures: number;
  windowSeconds: number;
  /** TARGET_MAX_DAILY_FAILURES: wrong codes per recipient per day over every path. */
  maxDailyFailures: number;
}

/** How a check names the code it tries: by its verificationId, or by the recipient alone. */
export type CheckPath = 'verification' | 'recipient';

const DAY = 86_400;

/**
 * Wrong codes per recipient across codes, purposes and resends. Without them an attacker could
 * request a fresh code after every few misses, or one per purpose, and keep guessing. Pure: the
 * counters are handed to the attempt itself (Store.attempt `failures`), because a count taken in
 * a step after the comparison lets every guess of a burst be compared before the first counts.
 *
 * Two counters, because the two paths differ in who can use them. Anybody who knows a number can
 * check by recipient alone, so those checks get TARGET_MAX_FAILURES per window, and when that is
 * full only they are refused: a check presenting its verificationId is judged on its own code and
 * the daily count, so strangers cannot lock an owner who holds the id out of its verification.
 * The daily counter takes every wrong guess, on either path, so that a number gets at most
 * TARGET_MAX_DAILY_FAILURES (100, NIST SP 800-63B) a day however the guesses arrive. Neither
 * refuses sends.
 */
export function createFailureLimits(settings: FailureLimitSettings) {
  const { maxFailures, windowSeconds, maxDailyFailures } = settings;
  return {
    /** The counters a check on `path` must find room in, and counts a wrong guess on. */
    failures(recipient: string, path: CheckPath): FailureLimit[] {
      const day = { key: keys.dailyFailures(recipient), windowSeconds: DAY, max: maxDailyFailures };
      if (path === 'verification') return [day];
      return [{ key: keys.failures(recipient), windowSeconds, max: maxFailures }, day];
    },

    /**
     * What a success clears: the window's count starts over. The daily count stays: an owner's
     * success must not hand an attacker a fresh hundred.
     */
    clearedOnSuccess(recipient: string): string {
      return keys.failures(recipient);
    },

    /** The answer to a guess refused because one of the recipient's counters is full. */
    refusal(resetMs: number): RateLimitError {
      return new RateLimitError(
        'too_many_attempts',
        'Too many wrong attempts for this recipient; try again later.',
        resetMs / 1000,
      );
    },
  };
}

export type FailureLimits = ReturnType<typeof createFailureLimits>;
