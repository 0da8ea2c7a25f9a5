/**
 * What the SQL stores promise beyond the shared conformance suite: their schema (versioned,
 * idempotent, safe when workers start at once, one set of tables per KEY_PREFIX), the cleanup
 * job, and failing closed when the database makes them wait.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pg from 'pg';
import { buildConfig } from '../../src/config';
import { StoreUnavailableError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createSqlStore } from '../../src/store/sql';
import type { Engine } from '../../src/store/sql/engine';
import { PostgresEngine } from '../../src/store/sql/postgres';
import { SCHEMA_VERSION, SchemaError } from '../../src/store/sql/schema';
import { SqliteEngine } from '../../src/store/sql/sqlite';
import { SqlStore, type SqlStoreOptions } from '../../src/store/sql/store';
import { attemptSecret, putSecret } from '../support/secrets';
import { sleep, uniquePrefix } from '../support/servers';
import {
  describePostgres,
  describeSqlite,
  type PrivatePostgres,
  startPrivatePostgres,
  testDatabaseUrl,
} from '../support/sql';

interface Backend {
  engine(timeoutMs?: number): Engine;
  /** Runs SQL on another connection, as another program would. */
  admin(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
}

/** Collects the logger's JSON lines. */
function captureStream(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
}

/** A clock the test moves. */
class Clock {
  current = Date.now();
  now = () => this.current;
}

