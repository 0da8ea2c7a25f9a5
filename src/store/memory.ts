import { safeEqual } from '../crypto';
import type { Logger } from '../logger';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from './ttl';
import type {
  Admission,
  AdmissionOutcome,
  Attempt,
  AttemptOutcome,
  CounterState,
  SecretWrite,
  Store,
  StoreEntry,
} from './types';

interface Entry {
  value: string;
  expiresAt: number;
  writtenAt: number;
  /** A verification's codes and attempts; absent for plain values and counters. */
  secret?: Verification;
}

interface Verification {
  binding: string;
  codes: Array<{ hash: string; data?: string }>;
  /** Attempts in the open lane (without the binding). */
  open: number;
  /** Attempts in the bound lane (presenting the binding). */
  bound: number;
}

export interface MemoryStoreOptions {
  keyPrefix?: string;
  /** Injected clock in epoch milliseconds, so tests move time without sleeping. */
  now?: () => number;
  /** How often the store sweeps out what expired unread; 0 turns the sweep off. Default 60. */
  sweepIntervalSeconds?: number;
  /** Where each sweep reports what it removed; silent without one. */
  logger?: Logger;
}

/**
 * A per-process store for development and tests. Expiry is checked lazily on every read, so no
 * timer is kept per key; the store sweeps out what nobody read again on a timer of its own, as
 * housekeeping belongs to the store: an app that embeds verifyd with a memory store gets the same
 * sweep as the standalone server, without having to know it must schedule one. JavaScript runs
 * each method to completion without interleaving, which is what makes every operation atomic here.
 */
