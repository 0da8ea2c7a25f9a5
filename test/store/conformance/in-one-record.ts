import type { Admission, Attempt, Store, StoreEntry } from '../../../src/store/types';
import type { ConformanceFactory } from './context';

/**
 * The same backend with every key the suite names turned into a part of one record (`{tag}key`,
 * see Store, "Records"), so that the whole suite runs again against the backend's record layout:
 * each primitive, expiry, counters, secrets, admission and outages, with all of a test's state in
 * one record, the most its parts ever share. Only names change on the way in, and the record's
 * tag comes off what scan lists; the backend does the rest.
 */
export function inOneRecord(factory: ConformanceFactory, tag = 'record'): ConformanceFactory {
  const wrap = async (store: Store | Promise<Store>) => recordView(await store, tag);
  const { outage } = factory;
  return {
    ...factory,
    create: (prefix) => wrap(factory.create(prefix)),
    ...(outage ? { outage: { ...outage, create: (prefix) => wrap(outage.create(prefix)) } } : {}),
  };
}

function recordView(store: Store, tag: string): Store {
  const part = (key: string) => `{${tag}}${key}`;
  const view: Store = {
    backend: store.backend,
    get: (key) => store.get(part(key)),
    set: (key, value, ttl) => store.set(part(key), value, ttl),
    setIfAbsent: (key, value, ttl) => store.setIfAbsent(part(key), value, ttl),
    delete: (key) => store.delete(part(key)),
    increment: (key, window) => store.increment(part(key), window),
    decrement: (key) => store.decrement(part(key)),
    ping: () => store.ping(),
    close: () => store.close(),
  };
  if (store.pingEach)
    view.pingEach = () => store.pingEach?.() as ReturnType<NonNullable<Store['pingEach']>>;
  if (store.cleanup) view.cleanup = () => store.cleanup?.() as Promise<number>;
  const { scan } = store;
  if (scan) {
    const ours = part('');
    (view as { scan: () => AsyncIterable<StoreEntry> }).scan = async function* () {
      for await (const entry of scan.call(store)) {
        if (entry.key.startsWith(ours)) yield { ...entry, key: entry.key.slice(ours.length) };
      }
    };
  }
  const { admit, attempt } = store;
  if (admit) {
    view.admit = ({ gate, counters, secret }: Admission) =>
      admit.call(store, {
        ...(gate ? { gate: { ...gate, key: part(gate.key) } } : {}),
        counters: counters.map((counter) => ({
          ...counter,
          key: part(counter.key),
          ...(counter.distinct
            ? { distinct: { ...counter.distinct, key: part(counter.distinct.key) } }
            : {}),
        })),
        ...(secret ? { secret: { ...secret, key: part(secret.key) } } : {}),
      });
  }
  if (attempt) {
    view.attempt = (a: Attempt) =>
      attempt.call(store, {
        ...a,
        key: part(a.key),
        ...(a.failures ? { failures: a.failures.map((f) => ({ ...f, key: part(f.key) })) } : {}),
        ...(a.clearOnMatch ? { clearOnMatch: a.clearOnMatch.map(part) } : {}),
      });
  }
  return view;
}
