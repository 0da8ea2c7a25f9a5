import { getCountries } from 'libphonenumber-js/max';
import { NON_GEOGRAPHIC } from '../../src/config';
import type { Clock } from '../runtime';
import { volumeLevel } from './decide';
import { type HeldState, parseState } from './index';
import type { PumpingStore } from './keys';
import {
  countryScope,
  DAY_SECONDS,
  fraudKeys,
  HOUR_SECONDS,
  JOURNAL_SLOTS,
  prefixScope,
  type Scope,
} from './keys';
import type { PumpingSettings } from './settings';

/** What holds one country right now. */
export interface CountryView {
  country: string;
  /** SMS to it in the current clock hour, and where proof and refusal begin. */
  volume: number;
  limit: number;
  refuseAt: number;
  proof?: HeldState;
  refuse?: HeldState;
  lift?: HeldState;
}

/** What holds one prefix right now. */
export interface PrefixView {
  prefix: string;
  /** As logs show it: "+447400123xxx". */
  shown: string;
  country: string;
  block?: HeldState;
  proof?: HeldState;
  refuse?: HeldState;
  lift?: HeldState;
}

export interface FraudOverview {
  countries: CountryView[];
  prefixes: PrefixView[];
  /** SMS sent today, when SMS_DAILY_SOFT_BUDGET is on. */
  daily?: { sent: number; softBudget: number };
}

/** Every country libphonenumber knows, and 001 for numbers outside any. */
const ALL_COUNTRIES: readonly string[] = [...getCountries(), NON_GEOGRAPHIC];
/** Reads go out this many destinations at a time, so a listing never floods the store. */
const BATCH = 32;

async function inBatches<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) {
    results.push(...(await Promise.all(items.slice(i, i + BATCH).map(read))));
  }
  return results;
}

const activeAt = (state: HeldState | undefined, now: number) =>
  state !== undefined && state.until > now ? state : undefined;

/**
 * Every current block and escalation, read with plain gets so it works on every backend. Prefix
 * states are found through the journal ring (see JOURNAL_SLOTS): when more than 512 prefixes were
 * blocked or escalated within a block's lifetime, the oldest may be missing from the list while
 * still in force.
 */
export async function readFraudState(
  store: PumpingStore,
  settings: PumpingSettings,
  clock: Clock,
): Promise<FraudOverview> {
  const now = clock.now();
  const hour = Math.floor(now / (HOUR_SECONDS * 1000));
  const state = async (scope: Scope, name: 'proof' | 'refuse' | 'block' | 'lift') =>
    activeAt(parseState(await store.get(fraudKeys.state(scope, name))), now);

  const countries = await inBatches(ALL_COUNTRIES, async (country): Promise<CountryView> => {
    const scope = countryScope(country);
    const [volume, proof, refuse, lift] = await Promise.all([
      store.get(fraudKeys.volume(country, hour)),
      state(scope, 'proof'),
      state(scope, 'refuse'),
      state(scope, 'lift'),
    ]);
    const limit = settings.countryLimit(country);
    return {
      country,
      volume: Number(volume ?? 0) || 0,
      limit,
      refuseAt: limit * settings.refuseFactor,
      ...(proof ? { proof } : {}),
      ...(refuse ? { refuse } : {}),
      ...(lift ? { lift } : {}),
    };
  });

  const slots = await inBatches(
    Array.from({ length: JOURNAL_SLOTS }, (_, i) => i),
    (slot) => store.get(fraudKeys.journal(slot)),
  );
  const journaled = new Map<string, { prefix: string; dropped: number; country: string }>();
  for (const slot of slots) {
    const entry = parseJournal(slot);
    if (entry) journaled.set(entry.prefix, entry);
  }
  const prefixes = await inBatches([...journaled.values()], async (entry): Promise<PrefixView> => {
    const scope = prefixScope(entry.prefix);
    const [block, proof, refuse, lift] = await Promise.all([
      state(scope, 'block'),
      state(scope, 'proof'),
      state(scope, 'refuse'),
      state(scope, 'lift'),
    ]);
    return {
      prefix: entry.prefix,
      shown: `${entry.prefix}${'x'.repeat(entry.dropped)}`,
      country: entry.country,
      ...(block ? { block } : {}),
      ...(proof ? { proof } : {}),
      ...(refuse ? { refuse } : {}),
      ...(lift ? { lift } : {}),
    };
  });

  const daily =
    settings.dailySoftBudget > 0
      ? {
          sent:
            Number((await store.get(fraudKeys.day(Math.floor(now / (DAY_SECONDS * 1000))))) ?? 0) ||
            0,
          softBudget: settings.dailySoftBudget,
        }
      : undefined;

  return {
    countries: countries.filter(
      (c) =>
        c.proof ||
        c.refuse ||
        c.lift ||
        volumeLevel(c.volume, c.limit, settings.refuseFactor) !== 'none',
    ),
    prefixes: prefixes
      .filter((p) => p.block || p.proof || p.refuse || p.lift)
      .sort((a, b) => a.prefix.localeCompare(b.prefix)),
    ...(daily ? { daily } : {}),
  };
}

