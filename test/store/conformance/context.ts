import type { CompleteStore, Store } from '../../../src/store/types';
import { sleep } from '../../support/servers';

/** Hooks around a private server that the suite may stop, freeze and restart. */
export interface OutageHooks {
  /** A store connected to the private server, with a short timeout. */
  create(prefix: string): Store | Promise<Store>;
  /** Kills the server abruptly; resolves when it is gone. */
  stop(): Promise<void>;
  /** Starts it again (empty) on the same address; resolves when it answers. */
  start(): Promise<void>;
  /** Freezes the server: connections stay open and nothing is answered. */
  pause(): Promise<void>;
  resume(): void;
}

export interface ConformanceFactory {
  /** A fresh store using `prefix` as its KEY_PREFIX. */
  create(prefix: string): Store | Promise<Store>;
  /** Lets `ms` pass: moves a fake clock for the memory store, sleeps for the others. */
  advance(ms: number): Promise<void>;
  /**
   * How much later than its TTL the backend may drop an entry: 0 for the memory store's exact
   * clock, a little for Redis, a second more for memcached's one-second clock.
   */
  expiryGraceMs: number;
  /** Whether the backend can enumerate its keys. */
  canScan: boolean;
  outage?: OutageHooks;
}

/**
 * What every concern module is given by `runStoreConformance`. It is built inside the top-level
 * describe block, whose afterEach closes every store in `opened`.
 */
export interface ConformanceContext {
  /** The backend name the stores must report. */
  name: string;
  factory: ConformanceFactory;
  /**
   * A fresh store under a unique prefix (or `prefix`), closed after the test. Whatever the
   * backend lacks, the bridge supplies: the suite holds both to the contract.
   */
  open(label: string, prefix?: string): Promise<CompleteStore>;
  /** Lets `seconds` of TTL pass, plus the backend's expiry grace. */
  pastTtl(seconds: number): Promise<void>;
  /** Stores to close after the current test; push any store not made by `open`. */
  opened: Store[];
}

/** A concern module: registers its describe block against the shared context. */
export type ConformanceModule = (context: ConformanceContext) => void;

export const RIGHT = 'hmac-of-the-right-code';
export const WRONG = 'hmac-of-a-wrong-code';

/** Retries `fn` until it resolves, for up to `timeoutMs`; rethrows the last failure. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** Every entry `store.scan` yields, sorted by key. */
export async function collectScan(store: Store) {
  const entries = [];
  for await (const entry of store.scan?.() ?? []) entries.push(entry);
  return entries.sort((a, b) => a.key.localeCompare(b.key));
}

/** The count a counter holds now: one more increment, minus that increment. */
export async function countOf(store: Store, key: string): Promise<number> {
  const { count } = await store.increment(key, 60);
  await store.decrement(key);
  return count - 1;
}

/** The gate the admit checks claim, in admission.ts and ttl.ts alike. */
export const gate = { key: 'gate', value: 'ends-at-123', ttlSeconds: 60 };
