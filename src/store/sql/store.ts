import { randomBytes } from 'node:crypto';
import { safeEqual } from '../../crypto';
import { StoreUnavailableError } from '../../errors';
import type { Logger } from '../../logger';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from '../ttl';
import type {
  Admission,
  AdmissionOutcome,
  Attempt,
  AttemptOutcome,
  CounterState,
  SecretWrite,
  Store,
  StoreEntry,
} from '../types';
import type { Engine, Queryable, Row } from './engine';
import { type MigrationResult, migrate, type TableNames, tableNames } from './schema';
import { type Statements, statements } from './statements';

export interface SqlStoreOptions {
  keyPrefix?: string;
  /** Clock in epoch milliseconds; every expiry is judged by it. Default Date.now. */
  now?: () => number;
  logger?: Logger;
  /** How often the cleanup job runs, in seconds; 0 (the default) runs none. */
  cleanupIntervalSeconds?: number;
  /** How long after start the job first runs; default 5 s, or the interval when shorter. */
  firstCleanupDelayMs?: number;
  /** Rows one cleanup statement removes at most. */
  cleanupBatchSize?: number;
}

/** What one run of the cleanup job did. */
export interface CleanupRun {
  /** Expired rows removed. */
  removed: number;
  /** False when another worker held the cleanup lock, so this one did nothing. */
  ran: boolean;
  batches: number;
}

/** Rows per cleanup statement: small enough that no statement holds its locks for long. */
const DEFAULT_BATCH = 500;
/**
 * Batches per run at most. A backlog larger than this (e.g. after the job was off for a while) is
 * worked off over the following runs rather than in one long one.
 */
const MAX_BATCHES_PER_RUN = 200;
const FIRST_RUN_DELAY_MS = 5000;
const SCAN_PAGE = 1000;
/** How long a cleanup lease lasts on SQLite, if its holder dies without giving it back. */
const LEASE_MS = 5 * 60_000;

const toNumber = (value: unknown) => Number(value);

/** One code of a verification as its row keeps it: the HMAC, and the sealed data if any. */
interface StoredCode {
  h: string;
  d?: string;
}

/** A verification's codes from its row; a row this code did not write holds none. */
function parseCodes(value: unknown): StoredCode[] {
  try {
    const parsed: unknown = JSON.parse(String(value));
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (code): code is StoredCode =>
        typeof code === 'object' && code !== null && typeof (code as StoredCode).h === 'string',
    );
  } catch {
    return [];
  }
}

/**
 * The Store contract on a database table (PostgreSQL or SQLite; see dialect.ts for where they
 * differ). Each primitive is one statement; an attempt at a secret is one short transaction.
 * Expiry is a column compared in every statement, so an expired row is gone for every caller at
 * once; the cleanup job only reclaims its space. The tables are created or migrated on first use
 * (see schema.ts): createSqlStore does it at start, and when the database was down then, the
 * first call after it is back does it instead.
 */
export class SqlStore implements Store {
  readonly backend: 'postgres' | 'sqlite';
  readonly names: TableNames;
  private readonly sql: Statements;
  private readonly keyPrefix: string;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;
  private migrated = false;
  private migrating: Promise<MigrationResult> | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly batchSize: number;

  constructor(
    private readonly engine: Engine,
    options: SqlStoreOptions = {},
  ) {
    this.backend = engine.name;
    this.keyPrefix = options.keyPrefix ?? '';
    this.names = tableNames(this.keyPrefix);
    this.sql = statements(this.names);
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.batchSize = options.cleanupBatchSize ?? DEFAULT_BATCH;
    const interval = (options.cleanupIntervalSeconds ?? 0) * 1000;
    if (interval > 0) {
      this.schedule(
        options.firstCleanupDelayMs ?? Math.min(FIRST_RUN_DELAY_MS, interval),
        interval,
      );
    }
  }

  /**
   * Creates or migrates the tables (see schema.ts). Calls made before it succeeded run it first,
   * so a store created while the database was down sets itself up once it is back.
   */
  migrate(): Promise<MigrationResult> {
    this.migrating ??= migrate(this.engine, this.names, this.keyPrefix).then(
      (result) => {
        this.migrated = true;
        if (result.from !== result.to) {
          this.logger?.info(
            { from: result.from, to: result.to, table: this.names.plain.entries },
            'store schema migrated',
          );
        }
        return result;
      },
      (error: unknown) => {
        this.migrating = undefined;
        throw error;
      },
    );
    return this.migrating;
  }

