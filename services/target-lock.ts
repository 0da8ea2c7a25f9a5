import { RateLimitError } from '../src/errors';
import type { Store } from '../src/store/types';
import type { Clock } from './runtime';
import type { Blocker } from './send-limits';

export interface TargetLockOptions {
  store: Store;
  clock: Clock;
  /** TARGET_MAX_FAILURES: wrong codes per target per window before the target locks. */
  maxFailures: number;
  windowSeconds: number;
}

/**
 * Counts wrong codes per recipient across codes and resends. Without it an attacker could request a
 * fresh code after every five misses and keep guessing; with it a number gets at most
 * TARGET_MAX_FAILURES guesses per window however many codes are sent.
 */
export function createTargetLock({ store, clock, maxFailures, windowSeconds }: TargetLockOptions) {
  // In braces, so the lock lives with the recipient's code and limits (see Store, placement).
  const failKey = (id: string) => `limit:fail:{${id}}`;
  const lockKey = (id: string) => `limit:lock:{${id}}`;

  const locked = (until: string) =>
    new RateLimitError(
      'too_many_attempts',
      'Too many wrong attempts for this recipient; try again later.',
      (Number(until) - clock.now()) / 1000,
    );

  return {
    /**
     * The lock as a blocker key with its too_many_attempts refusal, so that a send or a check
     * tests it in the same store step as its own work.
     */
    blocker(targetId: string): Blocker {
      return { key: lockKey(targetId), refusal: locked };
    },

    /** Counts one failure and locks the target once the window's failures reach the limit. */
    async recordFailure(targetId: string): Promise<number> {
      const { count, resetMs } = await store.increment(failKey(targetId), windowSeconds);
      if (count >= maxFailures) {
        await store.set(
          lockKey(targetId),
          String(clock.now() + resetMs),
          Math.max(1, Math.ceil(resetMs / 1000)),
        );
      }
      return count;
    },

    async clear(targetId: string): Promise<void> {
      await Promise.all([store.delete(failKey(targetId)), store.delete(lockKey(targetId))]);
    },
  };
}

export type TargetLock = ReturnType<typeof createTargetLock>;