function sharedSuite(name: 'postgres' | 'sqlite', backend: () => Backend) {
  const stores: SqlStore[] = [];
  const open = (prefix: string, options: SqlStoreOptions = {}, timeoutMs = 5000) => {
    const store = new SqlStore(backend().engine(timeoutMs), { keyPrefix: prefix, ...options });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  describe(`${name}: schema`, () => {
    it('migrates once when eight workers start at the same moment', async () => {
      const prefix = uniquePrefix('migrate-race');
      const results = await Promise.all(Array.from({ length: 8 }, () => open(prefix).migrate()));
      expect(results.filter((r) => r.from === 0)).toHaveLength(1);
      expect(results.every((r) => r.to === SCHEMA_VERSION)).toBe(true);
      // And again later: nothing to do.
      expect(await open(prefix).migrate()).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    });

    it('names the tables after KEY_PREFIX, so deployments share a database apart', async () => {
      const store = open('verifyd:');
      expect(store.names.plain).toEqual({
        entries: 'verifyd_entries',
        meta: 'verifyd_meta',
        expiryIndex: 'verifyd_entries_expires_at',
      });
      expect(open('').names.plain.entries).toBe('verifyd_entries');
      const long = open(`${'x'.repeat(60)}:`);
      expect(long.names.plain.expiryIndex.length).toBeLessThanOrEqual(63);
    });

    it('refuses a KEY_PREFIX whose table names another prefix already owns', async () => {
      const base = uniquePrefix('collide');
      await open(`${base}a:b`).migrate();
      const other = open(`${base}a-b`);
      expect(other.names.plain.entries).toBe(open(`${base}a:b`).names.plain.entries);
      await expect(other.migrate()).rejects.toThrow(SchemaError);
      await expect(other.migrate()).rejects.toThrow(/belong to KEY_PREFIX "[^"]*a:b"/);
    });

    it('refuses tables a newer verifyd migrated', async () => {
      const prefix = uniquePrefix('newer');
      const store = open(prefix);
      await store.migrate();
      await backend().admin(
        `UPDATE ${store.names.meta} SET value = '99' WHERE name = 'schema_version'`,
      );
      await expect(open(prefix).migrate()).rejects.toThrow(
        /schema version 99, newer than this verifyd/,
      );
    });
  });

  describe(`${name}: cleanup job`, () => {
    it('removes expired rows in bounded batches, logs one line per run that removed any, and stops on close', async () => {
      const clock = new Clock();
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', destination: captureStream(lines) });
      const prefix = uniquePrefix('cleanup-job');
      const writer = open(prefix, { now: clock.now });
      await writer.migrate();
      for (let i = 0; i < 35; i++) await writer.set(`old:${i}`, 'v', 60);
      await writer.set('young', 'v', 3600);
      clock.current += 61_000;
      // The expired rows are invisible at once, before any cleanup.
      expect(await writer.get('old:0')).toBeUndefined();
      expect(await writer.counts()).toEqual({ total: 36, expired: 35 });

      const job = open(prefix, {
        now: clock.now,
        logger,
        cleanupIntervalSeconds: 1,
        firstCleanupDelayMs: 20,
        cleanupBatchSize: 10,
      });
      const deadline = Date.now() + 15_000;
      while (!lines.some((line) => line.includes('store cleanup')) && Date.now() < deadline) {
        await sleep(20);
      }
      const runs = lines.map((line) => JSON.parse(line)).filter((l) => l.msg === 'store cleanup');
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ removed: 35, batches: 4 });
      expect(await writer.counts()).toEqual({ total: 1, expired: 0 });
      expect(await writer.get('young')).toBe('v');

      // Runs that find nothing say nothing.
      await sleep(2500);
      expect(lines.filter((line) => line.includes('store cleanup'))).toHaveLength(1);

      // After close, no run starts: rows that expire now stay until another worker's job.
      await job.close();
      await writer.set('late', 'v', 1);
      clock.current += 2000;
      await sleep(1500);
      expect(await writer.counts()).toEqual({ total: 2, expired: 1 });
      expect(lines.filter((line) => line.includes('store cleanup failed'))).toEqual([]);
    });

    it('lets one worker at a time run it: the others skip while the lock is held', async () => {
      const clock = new Clock();
      const prefix = uniquePrefix('cleanup-lock');
      const workers = Array.from({ length: 4 }, () => open(prefix, { now: clock.now }));
      await workers[0]?.migrate();
      for (let i = 0; i < 20; i++) await workers[0]?.set(`k${i}`, 'v', 1);
      clock.current += 1000;
      const runs = await Promise.all(workers.map((worker) => worker.cleanupOnce()));
      // However the runs overlapped, each row was removed once, and a skipped run removed none.
      expect(runs.reduce((sum, run) => sum + run.removed, 0)).toBe(20);
      for (const run of runs) if (!run.ran) expect(run.removed).toBe(0);
    });

    it('finds expired rows through the expiry index, not a table scan', async () => {
      const clock = new Clock();
      const store = open(uniquePrefix('cleanup-index'), { now: clock.now });
      await store.migrate();
      for (let i = 0; i < 300; i++) await store.set(`k${i}`, 'v', 60 + i);
      const plan = await backend().admin(
        `${name === 'postgres' ? 'EXPLAIN' : 'EXPLAIN QUERY PLAN'} SELECT key FROM ${store.names.entries} WHERE expires_at <= ${clock.current} ORDER BY expires_at LIMIT 500`,
      );
      expect(JSON.stringify(plan)).toContain(store.names.plain.expiryIndex);
    });
  });
}