  private async ready(): Promise<void> {
    if (this.closed) {
      throw new StoreUnavailableError(this.backend, new Error('store is closed'));
    }
    if (!this.migrated) await this.migrate();
  }

  private expires(ttlSeconds: number, now: number): number {
    return now + ttlSeconds * 1000;
  }

  async get(key: string): Promise<string | undefined> {
    await this.ready();
    const { rows } = await this.engine.query(this.sql.get, { key, now: this.now() });
    return rows[0]?.value as string | undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    assertTtl(ttlSeconds);
    await this.ready();
    const now = this.now();
    await this.engine.query(this.sql.set, {
      key,
      value,
      now,
      expires: this.expires(ttlSeconds, now),
    });
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    await this.ready();
    const now = this.now();
    const { rows } = await this.engine.query(this.sql.setIfAbsent, {
      key,
      value,
      now,
      expires: this.expires(ttlSeconds, now),
    });
    return rows.length > 0;
  }

  async delete(key: string): Promise<boolean> {
    await this.ready();
    const { rows } = await this.engine.query(this.sql.delete, { key, now: this.now() });
    return toNumber(rows[0]?.live) === 1;
  }

  async increment(key: string, windowSeconds: number): Promise<CounterState> {
    assertTtl(windowSeconds);
    await this.ready();
    const now = this.now();
    const { rows } = await this.engine.query(this.sql.increment(1), {
      key0: key,
      expires0: this.expires(windowSeconds, now),
      now,
    });
    const row = rows[0] as Row;
    return { count: toNumber(row.value), resetMs: toNumber(row.expires_at) - now };
  }

  async decrement(key: string): Promise<void> {
    await this.ready();
    await this.engine.query(this.sql.decrement, { key, now: this.now() });
  }

  /**
   * Locks `keys` (sorted, each once) for the rest of the transaction, whether or not they have a
   * row yet. Every transaction of this store that touches several keys takes all its locks this
   * way before it writes a row, in the same global order, so two of them never wait for each
   * other in a cycle; a single-statement primitive holds one row for one statement.
   */
  private async lock(tx: Queryable, keys: readonly string[]): Promise<void> {
    const sorted = [...new Set(keys)].sort();
    const statement = this.engine.dialect.keyLocks(sorted.length);
    if (!statement) return;
    await tx.query(statement, {
      table: this.names.plain.entries,
      ...Object.fromEntries(sorted.map((key, i) => [`k${i}`, key])),
    });
  }

  /** The live rows at `keys`, by key. */
  private async readLive(tx: Queryable, keys: readonly string[], now: number) {
    const { rows } = await tx.query(this.sql.readMany(keys.length), {
      now,
      ...Object.fromEntries(keys.map((key, i) => [`k${i}`, key])),
    });
    return new Map(rows.map((row) => [row.key as string, row]));
  }

  /** Counts every counter once, in its window (see the increment statement). */
  private async countAll(
    tx: Queryable,
    counters: ReadonlyArray<{ key: string; windowSeconds: number }>,
    now: number,
  ): Promise<void> {
    if (counters.length === 0) return;
    await tx.query(this.sql.increment(counters.length), {
      now,
      ...Object.fromEntries(
        counters.flatMap((counter, i) => [
          [`key${i}`, counter.key],
          [`expires${i}`, this.expires(counter.windowSeconds, now)],
        ]),
      ),
    });
  }