export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly prefix: string;
  private readonly now: () => number;

  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.prefix = options.keyPrefix ?? '';
    this.now = options.now ?? Date.now;
    const interval = options.sweepIntervalSeconds ?? 60;
    if (interval > 0) {
      const { logger } = options;
      this.sweeper = setInterval(() => {
        // cleanup() is synchronous underneath, so one sweep can never overlap the next.
        void this.cleanup().then((removed) => {
          if (removed > 0) logger?.info({ removed }, 'store cleanup');
        });
      }, interval * 1000);
      // Housekeeping must never be the reason a process stays alive.
      this.sweeper.unref();
    }
  }

  private live(key: string): Entry | undefined {
    const full = this.prefix + key;
    const entry = this.entries.get(full);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(full);
      return undefined;
    }
    return entry;
  }

  private write(key: string, value: string, ttlSeconds: number, secret?: Verification): void {
    assertTtl(ttlSeconds);
    const now = this.now();
    const entry: Entry = { value, expiresAt: now + ttlSeconds * 1000, writtenAt: now };
    if (secret) entry.secret = secret;
    this.entries.set(this.prefix + key, entry);
  }

  /** Starts a verification or adds the code to the live one (see SecretWrite). */
  private writeSecret(write: SecretWrite): { binding: string; joined: boolean } {
    const code =
      write.data === undefined ? { hash: write.hash } : { hash: write.hash, data: write.data };
    const found = this.live(write.key)?.secret;
    const locked = found && Math.max(found.open, found.bound) >= write.maxAttempts;
    const live = locked ? undefined : found;
    const verification: Verification = live
      ? { ...live, codes: [...live.codes, code].slice(-Math.max(1, write.keep)) }
      : { binding: write.binding, codes: [code], open: 0, bound: 0 };
    this.write(write.key, '', write.ttlSeconds, verification);
    return { binding: verification.binding, joined: live !== undefined };
  }

  async get(key: string): Promise<string | undefined> {
    return this.live(key)?.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.write(key, value, ttlSeconds);
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.write(key, value, ttlSeconds);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const existed = this.live(key) !== undefined;
    this.entries.delete(this.prefix + key);
    return existed;
  }

  async increment(key: string, windowSeconds: number): Promise<CounterState> {
    return this.count(key, windowSeconds);
  }

  /** Synchronous, so that admit() can count several keys without another caller in between. */
  private count(key: string, windowSeconds: number): CounterState {
    const entry = this.live(key);
    if (!entry) {
      this.write(key, '1', windowSeconds);
      return { count: 1, resetMs: windowSeconds * 1000 };
    }
    const count = Number(entry.value) + 1;
    entry.value = String(count);
    return { count, resetMs: entry.expiresAt - this.now() };
  }

  async decrement(key: string): Promise<void> {
    const entry = this.live(key);
    if (entry) entry.value = String(Math.max(0, Number(entry.value) - 1));
  }

  async admit(admission: Admission): Promise<AdmissionOutcome> {
    assertAdmissionTtls(admission);
    const { gate, counters } = admission;
    if (gate) {
      const present = this.live(gate.key);
      if (present) return { status: 'gated', value: present.value };
      this.write(gate.key, gate.value, gate.ttlSeconds);
    }
    // Every counter is checked before any is written, so a refusal leaves all of them untouched.
    const counted = counters.map(
      (counter) => !(counter.distinct && this.live(counter.distinct.key)),
    );
    for (const [index, counter] of counters.entries()) {
      if (!counted[index]) continue;
      const entry = this.live(counter.key);
      if ((entry ? Number(entry.value) : 0) >= counter.max) {
        const resetMs = entry ? entry.expiresAt - this.now() : counter.windowSeconds * 1000;
        if (gate) this.entries.delete(this.prefix + gate.key); // claimed above: see Store.admit
        return { status: 'exceeded', index, resetMs };
      }
    }
    for (const [index, counter] of counters.entries()) {
      if (!counted[index]) continue;
      this.count(counter.key, counter.windowSeconds);
      if (counter.distinct) this.write(counter.distinct.key, '1', counter.distinct.ttlSeconds);
    }
    const { secret } = admission;
    if (!secret) return { status: 'admitted', counted };
    return { status: 'admitted', counted, ...this.writeSecret(secret) };
  }

  async attempt({
    key,
    hash,
    maxAttempts,
    binding,
    failures = [],
    clearOnMatch = [],
  }: Attempt): Promise<AttemptOutcome> {
    assertFailureWindows(failures);
    const entry = this.live(key);
    const secret = entry?.secret;
    if (!entry || !secret) return { status: 'missing' };
    if (binding !== undefined && !safeEqual(secret.binding, binding)) return { status: 'missing' };
    for (const [index, failure] of failures.entries()) {
      const counter = this.live(failure.key);
      if (counter && Number(counter.value) >= failure.max) {
        return { status: 'exhausted', index, resetMs: counter.expiresAt - this.now() };
      }
    }
    const lane = binding === undefined ? 'open' : 'bound';
    const attempts = secret[lane] + 1;
    secret[lane] = attempts;
    if (attempts > maxAttempts) return { status: 'locked' };
    // Every code is compared, so the time taken does not tell which one matched.
    let matched: Verification['codes'][number] | undefined;
    for (const code of secret.codes) if (safeEqual(code.hash, hash)) matched = code;
    if (matched) {
      this.entries.delete(this.prefix + key);
      for (const cleared of clearOnMatch) this.entries.delete(this.prefix + cleared);
      return matched.data === undefined
        ? { status: 'match', attempts }
        : { status: 'match', attempts, data: matched.data };
    }
    for (const failure of failures) this.count(failure.key, failure.windowSeconds);
    return { status: 'mismatch', attempts, remaining: maxAttempts - attempts };
  }

  async ping(): Promise<void> {}

  readonly scan = async function* (this: MemoryStore): AsyncIterable<StoreEntry> {
    const now = this.now();
    for (const [full, entry] of this.entries) {
      if (!full.startsWith(this.prefix)) continue;
      yield {
        key: full.slice(this.prefix.length),
        ttlMs: entry.expiresAt - now,
        ageMs: now - entry.writtenAt,
      };
    }
  };

  async cleanup(): Promise<number> {
    const now = this.now();
    let removed = 0;
    for (const [full, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(full);
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
}
