/**
 * Every key the pumping defences write. Placement (see Store): a country's keys share the
 * `{c:GB}` tag and a prefix's keys the `{p:+447400123}` tag, so on Redis Cluster or several
 * Memcached servers each destination lives on one shard, and a dead shard fails closed only the
 * sends to its own destinations. Every key expires: counters after two of their windows, records
 * with the code, states a while after they end.
 *
 * Windows are numbered from the injected clock (`bucket`), not left to the store's TTLs: the
 * count of a window is the key of that window, so a test or the simulation that moves the clock
 * moves every window with it, on any backend.
 */

import type { StorePrimitives } from '../../src/store/types';

/** The store primitives the defences use, and nothing more. */
export type PumpingStore = Pick<
  StorePrimitives,
  'get' | 'set' | 'setIfAbsent' | 'delete' | 'increment' | 'decrement'
>;

export type ScopeKind = 'country' | 'prefix';

/** A destination the defences judge: a country or a prefix. */
export interface Scope {
  kind: ScopeKind;
  /** GB, 001, or +447400123. */
  name: string;
  /** The hash tag every key of this destination carries. */
  tag: string;
}

export const countryScope = (country: string): Scope => ({
  kind: 'country',
  name: country,
  tag: `{c:${country}}`,
});

export const prefixScope = (prefix: string): Scope => ({
  kind: 'prefix',
  name: prefix,
  tag: `{p:${prefix}}`,
});

/** The counters kept per destination and window for conversion rates. */
export type RateCounter = 'sent' | 'ok' | 'esent' | 'ok-esc';

/** The states a destination can be held in; each its own key, so each is created exactly once. */
export type StateName = 'proof' | 'refuse' | 'block' | 'lift';

export const HOUR_SECONDS = 3600;
export const DAY_SECONDS = 86_400;

/** Where a sliding window stands: the current fixed window's number and how much of it has gone. */
export function windowAt(nowMs: number, seconds: number): { bucket: number; elapsed: number } {
  const size = seconds * 1000;
  return { bucket: Math.floor(nowMs / size), elapsed: (nowMs % size) / size };
}

/** A counter lives through its own window and the next, where it is the "previous" window. */
export const counterTtl = (seconds: number) => 2 * seconds + 60;

export const fraudKeys = {
  rate: (scope: Scope, counter: RateCounter, bucket: number) =>
    `fraud:${scope.tag}:${counter}:${bucket}`,
  /** SMS to a country in one clock hour, resends included: what SMS_COUNTRY_HOURLY_LIMIT counts. */
  volume: (country: string, hour: number) => `fraud:{c:${country}}:vol:${hour}`,
  /** Distinct numbers of a prefix sent to in one hour. */
  seen: (prefix: string, hour: number) => `fraud:{p:${prefix}}:seen:${hour}`,
  /** SMS of the whole deployment in one day: one key, as the hourly budget is. */
  day: (day: number) => `fraud:{day}:sent:${day}`,
  /** A send waiting for its approval, by a keyed hash of the number. */
  record: (prefix: string, numberId: string) => `fraud:{p:${prefix}}:rec:${numberId}`,
  state: (scope: Scope, state: StateName) => `fraud:${scope.tag}:${state}`,
  journalSeq: 'fraud:journal:seq',
  journal: (slot: number) => `fraud:journal:${slot}`,
};

/**
 * Prefix blocks and escalations are also written to a ring of journal slots, so the CLI can list
 * them with plain gets on every backend (Memcached cannot list keys, and scanning is not part of
 * the primitives this module uses). Countries need none: there are only about 250 to ask about.
 */
export const JOURNAL_SLOTS = 512;