  /**
   * A send's admission (see StoreCapabilities.admit) as one transaction: every key it touches is
   * locked first, then each limit is read and decided, and only an admitted send writes its
   * counts, markers and code. A refused send has counted nothing, so there is nothing to take
   * back and no other send ever sees a count that does not stay.
   */
  async admit(admission: Admission): Promise<AdmissionOutcome> {
    assertAdmissionTtls(admission);
    await this.ready();
    const { gate, counters, secret } = admission;
    const touched = [
      ...(gate ? [gate.key] : []),
      ...counters.flatMap((c) => (c.distinct ? [c.key, c.distinct.key] : [c.key])),
      ...(secret ? [secret.key] : []),
    ];
    return this.engine.transaction(async (tx): Promise<AdmissionOutcome> => {
      await this.lock(tx, touched);
      const now = this.now();
      if (gate) {
        const claimed = await tx.query(this.sql.setIfAbsent, {
          key: gate.key,
          value: gate.value,
          now,
          expires: this.expires(gate.ttlSeconds, now),
        });
        if (claimed.rows.length === 0) {
          const { rows } = await tx.query(this.sql.get, { key: gate.key, now });
          return { status: 'gated', value: (rows[0]?.value as string | undefined) ?? '' };
        }
      }
      const live = await this.readLive(tx, touched, now);
      const counted = counters.map((c) => !(c.distinct && live.has(c.distinct.key)));
      for (const [index, counter] of counters.entries()) {
        if (!counted[index]) continue;
        const row = live.get(counter.key);
        if ((row ? toNumber(row.value) : 0) >= counter.max) {
          // The gate claimed above goes again: a refused send leaves no cooldown (Store.admit).
          if (gate) await tx.query(this.sql.delete, { key: gate.key, now });
          const resetMs = row ? toNumber(row.expires_at) - now : counter.windowSeconds * 1000;
          return { status: 'exceeded', index, resetMs };
        }
      }
      const charged = counters.filter((_, i) => counted[i]);
      await this.countAll(tx, charged, now);
      for (const counter of charged) {
        if (!counter.distinct) continue;
        await tx.query(this.sql.set, {
          key: counter.distinct.key,
          value: '1',
          now,
          expires: this.expires(counter.distinct.ttlSeconds, now),
        });
      }
      if (!secret) return { status: 'admitted', counted };
      return {
        status: 'admitted',
        counted,
        ...(await this.writeSecret(tx, secret, live.get(secret.key), now)),
      };
    });
  }

  /** Starts a verification, or adds the code to the live one (see SecretWrite). */
  private async writeSecret(
    tx: Queryable,
    secret: SecretWrite,
    row: Row | undefined,
    now: number,
  ): Promise<{ binding: string; joined: boolean }> {
    const code: StoredCode =
      secret.data === undefined ? { h: secret.hash } : { h: secret.hash, d: secret.data };
    const expires = this.expires(secret.ttlSeconds, now);
    const isVerification = row !== undefined && row.attempts !== null && row.attempts !== undefined;
    // A verification with a lane that used up its attempts is not joined (see SecretWrite).
    const joinable =
      isVerification &&
      Math.max(toNumber(row.attempts), toNumber(row.bound_attempts)) < secret.maxAttempts;
    if (joinable) {
      const codes = [...parseCodes(row.value), code].slice(-Math.max(1, secret.keep));
      await tx.query(this.sql.joinVerification, {
        key: secret.key,
        value: JSON.stringify(codes),
        expires,
        now,
      });
      return { binding: row.binding as string, joined: true };
    }
    await tx.query(this.sql.startVerification, {
      key: secret.key,
      value: JSON.stringify([code]),
      binding: secret.binding,
      expires,
      now,
    });
    return { binding: secret.binding, joined: false };
  }

  /**
   * One attempt at a verification (see StoreCapabilities.attempt) as one transaction. The
   * verification, its failure counters and the keys a match clears are locked first, so that between reading a count and
   * writing it no other attempt changes it, even when the counter has no row yet: concurrent
   * attempts at one verification take turns, and the one that consumes it leaves nothing for the
   * others.
   */
  async attempt({
    key,
    hash,
    maxAttempts,
    binding,
    failures = [],
    clearOnMatch = [],
  }: Attempt): Promise<AttemptOutcome> {
    assertFailureWindows(failures);
    await this.ready();
    const keys = [key, ...failures.map((failure) => failure.key)];
    return this.engine.transaction(async (tx): Promise<AttemptOutcome> => {
      await this.lock(tx, [...keys, ...clearOnMatch]);
      const now = this.now();
      const live = await this.readLive(tx, keys, now);
      const verification = live.get(key);
      if (!verification || verification.attempts === null || verification.attempts === undefined) {
        return { status: 'missing' };
      }
      if (binding !== undefined && !safeEqual(String(verification.binding ?? ''), binding)) {
        return { status: 'missing' };
      }
      for (const [index, failure] of failures.entries()) {
        const counter = live.get(failure.key);
        if (counter && toNumber(counter.value) >= failure.max) {
          return { status: 'exhausted', index, resetMs: toNumber(counter.expires_at) - now };
        }
      }
      const { rows } = await tx.query(
        binding === undefined ? this.sql.countOpen : this.sql.countBound,
        { key, now },
      );
      const lane = rows[0];
      if (!lane) return { status: 'missing' };
      const attempts = toNumber(lane.counted);
      if (attempts > maxAttempts) return { status: 'locked' };
      // Every code is compared, so the time taken does not tell which one matched.
      let matched: StoredCode | undefined;
      for (const code of parseCodes(lane.value)) if (safeEqual(code.h, hash)) matched = code;
      if (matched) {
        // The verification goes, and with it what its success clears, in the same transaction.
        const consumed = [key, ...clearOnMatch];
        await tx.query(
          this.sql.consume(consumed.length),
          Object.fromEntries(consumed.map((k, i) => [`k${i}`, k])),
        );
        return matched.d === undefined
          ? { status: 'match', attempts }
          : { status: 'match', attempts, data: matched.d };
      }
      await this.countAll(tx, failures, now);
      return { status: 'mismatch', attempts, remaining: maxAttempts - attempts };
    });
  }

