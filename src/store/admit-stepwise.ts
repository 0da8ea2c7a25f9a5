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
 * A step that fails (StoreUnavailableError: with several servers, one of the keys may live on a
 * dead one) fails the whole call, and what the call already wrote is taken back as far as the
 * store still answers: the counters it counted and the gate it claimed, since nothing will be
 * sent for it and a cooldown without a send would lock the recipient out for nothing.
 */
export async function admitStepwise(
  store: Primitives,
  admission: Admission,
): Promise<AdmissionOutcome> {
  const { blockers = [], gate, counters } = admission;
  const claim = gate
    ? store.setIfAbsent(gate.key, gate.value, gate.ttlSeconds)
    : Promise.resolve(false);
  const release = async () => {
    if (gate && (await claim.catch(() => false))) {
      await store.delete(gate.key).catch(() => undefined);
    }
  };
  let values: (string | undefined)[];
  let gateWon: boolean;
  try {
    [values, gateWon] = await Promise.all([
      Promise.all(blockers.map((key) => store.get(key))),
      claim,
    ]);
  } catch (error) {
    await release();
    throw error;
  }
  const blocked = values.findIndex((value) => value !== undefined);
  if (blocked >= 0) {
    await release();
    return { status: 'blocked', index: blocked, value: values[blocked] ?? '' };
  }
  if (gate && !gateWon) return { status: 'gated', value: (await store.get(gate.key)) ?? '' };

  const results = await Promise.allSettled(counters.map((counter) => charge(store, counter)));
  const made = results.flatMap((r) =>
    r.status === 'fulfilled' && r.value.counted ? [r.value] : [],
  );
  const undo = () => Promise.all(made.map((c) => c.undo()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const over = results.findIndex(
    (r) => r.status === 'fulfilled' && r.value.counted && r.value.over,
  );
  if (failed) {
    await Promise.all([undo().catch(() => undefined), release()]);
    throw failed.reason;
  }
  if (over >= 0) {
    await undo();
    const refused = (results[over] as PromiseFulfilledResult<Charge & { counted: true }>).value;
    return { status: 'exceeded', index: over, resetMs: refused.resetMs };
  }
  const { secret } = admission;
  if (secret) {
    try {
      const { key, hash, ttlSeconds, ...extras } = secret;
      await store.putSecret(key, hash, ttlSeconds, extras);
    } catch (error) {
      await Promise.all([undo().catch(() => undefined), release()]);
      throw error;
    }
  }
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
