import type { Admission, AdmissionCounter, AdmissionOutcome, Store } from './types';

type Primitives = Pick<
  Store,
  'get' | 'setIfAbsent' | 'delete' | 'increment' | 'decrement' | 'putSecret'
>;

/** What one counter did, so that a refusal elsewhere can take it back. */
type Charge =
  | { counted: false }
  | { counted: true; undo: () => Promise<unknown>; over: boolean; resetMs: number };

/**
 * admit() for a backend without transactions, built from its atomic single-key operations. Each
 * step is still atomic on its own key, so limits hold under concurrency: two callers can never
 * both take the last unit of a counter. What is lost is isolation: a refusal takes back counts it
 * already made, and a concurrent caller may see them in between and be refused too.
 * The blockers are read while the gate is claimed, to spend one round trip instead of two; a
 * gate claimed for a blocked caller is deleted again.
 */
export async function admitStepwise(
  store: Primitives,
  admission: Admission,
): Promise<AdmissionOutcome> {
  const { blockers = [], gate, counters } = admission;
  const [values, gateWon] = await Promise.all([
    Promise.all(blockers.map((key) => store.get(key))),
    gate ? store.setIfAbsent(gate.key, gate.value, gate.ttlSeconds) : Promise.resolve(true),
  ]);
  const blocked = values.findIndex((value) => value !== undefined);
  if (blocked >= 0) {
    if (gate && gateWon) await store.delete(gate.key);
    return { status: 'blocked', index: blocked, value: values[blocked] ?? '' };
  }
  if (gate && !gateWon) return { status: 'gated', value: (await store.get(gate.key)) ?? '' };

  const results = await Promise.allSettled(counters.map((counter) => charge(store, counter)));
  const made = results.flatMap((r) =>
    r.status === 'fulfilled' && r.value.counted ? [r.value] : [],
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const over = results.findIndex(
    (r) => r.status === 'fulfilled' && r.value.counted && r.value.over,
  );
  if (failed || over >= 0) await Promise.all(made.map((c) => c.undo()));
  if (failed) throw failed.reason;
  if (over >= 0) {
    const refused = (results[over] as PromiseFulfilledResult<Charge & { counted: true }>).value;
    return { status: 'exceeded', index: over, resetMs: refused.resetMs };
  }
  const { secret } = admission;
  if (secret) await store.putSecret(secret.key, secret.hash, secret.ttlSeconds);
  return {
    status: 'admitted',
    counted: results.map((r) => r.status === 'fulfilled' && r.value.counted),
  };
}

async function charge(store: Primitives, counter: AdmissionCounter): Promise<Charge> {
  const { distinct } = counter;
  if (distinct && !(await store.setIfAbsent(distinct.key, '1', distinct.ttlSeconds))) {
    return { counted: false };
  }
  let state: Awaited<ReturnType<Primitives['increment']>>;
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
