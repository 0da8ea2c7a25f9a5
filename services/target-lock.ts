import { RateLimitError } from '../src/errors';
import type { FailureLimit, Store } from '../src/store/types';

export interface TargetLockOptions {
  store: Store;
  /** TARGET_MAX_FAILURES: wrong codes per target per window before the target locks. */
  maxFailures: number;
  windowSeconds: number;
}

/**
 * Counts wrong codes per recipient across codes, purposes and resends. Without it an attacker could
 * request a fresh code after every five misses, or one code per purpose, and keep guessing; with it
 * a number gets at most TARGET_MAX_FAILURES guesses per window however many codes are live.
 * The counter is not checked and counted here: it is handed to the attempt itself
 * (Store.attemptSecret `failures`), because a count taken in a step after the comparison lets every
 * guess of a burst be compared before the first one is counted.
 */
export function createTargetLock({ store, maxFailures, windowSeconds }: TargetLockOptions) {
  // In braces, so the counter lives with the recipient's codes and limits (see Store, placement).
  const failKey = (id: string) => `limit:fail:{${id}}`;

  return {
    /** The recipient's failure counter, for the attempt to check and count in its own step. */
    failures(targetId: string): FailureLimit {
      return { key: failKey(targetId), windowSeconds, max: maxFailures };
    },

    /** The answer to a guess refused because the recipient's failures are at the limit. */
    refusal(resetMs: number): RateLimitError {
      return new RateLimitError(
        'too_many_attempts',
        'Too many wrong attempts for this recipient; try again later.',
        resetMs / 1000,
      );
    },

    /** A success starts the recipient's count over. */
    async clear(targetId: string): Promise<void> {
      await store.delete(failKey(targetId));
    },
  };
}

export type TargetLock = ReturnType<typeof createTargetLock>;
