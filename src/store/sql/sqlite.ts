import { resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StoreUnavailableError } from '../../errors';
import type { Logger } from '../../logger';
import { type ExclusiveLock, sqlite } from './dialect';
import type { Engine, FailureKind, Params, Queryable, Result } from './engine';

export interface SqliteEngineOptions {
  /** SQLITE_PATH. */
  path: string;
  /** STORE_TIMEOUT_MS: how long a write waits for another process's write lock. */
  timeoutMs?: number;
  logger?: Logger;
}

type Driver = typeof BetterSqlite3;
type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

/** better-sqlite3 is missing or cannot load: STORE=sqlite cannot start. */
export class SqliteDriverError extends Error {}

export const SQLITE_DRIVER = 'better-sqlite3';

/**
 * Loads better-sqlite3 on first use only: it is an optional peer dependency with a native part, so a
 * deployment that never sets STORE=sqlite needs neither it nor a compiler.
 */
export function loadSqliteDriver(): Driver {
  try {
    return require(SQLITE_DRIVER) as Driver;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (
      (error as { code?: unknown }).code === 'MODULE_NOT_FOUND' &&
      message.includes(SQLITE_DRIVER)
    ) {
      throw new SqliteDriverError(
        `STORE=sqlite needs ${SQLITE_DRIVER}, which is not installed. ` +
          `Install it beside verifyd with: npm install ${SQLITE_DRIVER}@12 (version 13 needs Node 22). Where no ` +
          'prebuilt binary fits this platform, that compiles it and needs Python and a C++ compiler.',
      );
    }
    throw new SqliteDriverError(
      `STORE=sqlite: ${SQLITE_DRIVER} is installed but does not load (${message}). ` +
        `Rebuild it for this Node version with: npm rebuild ${SQLITE_DRIVER}`,
    );
  }
}

/** Result codes after which the same call may work a moment later. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|NOMEM|PROTOCOL|CANTOPEN|INTERRUPT)/;
/** Result codes an operator must fix (a read-only or foreign file, missing permissions). */
const MISCONFIGURED = /^SQLITE_(READONLY|PERM|AUTH|NOTADB|CORRUPT)/;

/**
 * One open file: its connection, prepared statements and the queue of calls waiting for an open
 * transaction. Every engine of this process on the same file shares it (see SqliteEngine).
 */
class Connection {
  readonly statements = new Map<string, Statement>();
  /** Calls that must wait for the open transaction; settled while none is open. */
  tail: Promise<unknown> = Promise.resolve();
  inTransaction = 0;
  users = 0;
  closed = false;

  constructor(readonly db: Database) {}
}

const connections = new Map<string, Connection>();

function connect(file: string, timeoutMs: number, driver: Driver): Connection {
  const key = file === '' ? file : resolve(file);
  let connection = connections.get(key);
  if (!connection || connection.closed) {
    let db: Database;
    try {
      db = new driver(file, { timeout: timeoutMs });
      // WAL lets readers go on while one process writes; the mode is kept in the file. NORMAL
      // syncs at checkpoints rather than every commit: in WAL mode that is still safe against an
      // application crash; a power cut may lose the last commits, never the file's consistency.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot open SQLITE_PATH "${file}": ${message}`, { cause: error });
    }
    connection = new Connection(db);
    connections.set(key, connection);
  }
  connection.users++;
  return connection;
}

/**
 * The store on a SQLite file through better-sqlite3, in WAL mode, so that readers never wait for
 * the writer and several processes on one host can share the file (never over a network file
 * system: SQLite's locks need one kernel). Writers take the file's one write lock in turn; one
 * that finds it taken waits up to STORE_TIMEOUT_MS (SQLite's busy timeout), then fails closed with
 * StoreUnavailableError.
 *
 * better-sqlite3 is synchronous: a statement runs to completion before this process does anything
 * else, which makes single statements trivially atomic here. A transaction, however, is written
 * as async steps (the same code runs PostgreSQL's); between two of its steps this process could
 * start another statement on the same connection, inside the open transaction. So while a
 * transaction is open, every other call waits in a queue until it ends. For the same reason all
 * stores of one process on one file share one connection: a second connection would wait for
 * the first one's write lock synchronously, blocking the very event loop that would finish the
 * transaction holding it. (The busy timeout of that connection is its first opener's.)
 */
export class SqliteEngine implements Engine {
  readonly name = 'sqlite' as const;
  readonly dialect = sqlite;
  private readonly connection: Connection;
  private closed = false;

  constructor(options: SqliteEngineOptions, driver: Driver = loadSqliteDriver()) {
    this.connection = connect(options.path, options.timeoutMs ?? 1000, driver);
  }

  classify(error: unknown): FailureKind {
    const cause = error instanceof StoreUnavailableError ? error.cause : error;
    const code = (cause as { code?: unknown })?.code;
    if (typeof code !== 'string') return 'bug';
    if (UNAVAILABLE.test(code)) return 'unavailable';
    if (MISCONFIGURED.test(code)) return 'misconfigured';
    return 'bug';
  }

  private translate(error: unknown): unknown {
    if (error instanceof StoreUnavailableError || this.classify(error) === 'bug') return error;
    return new StoreUnavailableError('sqlite', error);
  }

  private prepare(sql: string): Statement {
    const { statements, db } = this.connection;
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs one statement now, synchronously. */
  private execute(sql: string, params: Params = {}): Result {
    if (this.closed) throw new StoreUnavailableError('sqlite', new Error('store is closed'));
    const statement = this.prepare(sql);
    if (statement.reader) {
      const rows = statement.all(params) as Result['rows'];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: statement.run(params).changes };
  }

  query(sql: string, params?: Params): Promise<Result> {
    if (this.connection.inTransaction === 0) {
      try {
        return Promise.resolve(this.execute(sql, params));
      } catch (error) {
        return Promise.reject(this.translate(error));
      }
    }
    return this.queued(async () => this.execute(sql, params));
  }

  /** Runs `work` once every transaction opened before it has ended. */
  private queued<T>(work: () => Promise<T>): Promise<T> {
    const result = this.connection.tail.then(work).catch((error: unknown) => {
      throw this.translate(error);
    });
    this.connection.tail = result.catch(() => undefined);
    return result;
  }

  transaction<T>(body: (tx: Queryable) => Promise<T>): Promise<T> {
    this.connection.inTransaction++;
    return this.queued(async () => {
      const tx: Queryable = { query: async (sql, params) => this.execute(sql, params) };
      try {
        this.execute(this.dialect.begin);
        try {
          const value = await body(tx);
          this.execute('COMMIT');
          return value;
        } catch (error) {
          if (this.connection.db.inTransaction) this.connection.db.exec('ROLLBACK');
          throw error;
        }
      } finally {
        this.connection.inTransaction--;
      }
    });
  }

  /** The lock is a lease row: the work runs as ordinary statements while this worker holds it. */
  async exclusive<T>(
    lock: ExclusiveLock,
    params: Params,
    body: (db: Queryable) => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const acquired = await this.query(lock.acquire, params);
    if (acquired.rows.length === 0) return { ran: false };
    try {
      return { ran: true, value: await body(this) };
    } finally {
      await this.query(lock.release, params).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connection = this.connection;
    await connection.tail;
    if (--connection.users > 0 || connection.closed) return;
    connection.closed = true;
    connection.db.close();
  }
}