  async ping(): Promise<void> {
    await this.ready();
    await this.engine.query(this.sql.ping);
  }

  readonly scan = async function* (this: SqlStore): AsyncIterable<StoreEntry> {
    await this.ready();
    let after = '';
    let first = 1;
    for (;;) {
      const { rows } = await this.engine.query(this.sql.scanPage, {
        first,
        after,
        limit: SCAN_PAGE,
      });
      const now = this.now();
      for (const row of rows) {
        yield {
          key: row.key as string,
          ttlMs: toNumber(row.expires_at) - now,
          ageMs: now - toNumber(row.written_at),
        };
      }
      if (rows.length < SCAN_PAGE) return;
      after = (rows.at(-1) as Row).key as string;
      first = 0;
    }
  };

  /** Rows in the table, and how many of them have expired but are not yet removed. */
  async counts(): Promise<{ total: number; expired: number }> {
    await this.ready();
    const { rows } = await this.engine.query(this.sql.counts, { now: this.now() });
    const row = rows[0] as Row;
    return { total: toNumber(row.total), expired: toNumber(row.expired) };
  }

  /** Removes every row of this deployment's table, in batches; resolves how many. */
  async clear(): Promise<number> {
    await this.ready();
    let removed = 0;
    for (;;) {
      const { changes } = await this.engine.query(this.sql.clearBatch, { limit: this.batchSize });
      removed += changes;
      if (changes < this.batchSize) return removed;
    }
  }

  async cleanup(): Promise<number> {
    return (await this.cleanupOnce()).removed;
  }

  /**
   * One run of the cleanup job: while holding the deployment-wide cleanup lock, removes expired
   * rows in batches until a batch comes back short. Does nothing when another worker holds the
   * lock (it is doing the same work).
   */
  async cleanupOnce(): Promise<CleanupRun> {
    await this.ready();
    const token = randomBytes(9).toString('base64url');
    const now = this.now();
    const lock = this.engine.dialect.cleanupLock(this.names.meta);
    const outcome = await this.engine.exclusive(
      lock,
      {
        name: lock.session ? `${this.names.stem}:cleanup` : 'cleanup_lease',
        ...(lock.session ? {} : { now, until: String(now + LEASE_MS), token }),
      },
      async (db) => {
        let removed = 0;
        let batches = 0;
        while (batches < MAX_BATCHES_PER_RUN && !this.closed) {
          const { changes } = await db.query(this.sql.sweep, {
            now: this.now(),
            limit: this.batchSize,
          });
          batches++;
          removed += changes;
          if (changes < this.batchSize) break;
        }
        return { removed, batches };
      },
    );
    return outcome.ran ? { ran: true, ...outcome.value } : { ran: false, removed: 0, batches: 0 };
  }

  /** Runs the job after `delayMs`, then every `intervalMs`; a run never overlaps the next. */
  private schedule(delayMs: number, intervalMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.cleanupOnce()
        .then((run) => {
          if (run.removed > 0) {
            this.logger?.info(
              { removed: run.removed, batches: run.batches, table: this.names.plain.entries },
              'store cleanup',
            );
          }
        })
        .catch((error: unknown) => {
          if (!this.closed) this.logger?.warn({ err: error }, 'store cleanup failed');
        })
        .finally(() => {
          this.running = undefined;
          if (!this.closed) this.schedule(intervalMs, intervalMs);
        });
    }, delayMs);
    // Housekeeping must never be the reason a process stays alive.
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    // A run in progress stops after its current batch (see cleanupOnce); its connection is
    // given back before the pool closes.
    await this.running?.catch(() => undefined);
    await this.engine.close();
  }
}
