import { randomBytes } from 'node:crypto';
import { safeEqual } from '../crypto';
import { assertAdmissionTtls, assertFailureWindows } from './ttl';
import type {
  Admission,
  AdmissionCounter,
  AdmissionOutcome,
  Attempt,
  AttemptOutcome,
  CompleteStore,
  CounterState,
  SecretWrite,
  Store,
  StorePrimitives,
} from './types';

/**
 * The bridge: gives any store the capabilities it does not implement natively, built once from
 * the primitives (as keyv's bridge fills in what an adapter lacks). A custom store written by an
 * embedder implements only StorePrimitives and gets everything else here.
 *
 * What stepwise costs compared with a native, one-step implementation:
 * - Each step is atomic on its own key, so limits stay exact: two callers can never both take the
 *   last unit of a counter, and exactly one caller consumes a verification. What is lost is
 *   isolation: a refusal takes back counts it already made, and a concurrent caller may see them
 *   in between (and be refused by them) for the length of one round trip.
 * - Several round trips per call instead of one.
 */
export function completeStore(store: Store): CompleteStore {
  const admit =
    store.admit?.bind(store) ?? ((admission: Admission) => admitStepwise(store, admission));
  const attempt =
    store.attempt?.bind(store) ?? ((request: Attempt) => attemptStepwise(store, request));
  // A prototype chain keeps the store's own members (and `this`) as they are.
  return Object.assign(Object.create(store) as Store, { admit, attempt }) as CompleteStore;
}

/** How a stepwise admission stores its secret: the bridge's own record, or a backend's native write. */
export type SecretWriter = (secret: SecretWrite) => Promise<{ binding: string; joined: boolean }>;

/**
 * Store.admit from single-key atomic steps. A counter that refuses takes back what the call
 * counted and the gate it claimed, as Store.admit says. A step that fails (StoreUnavailableError: with several
 * servers, one of the keys may live on a dead one) fails the whole call, and what the call already
 * wrote is taken back as far as the store still answers: the counters it counted and the gate it
 * claimed, since nothing will be sent for it and a cooldown without a send would lock the
 * recipient out for nothing.
 */
export async function admitStepwise(
  store: StorePrimitives,
  admission: Admission,
  writeSecret: SecretWriter = (secret) => writeSecretStepwise(store, secret),
): Promise<AdmissionOutcome> {
  assertAdmissionTtls(admission);
  const { gate, counters, secret } = admission;
  if (gate && !(await store.setIfAbsent(gate.key, gate.value, gate.ttlSeconds))) {
    return { status: 'gated', value: (await store.get(gate.key)) ?? '' };
  }
  const release = async () => {
    if (gate) await store.delete(gate.key).catch(() => undefined);
  };

  const results = await Promise.allSettled(counters.map((counter) => charge(store, counter)));
  const made = results.flatMap((r) =>
    r.status === 'fulfilled' && r.value.counted ? [r.value] : [],
  );
  const undo = () => Promise.all(made.map((c) => c.undo()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all([undo().catch(() => undefined), release()]);
    throw failed.reason;
  }
  const over = results.findIndex(
    (r) => r.status === 'fulfilled' && r.value.counted && r.value.over,
  );
  if (over >= 0) {
    await Promise.all([undo(), release()]);
    const refused = (results[over] as PromiseFulfilledResult<Charge & { counted: true }>).value;
    return { status: 'exceeded', index: over, resetMs: refused.resetMs };
  }
  const counted = results.map((r) => r.status === 'fulfilled' && r.value.counted);
  if (!secret) return { status: 'admitted', counted };
  try {
    return { status: 'admitted', counted, ...(await writeSecret(secret)) };
  } catch (error) {
    await Promise.all([undo().catch(() => undefined), release()]);
    throw error;
  }
}

/** What one counter did, so that a refusal elsewhere can take it back. */
type Charge =
  | { counted: false }
  | { counted: true; undo: () => Promise<unknown>; over: boolean; resetMs: number };

async function charge(store: StorePrimitives, counter: AdmissionCounter): Promise<Charge> {
  const { distinct } = counter;
  if (distinct && !(await store.setIfAbsent(distinct.key, '1', distinct.ttlSeconds))) {
    return { counted: false };
  }
  let state: CounterState;
  try {
    state = await store.increment(counter.key, counter.windowSeconds);
  } catch (error) {
    // Not counted, so the marker must go too, or this recipient would never be counted.
    if (distinct) await store.delete(distinct.key).catch(() => undefined);
    throw error;
  }
  return {
    counted: true,
    over: state.count > counter.max,
    resetMs: state.resetMs,
    undo: () =>
      Promise.all([
        store.decrement(counter.key),
        distinct ? store.delete(distinct.key) : undefined,
      ]),
  };
}

/**
 * The bridge's verification record, stored with `set` as JSON at the verification's key.
 * `g` names this verification (fresh when one starts, kept when a code joins), so its attempt
 * lanes and its consumed marker are keys of their own that a new verification never inherits.
 */
interface BridgeRecord {
  g: string;
  b: string;
  c: Array<{ h: string; d?: string }>;
}

/**
 * Lane counters and the consumed marker live a day: a verification that codes keep joining may
 * outlive its first TTL, and its attempt counts must not restart meanwhile. Resend limits keep a
 * verification from being extended for longer than that in practice.
 */
const DERIVED_TTL = 86_400;

/** Keys derived from a verification's key keep its braces, so they are placed with it. */
const laneKey = (key: string, g: string, bound: boolean) => `${key}#${bound ? 'm' : 'n'}:${g}`;
const usedKey = (key: string, g: string) => `${key}#used:${g}`;

function parseRecord(value: string | undefined): BridgeRecord | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<BridgeRecord>;
    if (typeof parsed.g !== 'string' || typeof parsed.b !== 'string' || !Array.isArray(parsed.c)) {
      return undefined;
    }
    return parsed as BridgeRecord;
  } catch {
    return undefined;
  }
}

