import { randomBytes, randomInt } from 'node:crypto';

/** Injected so tests control time without sleeping. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** Injected so tests can make codes predictable; production uses the CSPRNG. */
export interface RandomSource {
  /** A uniformly distributed integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** A random identifier safe to put in URLs and tokens (at least 128 bits). */
  id(): string;
}

export const systemClock: Clock = { now: () => Date.now() };

export const cryptoRandom: RandomSource = {
  int: (maxExclusive) => randomInt(0, maxExclusive),
  id: () => randomBytes(18).toString('base64url'),
};
