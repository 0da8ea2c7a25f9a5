import { hmac } from '../../src/crypto';
import { DeliveryFailedError, VerifydError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { Clock } from '../runtime';
import type { PhoneTarget } from '../targets';
import { conversionLevel, type Level, type Rate, slidingCount, volumeLevel } from './decide';
import type { PumpingStore } from './keys';
import {
  counterTtl,
  countryScope,
  DAY_SECONDS,
  fraudKeys,
  HOUR_SECONDS,
  JOURNAL_SLOTS,
  prefixScope,
  type RateCounter,
  type Scope,
  type StateName,
  windowAt,
} from './keys';
import { isSafeListed, type NumberFacts, numberFacts, shownPrefix, typeAllowed } from './number';
import type { PumpingSettings } from './settings';

export type SignalName =
  | 'number_type'
  | 'country_volume'
  | 'prefix_velocity'
  | 'conversion'
  | 'daily_budget';

/**
 * What happened: a send refused or asked for a proof, or a destination blocked, escalated or
 * released (its block or escalation ended; a lift by the CLI runs in another process and is
 * printed there).
 */
export type SignalAction = 'refused' | 'proof_required' | 'blocked' | 'escalated' | 'released';

/** One event for metrics. Its labels are bounded: a country code, never a number or a prefix. */
export interface PumpingSignal {
  /** ISO 3166-1 alpha-2 code, or 001 for numbers outside any country. */
  country: string;
  signal: SignalName;
  action: SignalAction;
}

export interface PumpingOptions {
  store: PumpingStore;
  settings: PumpingSettings;
  clock: Clock;
  logger: Logger;
  /**
   * Whether a send can be asked for a proof (bot protection is on). Without it, a step that
   * would ask for one lets the send through, and the steps that refuse still apply.
   */
  proofAvailable: boolean;
  /** Called for every signal that fires, e.g. to count it in metrics. Must not throw. */
  onSignal?: (event: PumpingSignal) => void;
}

/** The verdict on one send that was not refused. */
export interface Assessment {
  /** The send must carry a bot-protection proof even where BOT_PROTECTION_MODE would not ask. */
  needsProof: boolean;
  /**
   * Gives back what the assessment counted, for a send that did not go out (refused by a later
   * limit or by bot protection, or refused by the provider). A send whose outcome is unknown
   * (`DeliveryFailedError` with outcome `unknown`) stays counted, as the send limits do.
   */
  release(error?: unknown): Promise<void>;
}

export interface PumpingDefence {
  readonly enabled: boolean;
  /**
   * Judges a send before admission. Throws the refusal (a VerifydError with a stable code);
   * otherwise counts the send provisionally and says whether it needs a proof.
   */
  assess(target: PhoneTarget): Promise<Assessment>;
  /**
   * assess, then `send` (which must demand a proof when told to), then release when `send`
   * throws: the whole hook around a send in one call.
   */
  guard<T>(target: PhoneTarget, send: (needsProof: boolean) => Promise<T>): Promise<T>;
  /** Counts a code entered correctly, for the conversion rates. Never throws. */
  recordApproved(target: PhoneTarget): Promise<void>;
}

/** A block or escalation as stored: when it began and ends (clock ms) and what caused it. */
export interface HeldState {
  since: number;
  until: number;
  [detail: string]: unknown;
}

const HOUR_MS = HOUR_SECONDS * 1000;
const DAY_MS = DAY_SECONDS * 1000;
/**
 * An ended state is kept this much longer, so the first send after its end can log the release
 * (nothing runs on a timer here). A destination nobody sends to within a day of the end lets it
 * expire without a line. States exist only where sends were refused or escalated, so the extra
 * day costs little memory.
 */
const END_GRACE_SECONDS = DAY_SECONDS;
const NO_RATE: Rate = { sent: 0, approved: 0 };
const PASS: Assessment = { needsProof: false, release: async () => {} };

/** A stored state, or undefined when absent or unreadable (a damaged entry must not refuse). */
export function parseState(value: string | undefined): HeldState | undefined {
  if (value === undefined) return undefined;
  try {
    const state = JSON.parse(value) as Partial<HeldState> | null;
    if (typeof state?.until !== 'number' || typeof state.since !== 'number') return undefined;
    return state as HeldState;
  } catch {
    return undefined;
  }
}

const active = (state: HeldState | undefined, now: number): state is HeldState =>
  state !== undefined && state.until > now;

const secondsUntil = (until: number, now: number) => Math.max(1, Math.ceil((until - now) / 1000));

/**
 * The SMS pumping defences (README "SMS pumping"): number types, per-country hourly volume,
 * prefix velocity, conversion rates per country and prefix, and the daily soft budget. It sits in
 * front of the send limits and uses only the store's primitives (get, set, setIfAbsent, delete,
 * increment, decrement), each key tagged by its destination.
 *
 * Counting happens before the send and is given back when the send does not go out, so a burst of
 * concurrent sends cannot pass a cap (each increment is atomic, and whoever counts past it is
 * refused), and a flood of sends that bot protection or another limit refuses counts nothing.
 */
export function createPumpingDefence(options: PumpingOptions): PumpingDefence {
  const { store, settings, clock, logger, proofAvailable } = options;
  const { conversion } = settings;
  const holdMs = conversion.holdSeconds * 1000;

  const signal = (country: string, name: SignalName, action: SignalAction) => {
    try {
      options.onSignal?.({ country, signal: name, action });
    } catch (error) {
      logger.warn({ err: error }, 'sms pumping: the signal callback threw');
    }
  };

  /** Where a log line says the send was going: the country and the prefix, never the number. */
  const where = (facts: NumberFacts) => ({ country: facts.country, prefix: shownPrefix(facts) });

  const refused = (facts: NumberFacts, name: SignalName, error: VerifydError, extra = {}) => {
    signal(facts.country, name, 'refused');
    logger.info(
      { ...where(facts), signal: name, answered: error.code, ...extra },
      'sms pumping defence refused a send',
    );
    return error;
  };

  const numberId = (e164: string) => hmac(settings.secret, 'fraud-record', e164).slice(0, 22);

  const readCount = async (key: string) => Number((await store.get(key)) ?? 0) || 0;
  const readState = async (key: string) => parseState(await store.get(key));

  /** A sliding-window rate from the current and the previous fixed window. */
  const readRate = async (
    scope: Scope,
    [sent, approved]: [RateCounter, RateCounter],
    at: { bucket: number; elapsed: number },
  ): Promise<Rate> => {
    const [s1, s0, a1, a0] = await Promise.all([
      readCount(fraudKeys.rate(scope, sent, at.bucket)),
      readCount(fraudKeys.rate(scope, sent, at.bucket - 1)),
      readCount(fraudKeys.rate(scope, approved, at.bucket)),
      readCount(fraudKeys.rate(scope, approved, at.bucket - 1)),
    ]);
    return {
      sent: slidingCount(s1, s0, at.elapsed),
      approved: slidingCount(a1, a0, at.elapsed),
    };
  };

  const stateTtl = (until: number, now: number) => secondsUntil(until, now) + END_GRACE_SECONDS;

  /** Prefix states also go to the journal, so the CLI can find them (see JOURNAL_SLOTS). */
  const journal = async (facts: NumberFacts, until: number, now: number) => {
    const { count } = await store.increment(fraudKeys.journalSeq, 30 * DAY_SECONDS);
    const entry = JSON.stringify({
      prefix: facts.prefix,
      dropped: facts.dropped,
      country: facts.country,
    });
    await store.set(fraudKeys.journal(count % JOURNAL_SLOTS), entry, stateTtl(until, now));
  };

  /**
   * Removes a state past its end and logs the release; of several workers finding it at once,
   * only the one whose delete removed it logs.
   */
  const endState = async (
    scope: Scope,
    name: StateName,
    state: HeldState,
    facts: NumberFacts,
    signalName: SignalName,
  ) => {
    if (!(await store.delete(fraudKeys.state(scope, name)))) return;
    signal(facts.country, signalName, 'released');
    logger.warn(
      {
        ...(scope.kind === 'prefix' ? where(facts) : { country: facts.country }),
        scope: scope.kind,
        signal: signalName,
        state: name,
        since: new Date(state.since).toISOString(),
      },
      name === 'block' ? 'sms pumping: prefix block ended' : 'sms pumping: escalation ended',
    );
  };

  /**
   * One destination's conversion level, raising or renewing its escalation as the evidence says.
   * Each level is its own key, created with setIfAbsent, so of several workers raising it at once
   * exactly one logs it.
   */
  const judge = async (
    scope: Scope,
    [proof, refusal]: [HeldState | undefined, HeldState | undefined],
    all: Rate,
    at: { bucket: number; elapsed: number },
    facts: NumberFacts,
    now: number,
  ): Promise<{ level: Level; until: number }> => {
    if (proof && !active(proof, now)) {
      await endState(scope, 'proof', proof, facts, 'conversion');
      proof = undefined;
    }
    if (refusal && !active(refusal, now)) {
      await endState(scope, 'refuse', refusal, facts, 'conversion');
      refusal = undefined;
    }
    const held = refusal ?? proof;
    const current: Level = refusal ? 'refuse' : proof ? 'proof' : 'none';
    const escalated = current === 'none' ? NO_RATE : await readRate(scope, ['esent', 'ok-esc'], at);
    const verdict = conversionLevel(current, all, escalated, conversion);
    const until = now + holdMs;
    if (verdict.level !== 'none' && verdict.level !== current) {
      const state: HeldState = {
        since: now,
        until,
        sent: Math.round(verdict.rate.sent * 10) / 10,
        approved: Math.round(verdict.rate.approved * 10) / 10,
        upper: Math.round(verdict.upper * 1000) / 1000,
        floor: conversion.floor,
      };
      const key = fraudKeys.state(scope, verdict.level as StateName);
      if (await store.setIfAbsent(key, JSON.stringify(state), stateTtl(until, now))) {
        signal(facts.country, 'conversion', 'escalated');
        logger.warn(
          {
            ...(scope.kind === 'prefix' ? where(facts) : { country: facts.country }),
            scope: scope.kind,
            signal: 'conversion',
            level: verdict.level,
            sent: state.sent,
            approved: state.approved,
            upper: state.upper,
            floor: conversion.floor,
            minSample: conversion.minSample,
            until: new Date(until).toISOString(),
          },
          'sms pumping: destination escalated',
        );
        if (scope.kind === 'prefix') await journal(facts, until, now);
      }
      return { level: verdict.level, until };
    }
    // Renewed only now and then, not at every send: the hold is long, and a write per send to
    // one key per country would be a hot key for nothing.
    if (held && verdict.supported && held.until - now < holdMs * 0.9) {
      const renewed = { ...held, until };
      const name: StateName = current === 'refuse' ? 'refuse' : 'proof';
      await store.set(fraudKeys.state(scope, name), JSON.stringify(renewed), stateTtl(until, now));
      if (scope.kind === 'prefix') await journal(facts, until, now);
      return { level: current, until };
    }
    return { level: current, until: held?.until ?? now };
  };

  const blockPrefix = async (facts: NumberFacts, distinct: number, now: number) => {
    const until = now + settings.prefixBlockSeconds * 1000;
    const state: HeldState = {
      since: now,
      until,
      distinct: Math.round(distinct * 10) / 10,
      threshold: settings.prefixHourlyDistinct,
    };
    const key = fraudKeys.state(prefixScope(facts.prefix), 'block');
    if (!(await store.setIfAbsent(key, JSON.stringify(state), stateTtl(until, now)))) return;
    signal(facts.country, 'prefix_velocity', 'blocked');
    logger.warn(
      {
        ...where(facts),
        signal: 'prefix_velocity',
        distinct: state.distinct,
        threshold: settings.prefixHourlyDistinct,
        until: new Date(until).toISOString(),
      },
      'sms pumping: prefix blocked',
    );
    await journal(facts, until, now);
  };

  const prefixBlocked = (facts: NumberFacts, until: number, now: number) =>
    refused(
      facts,
      'prefix_velocity',
      new VerifydError(
        'prefix_blocked',
        'SMS to this range of numbers is paused after unusual traffic; try again later.',
        { retryAfter: secondsUntil(until, now) },
      ),
    );

  async function assess(target: PhoneTarget): Promise<Assessment> {
    if (!settings.enabled || isSafeListed(target.to, settings.safeList)) return PASS;
    const facts = numberFacts(target.to, target.country, settings.prefixDropDigits);
    if (!typeAllowed(facts.type, settings.allowedTypes)) {
      throw refused(
        facts,
        'number_type',
        new VerifydError(
          'number_type_not_allowed',
          'SMS verification is not offered for this kind of number; use a mobile number.',
          { numberType: facts.type },
        ),
        { numberType: facts.type },
      );
    }

    const now = clock.now();
    const country = countryScope(facts.country);
    const prefix = prefixScope(facts.prefix);
    const hour = Math.floor(now / HOUR_MS);
    const at = windowAt(now, conversion.windowSeconds);
    const [block, prefixLift, countryLift, countryHeld, prefixHeld, countryRate, prefixRate] =
      await Promise.all([
        readState(fraudKeys.state(prefix, 'block')),
        readState(fraudKeys.state(prefix, 'lift')),
        readState(fraudKeys.state(country, 'lift')),
        Promise.all([
          readState(fraudKeys.state(country, 'proof')),
          readState(fraudKeys.state(country, 'refuse')),
        ]),
        Promise.all([
          readState(fraudKeys.state(prefix, 'proof')),
          readState(fraudKeys.state(prefix, 'refuse')),
        ]),
        readRate(country, ['sent', 'ok'], at),
        readRate(prefix, ['sent', 'ok'], at),
      ]);
    const prefixLifted = active(prefixLift, now);

    if (block && !active(block, now)) {
      await endState(prefix, 'block', block, facts, 'prefix_velocity');
    } else if (block && !prefixLifted) {
      throw prefixBlocked(facts, block.until, now);
    }

    // Lifted by an operator: no conversion escalation for the lift's duration.
    const countryLevel = active(countryLift, now)
      ? { level: 'none' as const, until: now }
      : await judge(country, countryHeld, countryRate, at, facts, now);
    const prefixLevel = prefixLifted
      ? { level: 'none' as const, until: now }
      : await judge(prefix, prefixHeld, prefixRate, at, facts, now);
    for (const [scope, held] of [
      [country, countryLevel],
      [prefix, prefixLevel],
    ] as const) {
      if (held.level !== 'refuse') continue;
      throw refused(
        facts,
        'conversion',
        new VerifydError(
          'destination_suspended',
          'SMS to this destination is suspended: too few of its codes were entered. Try again later.',
          { retryAfter: secondsUntil(held.until, now) },
        ),
        { scope: scope.kind },
      );
    }

    // Counted now, given back by release() if the send does not go out.
    const flags = `${countryLevel.level === 'proof' ? 'c' : ''}${prefixLevel.level === 'proof' ? 'p' : ''}`;
    const volumeKey = fraudKeys.volume(facts.country, hour);
    const dayKey = fraudKeys.day(Math.floor(now / DAY_MS));
    const recordKey = fraudKeys.record(facts.prefix, numberId(target.to));
    const daily = settings.dailySoftBudget > 0;
    const [volume, day, fresh, seenBefore] = await Promise.all([
      store.increment(volumeKey, counterTtl(HOUR_SECONDS)),
      daily ? store.increment(dayKey, counterTtl(DAY_SECONDS)) : undefined,
      // One record per number while its code lives: a resend or a retry after a proof is not a
      // new number for the prefix and conversion counts, and the approval finds what to credit.
      store.setIfAbsent(recordKey, flags || '-', settings.recordSeconds),
      readCount(fraudKeys.seen(facts.prefix, hour - 1)),
    ]);
    const taken: string[] = [volumeKey, ...(daily ? [dayKey] : [])];
    let seen = 0;
    if (fresh) {
      const counters: [string, number][] = [
        [fraudKeys.seen(facts.prefix, hour), counterTtl(HOUR_SECONDS)],
        [fraudKeys.rate(country, 'sent', at.bucket), counterTtl(conversion.windowSeconds)],
        [fraudKeys.rate(prefix, 'sent', at.bucket), counterTtl(conversion.windowSeconds)],
      ];
      if (flags.includes('c')) {
        counters.push([
          fraudKeys.rate(country, 'esent', at.bucket),
          counterTtl(conversion.windowSeconds),
        ]);
      }
      if (flags.includes('p')) {
        counters.push([
          fraudKeys.rate(prefix, 'esent', at.bucket),
          counterTtl(conversion.windowSeconds),
        ]);
      }
      const counts = await Promise.all(counters.map(([key, ttl]) => store.increment(key, ttl)));
      taken.push(...counters.map(([key]) => key));
      seen = counts[0]?.count ?? 0;
    }
    let given = false;
    const giveBack = async () => {
      if (given) return;
      given = true;
      await Promise.all([
        ...taken.map((key) => store.decrement(key)),
        fresh ? store.delete(recordKey) : undefined,
      ]);
    };

    const limit = settings.countryLimit(facts.country);
    const volumeVerdict = volumeLevel(volume.count, limit, settings.refuseFactor);
    if (volumeVerdict === 'refuse') {
      await giveBack();
      throw refused(
        facts,
        'country_volume',
        new VerifydError(
          'country_limit_reached',
          "SMS to this number's country has reached its hourly limit; try again later.",
          { retryAfter: secondsUntil((hour + 1) * HOUR_MS, now) },
        ),
        { count: volume.count, limit, refuseAt: limit * settings.refuseFactor },
      );
    }
    if (fresh && !prefixLifted) {
      const distinct = slidingCount(seen, seenBefore, (now % HOUR_MS) / HOUR_MS);
      if (distinct > settings.prefixHourlyDistinct) {
        await giveBack();
        await blockPrefix(facts, distinct, now);
        throw prefixBlocked(facts, now + settings.prefixBlockSeconds * 1000, now);
      }
    }

    const reasons: SignalName[] = [];
    if (volumeVerdict === 'proof') reasons.push('country_volume');
    if (day && day.count > settings.dailySoftBudget) reasons.push('daily_budget');
    if (flags !== '') reasons.push('conversion');
    if (reasons.length > 0) {
      const fields = {
        ...where(facts),
        signals: reasons,
        volume: volume.count,
        limit,
        ...(day ? { daySent: day.count, dailySoftBudget: settings.dailySoftBudget } : {}),
        ...(flags !== '' ? { escalated: flags.includes('c') ? 'country' : 'prefix' } : {}),
      };
      if (proofAvailable) {
        for (const name of reasons) signal(facts.country, name, 'proof_required');
        logger.info(fields, 'sms pumping defence asked for a proof');
      } else {
        logger.debug(fields, 'sms pumping defence would ask for a proof; bot protection is off');
      }
    }
    return {
      needsProof: proofAvailable && reasons.length > 0,
      release: async (error) => {
        if (error instanceof DeliveryFailedError && error.outcome === 'unknown') return;
        await giveBack();
      },
    };
  }

  return {
    enabled: settings.enabled,
    assess,

    async guard(target, send) {
      const assessment = await assess(target);
      try {
        return await send(assessment.needsProof);
      } catch (error) {
        // The send's own error is what the client must see, whatever the give-back meets.
        await assessment
          .release(error)
          .catch((releaseError: unknown) =>
            logger.warn({ err: releaseError }, 'sms pumping: could not give back a refused send'),
          );
        throw error;
      }
    },

    async recordApproved(target) {
      if (!settings.enabled || isSafeListed(target.to, settings.safeList)) return;
      try {
        const facts = numberFacts(target.to, target.country, settings.prefixDropDigits);
        const key = fraudKeys.record(facts.prefix, numberId(target.to));
        const flags = await store.get(key);
        // The record goes with its first approval, so each number sent a code counts once.
        if (flags === undefined || !(await store.delete(key))) return;
        const { bucket } = windowAt(clock.now(), conversion.windowSeconds);
        const country = countryScope(facts.country);
        const prefix = prefixScope(facts.prefix);
        const counters: [Scope, RateCounter][] = [
          [country, 'ok'],
          [prefix, 'ok'],
        ];
        if (flags.includes('c')) counters.push([country, 'ok-esc']);
        if (flags.includes('p')) counters.push([prefix, 'ok-esc']);
        await Promise.all(
          counters.map(([scope, counter]) =>
            store.increment(
              fraudKeys.rate(scope, counter, bucket),
              counterTtl(conversion.windowSeconds),
            ),
          ),
        );
      } catch (error) {
        // The code was right and is used up; a store hiccup here must not turn that into a 503.
        // A lost approval only makes the rate look worse, the safe side.
        logger.warn({ err: error }, 'sms pumping: could not count an approval');
      }
    },
  };
}