/** The live, unconsumed verification at `key`, or undefined. */
async function liveRecord(store: StorePrimitives, key: string): Promise<BridgeRecord | undefined> {
  const record = parseRecord(await store.get(key));
  if (!record) return undefined;
  return (await store.get(usedKey(key, record.g))) === undefined ? record : undefined;
}

/**
 * Starts a verification or adds a code to the live one (see SecretWrite). Two writes racing on one
 * key keep the later one's codes only; the send flow's cooldown lets one send per recipient
 * through at a time, so that race needs a cooldown of 0. A write racing with a successful attempt
 * may put the consumed verification back, but its consumed marker keeps it dead.
 */
export async function writeSecretStepwise(
  store: StorePrimitives,
  secret: SecretWrite,
): Promise<{ binding: string; joined: boolean }> {
  const code = secret.data === undefined ? { h: secret.hash } : { h: secret.hash, d: secret.data };
  const found = await liveRecord(store, secret.key);
  // A verification with a used-up lane is not joined (see SecretWrite).
  const lanes = found
    ? await Promise.all(
        [false, true].map((bound) => store.get(laneKey(secret.key, found.g, bound))),
      )
    : [];
  const locked = lanes.some((count) => Number(count ?? 0) >= secret.maxAttempts);
  const live = locked ? undefined : found;
  const record: BridgeRecord = live
    ? { ...live, c: [...live.c, code].slice(-Math.max(1, secret.keep)) }
    : { g: randomBytes(12).toString('base64url'), b: secret.binding, c: [code] };
  await store.set(secret.key, JSON.stringify(record), secret.ttlSeconds);
  return { binding: record.b, joined: live !== undefined };
}

/** Store.attempt from single-key atomic steps; see StoreCapabilities.attempt and completeStore. */
export async function attemptStepwise(
  store: StorePrimitives,
  { key, hash, maxAttempts, binding, failures = [], clearOnMatch = [] }: Attempt,
): Promise<AttemptOutcome> {
  assertFailureWindows(failures);
  const record = await liveRecord(store, key);
  if (!record || (binding !== undefined && !safeEqual(record.b, binding))) {
    return { status: 'missing' };
  }
  const lane = laneKey(key, record.g, binding !== undefined);
  // The lane and the failure counters are reserved before comparing: increment is the one atomic
  // step that decides who may compare, so a burst can never pass a count.
  const [attempts, ...reserved] = await Promise.all([
    store.increment(lane, DERIVED_TTL),
    ...failures.map((failure) => store.increment(failure.key, failure.windowSeconds)),
  ]);
  const giveBack = () => Promise.all(failures.map((failure) => store.decrement(failure.key)));
  const full = reserved.findIndex((state, i) => state.count > (failures[i]?.max ?? 0));
  if (full >= 0) {
    // Nothing is compared, so this attempt costs neither the lane nor the counters.
    await Promise.all([giveBack(), store.decrement(lane)]);
    return { status: 'exhausted', index: full, resetMs: (reserved[full] as CounterState).resetMs };
  }
  if ((attempts as CounterState).count > maxAttempts) {
    await giveBack();
    return { status: 'locked' };
  }
  const count = (attempts as CounterState).count;
  // Every code is compared, so the time taken does not tell which one matched.
  let matched: BridgeRecord['c'][number] | undefined;
  for (const code of record.c) if (safeEqual(code.h, hash)) matched = code;
  if (matched) {
    // The marker, not a delete, consumes it: a delete racing with a send that starts a new
    // verification at the same key could remove that one instead. The record expires by itself.
    const won = await store.setIfAbsent(usedKey(key, record.g), '1', DERIVED_TTL);
    await Promise.all([giveBack(), ...(won ? clearOnMatch.map((k) => store.delete(k)) : [])]);
    if (!won) return { status: 'missing' };
    return matched.d === undefined
      ? { status: 'match', attempts: count }
      : { status: 'match', attempts: count, data: matched.d };
  }
  return { status: 'mismatch', attempts: count, remaining: maxAttempts - count };
}