function parseJournal(
  value: string | undefined,
): { prefix: string; dropped: number; country: string } | undefined {
  if (value === undefined) return undefined;
  try {
    const entry = JSON.parse(value) as { prefix?: unknown; dropped?: unknown; country?: unknown };
    if (
      typeof entry.prefix !== 'string' ||
      !/^\+\d+$/.test(entry.prefix) ||
      typeof entry.dropped !== 'number' ||
      typeof entry.country !== 'string'
    ) {
      return undefined;
    }
    return { prefix: entry.prefix, dropped: entry.dropped, country: entry.country };
  } catch {
    return undefined;
  }
}

/** A country code (GB, 001) or a prefix as the listing prints it (+447400123, with or without x). */
export function parseDestination(text: string): Scope | undefined {
  const trimmed = text.trim();
  const prefix = /^(\+[1-9]\d{0,14})x*$/i.exec(trimmed);
  if (prefix) return prefixScope(prefix[1] as string);
  const country = trimmed.toUpperCase();
  return ALL_COUNTRIES.includes(country) ? countryScope(country) : undefined;
}

export interface Lifted {
  scope: Scope;
  /** The states that were in force and are removed. */
  removed: ('block' | 'proof' | 'refuse')[];
  /** Until when the destination cannot be blocked or escalated again (clock ms). */
  until: number;
}

/**
 * Lifts a destination's block and escalations, and keeps them from coming straight back: for
 * SMS_CONVERSION_HOLD_SECONDS (a prefix: or SMS_PREFIX_BLOCK_SECONDS, if longer) the
 * destination's conversion escalation (and a prefix's velocity block) is not raised again. The
 * per-country hourly volume is configuration, not a state: raise SMS_COUNTRY_HOURLY_LIMIT
 * instead. Nothing in force: nothing is written and `removed` is empty.
 */
export async function liftDestination(
  store: PumpingStore,
  settings: PumpingSettings,
  clock: Clock,
  scope: Scope,
): Promise<Lifted> {
  const now = clock.now();
  const names =
    scope.kind === 'prefix'
      ? (['block', 'proof', 'refuse'] as const)
      : (['proof', 'refuse'] as const);
  const found = await Promise.all(
    names.map(async (name) => {
      const state = activeAt(parseState(await store.get(fraudKeys.state(scope, name))), now);
      return state ? name : undefined;
    }),
  );
  const removed = found.filter((name) => name !== undefined);
  const seconds =
    scope.kind === 'prefix'
      ? Math.max(settings.conversion.holdSeconds, settings.prefixBlockSeconds)
      : settings.conversion.holdSeconds;
  const until = now + seconds * 1000;
  if (removed.length === 0) return { scope, removed, until };
  // The lift first: a send arriving between the deletes and it would otherwise re-raise them.
  await store.set(
    fraudKeys.state(scope, 'lift'),
    JSON.stringify({ since: now, until, by: 'cli' }),
    seconds,
  );
  await Promise.all(names.map((name) => store.delete(fraudKeys.state(scope, name))));
  return { scope, removed, until };
}
