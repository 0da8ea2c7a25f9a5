import { createHash, randomInt } from 'node:crypto';
import pg from 'pg';
import { StoreUnavailableError } from '../../errors';
import type { Logger } from '../../logger';
import { type Compiled, type ExclusiveLock, postgres } from './dialect';
import type { Engine, FailureKind, Params, Queryable, Result } from './engine';

export interface PostgresEngineOptions {
  /** DATABASE_URL; `?options=-c%20search_path%3Dname` puts the tables in a schema of their own. */
  url: string;
  /** DATABASE_POOL_SIZE: connections this process keeps at most. */
  poolSize?: number;
  /** STORE_TIMEOUT_MS: the longest a store call may take, waiting for a connection included. */
  timeoutMs?: number;
  logger?: Logger;
}

/** A call that did not finish within STORE_TIMEOUT_MS. */
class DeadlineError extends Error {}

/** How often a transaction the server aborted for a deadlock or serialisation failure is rerun. */
const TRANSACTION_RETRIES = 3;

/** SQLSTATEs after which running the transaction again can succeed. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * SQLSTATE classes an operator must fix: 28 (authentication), 3D (no such database), 42501 (no
 * privilege, a role without the rights the schema needs).
 */
function isMisconfiguration(code: string): boolean {
  return code.startsWith('28') || code.startsWith('3D') || code === '42501';
}

/**
 * The store on PostgreSQL through a node-postgres pool. Every call checks out a connection and
 * gives it back; the whole call, waiting for a connection included, has STORE_TIMEOUT_MS. A call
 * past it fails with StoreUnavailableError and its connection is destroyed, not reused: the server
 * then rolls back whatever the call had begun, and no late answer can reach another call. Each
 * statement also carries the same statement_timeout, so the server itself stops work nobody waits
 * for. A server that restarts closes the idle connections; the pool drops them and opens new ones
 * on demand, so the store recovers by itself.
 */
export class PostgresEngine implements Engine {
  readonly name = 'postgres' as const;
  readonly dialect = postgres;
  private readonly pool: pg.Pool;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly compiled = new Map<string, Compiled & { name: string }>();
  private down = false;
  /** The database answered but refuses this service (see FailureKind), logged already. */
  private refused = false;
  private closed = false;

