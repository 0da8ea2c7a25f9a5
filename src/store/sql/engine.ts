import type { Dialect, ExclusiveLock } from './dialect';

/** Parameter values as both drivers bind them; booleans travel as 1 and 0. */
export type Params = Record<string, string | number | null>;

export type Row = Record<string, unknown>;

export interface Result {
  rows: Row[];
  /** Rows the statement inserted, changed or deleted. */
  changes: number;
}

/** Runs shared statement text (see dialect.ts) with named parameters. */
export interface Queryable {
  query(sql: string, params?: Params): Promise<Result>;
}

/**
 * A database as the SQL store uses it: single statements, short transactions and a
 * deployment-wide lock. Implementations turn every failure to reach the database or get an answer
 * in time into StoreUnavailableError, and leave programming errors (a bad statement) as they are.
 */
export interface Engine extends Queryable {
  readonly name: 'postgres' | 'sqlite';
  readonly dialect: Dialect;
  /**
   * Runs `body` in one transaction started with the dialect's `begin`; commits when it resolves,
   * rolls back when it rejects. A transaction that the database aborted for a deadlock or a
   * serialisation failure is run again, a bounded number of times.
   */
  transaction<T>(body: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `body` holding `lock` (see ExclusiveLock), when no other worker holds it; resolves
   * `{ ran: false }` without running it otherwise. `params` fill the lock's statements.
   * Each statement of `body` has the store's timeout; the whole may take longer.
   */
  exclusive<T>(
    lock: ExclusiveLock,
    params: Params,
    body: (db: Queryable) => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;
  /** What kind of failure `error` (a StoreUnavailableError's cause, or a driver error) is. */
  classify(error: unknown): FailureKind;
  close(): Promise<void>;
}

/**
 * unavailable: the database cannot be reached or did not answer in time (it may work a moment
 * later); misconfigured: it answered, but refuses this service (authentication, a database that
 * does not exist, missing rights) until an operator acts; bug: anything else, a statement this
 * code should never have sent.
 */
export type FailureKind = 'unavailable' | 'misconfigured' | 'bug';