describePostgres('SQL store on PostgreSQL', () => {
  sharedSuite('postgres', () => ({
    engine: (timeoutMs = 5000) => new PostgresEngine({ url: testDatabaseUrl(), timeoutMs }),
    admin: async (sql, params) => {
      const client = new pg.Client({ connectionString: testDatabaseUrl() });
      await client.connect();
      try {
        // A small table would be scanned whatever its indexes; the planner must show it can use one.
        await client.query('SET enable_seqscan = off');
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
  }));

  describe('faults', () => {
    const stores: SqlStore[] = [];
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
    });

    it('logs a database that refuses this service once, however many calls it fails', async () => {
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', destination: captureStream(lines) });
      const url = new URL(testDatabaseUrl());
      url.pathname = '/verifyd_no_such_database';
      const engine = new PostgresEngine({ url: url.href, timeoutMs: 5000, logger });
      const store = new SqlStore(engine, {
        keyPrefix: uniquePrefix('refused'),
      });
      stores.push(store);
      for (let i = 0; i < 3; i++) {
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
      }
      const refused = lines.filter((line) => line.includes('refuses this service'));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toContain('verifyd_no_such_database');
    });

    it('fails closed when a row stays locked past STORE_TIMEOUT_MS, and works once it is free', async () => {
      const prefix = uniquePrefix('row-lock');
      // The tables and the first count through a store with time to spare on a busy machine; the
      // store under test has a short deadline, which only the held row may exceed.
      const setup = new SqlStore(
        new PostgresEngine({ url: testDatabaseUrl(), timeoutMs: 10_000 }),
        {
          keyPrefix: prefix,
        },
      );
      const store = new SqlStore(new PostgresEngine({ url: testDatabaseUrl(), timeoutMs: 500 }), {
        keyPrefix: prefix,
      });
      stores.push(setup, store);
      await setup.increment('counter', 60);
      const holder = new pg.Client({ connectionString: testDatabaseUrl() });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT * FROM ${store.names.entries} WHERE key = 'counter' FOR UPDATE`);
        const started = Date.now();
        await expect(store.increment('counter', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(Date.now() - started).toBeLessThan(5000);
        // The client gives up at STORE_TIMEOUT_MS and the server cancels the statement at the same
        // deadline; releasing the row before the server has would let the waiting statement run
        // (a timed-out write may still be applied, as the contract says). So wait for the cancel.
        for (let waited = 0; ; waited += 50) {
          const { rows } = await holder.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE $1",
            [`%${store.names.entries}%`],
          );
          if (rows[0].n === 0) break;
          if (waited > 5000) throw new Error('the server never cancelled the waiting increment');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await holder.query('ROLLBACK');
      } finally {
        await holder.end();
      }
      // The refused increment was never counted: the server's statement_timeout (the same
      // STORE_TIMEOUT_MS) cancelled it while it waited for the row.
      expect((await setup.increment('counter', 60)).count).toBe(2);
    });

    it('runs a transaction the server aborted for a deadlock again, so both callers succeed', async () => {
      const engine = new PostgresEngine({ url: testDatabaseUrl(), timeoutMs: 10_000 });
      const store = new SqlStore(engine, { keyPrefix: uniquePrefix('deadlock') });
      stores.push(store);
      await store.set('a', '0', 60);
      await store.set('b', '0', 60);
      const update = `UPDATE ${store.names.entries} SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = :key`;
      let arrived = 0;
      let bothHoldOne: () => void = () => undefined;
      const barrier = new Promise<void>((resolve) => {
        bothHoldOne = resolve;
      });
      let bodies = 0;
      const crosswise = (first: string, second: string) =>
        engine.transaction(async (tx) => {
          bodies++;
          await tx.query(update, { key: first });
          if (++arrived === 2) bothHoldOne();
          await barrier;
          await tx.query(update, { key: second });
        });
      await Promise.all([crosswise('a', 'b'), crosswise('b', 'a')]);
      // One of the two was chosen as the deadlock's victim, rolled back and run again (on a busy
      // machine a rerun may meet the survivor once more before it gets through).
      expect(bodies).toBeGreaterThanOrEqual(3);
      expect([await store.get('a'), await store.get('b')]).toEqual(['2', '2']);
    });
  });

  describe('a role that may only read and write rows', () => {
    let server: PrivatePostgres;
    beforeAll(async () => {
      server = await startPrivatePostgres();
    }, 120_000);
    afterAll(() => server?.destroy());

    it('works once an owner has migrated, without any right to create tables', async () => {
      const prefix = uniquePrefix('least-privilege');
      const owner = new SqlStore(new PostgresEngine({ url: server.url, timeoutMs: 5000 }), {
        keyPrefix: prefix,
      });
      await owner.migrate();
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        await admin.query('CREATE ROLE app LOGIN');
        await admin.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
        await admin.query(
          `GRANT SELECT, INSERT, UPDATE, DELETE ON ${owner.names.entries}, ${owner.names.meta} TO app`,
        );
      } finally {
        await admin.end();
      }
      const appUrl = server.url.replace('postgres@', 'app@');
      const app = new SqlStore(new PostgresEngine({ url: appUrl, timeoutMs: 5000 }), {
        keyPrefix: prefix,
      });
      try {
        expect(await app.migrate()).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
        await putSecret(app, 's', 'right', 60);
        expect(await attemptSecret(app, 's', 'right', 5)).toMatchObject({ status: 'match' });
        // Without an owner's migration first, the same role is refused at start, with the reason.
        const config = buildConfig({
          STORE: 'postgres',
          DATABASE_URL: appUrl,
          KEY_PREFIX: uniquePrefix('no-rights'),
        });
        await expect(createSqlStore(config)).rejects.toThrow(
          /^STORE=postgres \(postgres:\/\/127\.0\.0\.1:\d+\/postgres\): permission denied for schema public$/,
        );
      } finally {
        await Promise.all([app.close(), owner.close()]);
      }
    });
  });
});

describeSqlite('SQL store on SQLite', () => {
  let dir: string;
  const file = () => path.join(dir, 'store.sqlite');
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'verifyd-sqlite-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  sharedSuite('sqlite', () => ({
    engine: (timeoutMs = 5000) => new SqliteEngine({ path: file(), timeoutMs }),
    admin: async (sql, params = []) => {
      const db = new Database(file(), { timeout: 5000 });
      try {
        const statement = db.prepare(sql);
        if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
        statement.run(...params);
        return [];
      } finally {
        db.close();
      }
    },
  }));

  it('keeps pending codes, attempts and limits across a restart', async () => {
    const prefix = uniquePrefix('restart');
    const before = new SqlStore(new SqliteEngine({ path: file() }), { keyPrefix: prefix });
    await putSecret(before, 'code', 'right', 600, { data: 'sealed' });
    await attemptSecret(before, 'code', 'wrong', 3);
    await before.increment('limit', 600);
    await before.increment('limit', 600);
    await before.close();

    const after = new SqlStore(new SqliteEngine({ path: file() }), { keyPrefix: prefix });
    try {
      expect((await after.increment('limit', 600)).count).toBe(3);
      expect(await attemptSecret(after, 'code', 'wrong', 3)).toMatchObject({ remaining: 1 });
      expect(await attemptSecret(after, 'code', 'right', 3)).toEqual({
        status: 'match',
        attempts: 3,
        data: 'sealed',
      });
    } finally {
      await after.close();
    }
  });

  it('waits for another process’s write lock within STORE_TIMEOUT_MS, then fails closed', async () => {
    const store = new SqlStore(new SqliteEngine({ path: file(), timeoutMs: 400 }), {
      keyPrefix: uniquePrefix('busy'),
    });
    await store.migrate();
    await holdWriteLockElsewhere(file(), 1500, async () => {
      const started = Date.now();
      await expect(store.set('k', 'second', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    });
    await holdWriteLockElsewhere(file(), 150, async () => {
      await store.set('k', 'third', 60);
    });
    expect(await store.get('k')).toBe('third');
    await store.close();
  });
});

/**
 * Runs `during` while a child process holds the file's write lock for `holdMs`: better-sqlite3
 * waits synchronously, so the lock must be held outside this process's event loop.
 */
async function holdWriteLockElsewhere(
  file: string,
  holdMs: number,
  during: () => Promise<void>,
): Promise<void> {
  const script = `
    const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
    const db = new Database(${JSON.stringify(file)}, { timeout: 5000 });
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('held\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${holdMs});
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await during();
  } finally {
    await exited;
  }
}