  constructor(options: PostgresEngineOptions) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.logger = options.logger;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: this.timeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: this.timeoutMs,
      // A connection lost mid-transaction (a network cut rather than a closed socket) must not
      // keep its row locks for long.
      idle_in_transaction_session_timeout: Math.max(10_000, this.timeoutMs * 10),
      keepAlive: true,
      application_name: 'verifyd',
    });
    // An idle connection the server closed (a restart, a kill) is reported here; without a
    // listener it would crash the process. The pool has already dropped it.
    this.pool.on('error', (error) => this.noteDown(error));
  }

  classify(error: unknown): FailureKind {
    const cause = error instanceof StoreUnavailableError ? error.cause : error;
    const code = (cause as { code?: unknown })?.code;
    const fromServer = typeof (cause as { severity?: unknown })?.severity === 'string';
    if (typeof code === 'string' && fromServer) {
      if (isMisconfiguration(code)) return 'misconfigured';
      // 08 connection, 53 resources, 57 operator intervention (shutdown, statement timeout),
      // 58 system errors, and a transaction that kept deadlocking.
      if (/^(08|53|57|58)/.test(code) || RETRYABLE.has(code) || code === '55P03') {
        return 'unavailable';
      }
      return 'bug';
    }
    if (cause instanceof DeadlineError) return 'unavailable';
    // Socket errors: ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ENOTFOUND, EHOSTUNREACH, …
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return 'unavailable';
    const message = cause instanceof Error ? cause.message : '';
    // node-postgres's own words for a connection it lost or could not open.
    if (/connection terminated|connection error|not queryable|trying to connect/i.test(message)) {
      return 'unavailable';
    }
    return 'bug';
  }

  private noteDown(error: unknown): void {
    if (this.down || this.closed) return;
    this.down = true;
    this.logger?.warn({ err: error }, 'postgres unavailable');
  }

  /** Logged once, as an outage is: every call fails the same way until the operator acts. */
  private noteRefused(error: unknown): void {
    if (this.refused || this.closed) return;
    this.refused = true;
    this.logger?.error({ err: error }, 'postgres refuses this service');
  }

  private noteUp(): void {
    if (!this.down && !this.refused) return;
    this.down = false;
    this.refused = false;
    this.logger?.info('postgres reachable again');
  }

  /** Everything but a bug becomes StoreUnavailableError: callers fail closed (503). */
  private translate(error: unknown): unknown {
    if (error instanceof StoreUnavailableError) return error;
    const kind = this.classify(error);
    if (kind === 'bug') return error;
    if (kind === 'misconfigured') this.noteRefused(error);
    else this.noteDown(error);
    return new StoreUnavailableError('postgres', error);
  }

  private statement(sql: string): Compiled & { name: string } {
    let found = this.compiled.get(sql);
    if (!found) {
      // A named statement is parsed and planned once per connection, not on every call.
      const name = `verifyd_${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
      found = { ...postgres.compile(sql), name };
      this.compiled.set(sql, found);
    }
    return found;
  }

  private async run(client: pg.PoolClient, sql: string, params: Params = {}): Promise<Result> {
    const { text, order, name } = this.statement(sql);
    const values = order.map((key) => {
      if (!(key in params)) throw new Error(`statement parameter :${key} not given`);
      return params[key];
    });
    const result = await client.query({ name, text, values });
    return { rows: result.rows, changes: result.rowCount ?? 0 };
  }

  /**
   * Runs `body` on a pooled connection within STORE_TIMEOUT_MS. Past it the call rejects and the
   * connection is destroyed when `body` holds it, or given back unused when it arrives late.
   */
  private async withClient<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('postgres', new Error('store is closed'));
    let expired = false;
    let held: pg.PoolClient | undefined;
    let released = false;
    const release = (client: pg.PoolClient, destroy?: Error) => {
      if (released) return;
      released = true;
      client.release(destroy);
    };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        const error = new DeadlineError(`postgres did not answer within ${this.timeoutMs} ms`);
        if (held) release(held, error);
        reject(error);
      }, this.timeoutMs);
    });
    const work = (async () => {
      const client = await this.pool.connect();
      if (expired) {
        release(client);
        throw new DeadlineError('postgres connection came after the deadline');
      }
      held = client;
      try {
        const value = await body(client);
        release(client);
        return value;
      } catch (error) {
        // A connection that failed underneath (or a bug that left a transaction open) is not
        // given to the next caller.
        release(client, error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
    })();
    // The loser of the race may still reject later; that must not be an unhandled rejection.
    work.catch(() => undefined);
    try {
      const value = await Promise.race([work, deadline]);
      this.noteUp();
      return value;
    } catch (error) {
      throw this.translate(error);
    } finally {
      clearTimeout(timer);
    }
  }

  query(sql: string, params?: Params): Promise<Result> {
    return this.withClient((client) => this.run(client, sql, params));
  }

  transaction<T>(body: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      const tx: Queryable = { query: (sql, params) => this.run(client, sql, params) };
      for (let attempt = 1; ; attempt++) {
        await client.query(this.dialect.begin);
        try {
          const value = await body(tx);
          await client.query('COMMIT');
          return value;
        } catch (error) {
          await client.query('ROLLBACK');
          const code = (error as { code?: unknown }).code;
          if (typeof code !== 'string' || !RETRYABLE.has(code) || attempt >= TRANSACTION_RETRIES) {
            throw error;
          }
          // The survivor needs a moment to take the rows this one let go of: a rerun that comes
          // straight back can take them first and deadlock with it again.
          await new Promise((resolve) => setTimeout(resolve, randomInt(10, 30) * attempt));
        }
      }
    });
  }

  /**
   * The lock is a session advisory lock: acquire, work and release all run on one connection
   * checked out for the purpose, each statement with its own deadline. If the connection dies
   * (or a statement times out and it is destroyed), the server drops the lock with the session.
   */
  async exclusive<T>(
    lock: ExclusiveLock,
    params: Params,
    body: (db: Queryable) => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const client = await this.checkout();
    let finished = false;
    const finish = (destroy?: Error) => {
      if (finished) return;
      finished = true;
      client.release(destroy);
    };
    const step = (sql: string, values?: Params) =>
      this.timed(this.run(client, sql, values), (error) => finish(error));
    try {
      const acquired = await step(lock.acquire, params);
      if (acquired.rows.length === 0) {
        finish();
        return { ran: false };
      }
      const value = await body({ query: step });
      await step(lock.release, params);
      finish();
      return { ran: true, value };
    } catch (error) {
      // Destroying the connection ends its session, and the server lets go of the lock with it.
      finish(error instanceof Error ? error : new Error(String(error)));
      throw this.translate(error);
    }
  }

  private async checkout(): Promise<pg.PoolClient> {
    if (this.closed) throw new StoreUnavailableError('postgres', new Error('store is closed'));
    try {
      return await this.pool.connect();
    } catch (error) {
      throw this.translate(error);
    }
  }

  /** `pending` within STORE_TIMEOUT_MS; past it, `onExpiry` (which destroys the connection). */
  private async timed<T>(pending: Promise<T>, onExpiry: (error: Error) => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    pending.catch(() => undefined);
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new DeadlineError(`postgres did not answer within ${this.timeoutMs} ms`);
            onExpiry(error);
            reject(error);
          }, this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
