/**
 * The pumping defences' decisions, as pure functions of counts: no store, no clock. The module in
 * index.ts reads the counts and acts on what these answer.
 */

/** How hard a destination is held: nothing, a bot-protection proof per send, or refusal. */
export type Level = 'none' | 'proof' | 'refuse';

/** Numbers sent a code and numbers that entered it, over one window. */
export interface Rate {
  sent: number;
  approved: number;
}

export interface ConversionRule {
  /** The share of numbers sent a code that must enter it (SMS_CONVERSION_FLOOR). */
  floor: number;
  /** Numbers sent a code before a rate is judged at all (SMS_CONVERSION_MIN_SAMPLE). */
  minSample: number;
}

/** z for a two-sided 95% interval: the upper bound is exceeded by chance 2.5% of the time. */
export const WILSON_Z = 1.96;

/**
 * The Wilson score interval of a proportion (Wilson, 1927): unlike the plain k/n ± z·se, it stays
 * inside [0, 1] and is honest for small samples and for rates near 0, which is exactly where a
 * destination that never converts sits. With no trials it is [0, 1]: nothing is known.
 */
export function wilsonInterval(
  successes: number,
  trials: number,
  z = WILSON_Z,
): { lower: number; upper: number } {
  if (!(trials > 0)) return { lower: 0, upper: 1 };
  const k = Math.min(Math.max(successes, 0), trials);
  const p = k / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * A rate is credibly low when enough numbers were sent a code and even the optimistic end of its
 * interval is below the floor: a few people who never enter their code (a phone left at home, a
 * slow SMS) cannot make it so, while a destination where nobody ever does is caught after about
 * minSample messages.
 */
export function credibleLow(rate: Rate, rule: ConversionRule): { low: boolean; upper: number } {
  const { upper } = wilsonInterval(rate.approved, rate.sent);
  return { low: rate.sent >= rule.minSample && upper < rule.floor, upper };
}

export interface ConversionVerdict {
  level: Level;
  /**
   * Whether the evidence still supports the level held, so its hold is renewed. An escalation
   * ends only when it has not been supported for SMS_CONVERSION_HOLD_SECONDS.
   */
  supported: boolean;
  /** The upper bound that decided (of the escalated sends when they did), for the log. */
  upper: number;
  /** The rate that decided, for the log. */
  rate: Rate;
}

/**
 * One destination's conversion level. `all` counts every number sent a code in the window;
 * `escalated` only those sent while the destination was held at proof level. A destination
 * escalates to proof when its rate is credibly low, and from proof to refusal only when the
 * sends made under proof are credibly low too: if proofs stop the bots, the sends that still go
 * out are people's and convert, so people keep getting codes; if the bots solve proofs, their
 * sends keep failing to convert and the destination is refused. A destination never skips the
 * proof stage: refusing people because of old evidence would be the worse mistake.
 */
export function conversionLevel(
  current: Level,
  all: Rate,
  escalated: Rate,
  rule: ConversionRule,
): ConversionVerdict {
  const overall = credibleLow(all, rule);
  if (current === 'none') {
    return {
      level: overall.low ? 'proof' : 'none',
      supported: overall.low,
      upper: overall.upper,
      rate: all,
    };
  }
  const underProof = credibleLow(escalated, rule);
  if (current === 'proof' && underProof.low) {
    return { level: 'refuse', supported: true, upper: underProof.upper, rate: escalated };
  }
  if (current === 'refuse') {
    return {
      level: 'refuse',
      supported: underProof.low,
      upper: underProof.upper,
      rate: escalated,
    };
  }
  return {
    level: 'proof',
    supported: overall.low || underProof.low,
    upper: overall.upper,
    rate: all,
  };
}

/** A country's hourly volume: free up to its limit, then proof, then refused past limit × factor. */
export function volumeLevel(count: number, limit: number, refuseFactor: number): Level {
  if (count > limit * refuseFactor) return 'refuse';
  return count > limit ? 'proof' : 'none';
}

/**
 * A count over a sliding window kept as two fixed windows: all of the current one and the share
 * of the previous one that the sliding window still covers. `elapsed` is the fraction of the
 * current fixed window gone by (0 to 1).
 */
export function slidingCount(current: number, previous: number, elapsed: number): number {
  return current + previous * (1 - Math.min(Math.max(elapsed, 0), 1));
}
