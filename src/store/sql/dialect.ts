/**
 * Everything in which PostgreSQL and SQLite differ for the SQL store, and nothing else. Every
 * statement in statements.ts and schema.ts is written once, in the part of SQL both engines agree
 * on (INSERT … ON CONFLICT … DO UPDATE … RETURNING, UPDATE/DELETE … RETURNING, CASE, CAST), with
 * named parameters (`:key`); this file says how each engine takes parameters, how its tables are
 * declared, and how it serialises work that a transaction alone does not serialise.
 */

export type EngineName = 'postgres' | 'sqlite';

/** A statement as the driver takes it: its text and, for positional drivers, the parameter order. */
export interface Compiled {
  text: string;
  /** Parameter names in the order of $1, $2, … (PostgreSQL); empty where names bind directly. */
  order: string[];
}

/** A lock that one worker of the whole deployment holds at a time, or nobody. */
export interface ExclusiveLock {
  /**
   * Resolves a row when the lock was free and is now held by this caller. Params: :name, and
   * for a lease :now, :until and :token.
   */
  acquire: string;
  /** Gives it back. Params as acquire. */
  release: string;
  /**
   * true: the lock belongs to the database session (PostgreSQL's advisory locks), so acquire,
   * the work and release must run on one connection, and a lost connection gives it back.
   * false: a lease row that expires by itself at :until if its holder dies.
   */
  session: boolean;
}

export interface Dialect {
  readonly engine: EngineName;
  /** Column type of keys. */
  readonly keyType: string;
  /** What follows the closing parenthesis of CREATE TABLE for the entries table. */
  readonly tableOptions: string;
  /** Starts a transaction that will write. */
  readonly begin: string;
  /**
   * Run first inside the migration transaction, so that workers starting at once migrate one after
   * the other (param :name); undefined where `begin` already gives the writer the whole database.
   */
  readonly migrationLock: string | undefined;
  /**
   * Locks `count` keys (params :k0 … :kN) for the rest of the transaction whether or not they have
   * a row yet, so that a count read in the transaction cannot change before the transaction
   * writes it; undefined where `begin` already serialises every writer.
   */
  keyLocks(count: number): string | undefined;
  /** The cleanup job's deployment-wide lock; `meta` is the quoted name of the meta table. */
  cleanupLock(meta: string): ExclusiveLock;
  /** Turns shared statement text into the driver's form. */
  compile(sql: string): Compiled;
}

/**
 * An advisory lock number for a name, qualified by the schema the tables live in, so that two
 * deployments in different schemas (or with different table prefixes) never wait for each other.
 */
const advisoryKey = (name: string) => `hashtextextended(current_schema() || '.' || ${name}, 0)`;

/**
 * PostgreSQL, through node-postgres: positional $n parameters. Keys compare bytewise ("C"), as only
 * equality and a stable order matter, and the database's locale would cost time for nothing.
 * Rows that a transaction reads and then decides on are locked as it writes them (UPDATE …
 * RETURNING takes the row lock); counters that may have no row yet are locked with transaction
 * advisory locks, which PostgreSQL lets go at COMMIT or ROLLBACK.
 */
export const postgres: Dialect = {
  engine: 'postgres',
  keyType: 'TEXT COLLATE "C"',
  tableOptions: '',
  begin: 'BEGIN',
  migrationLock: `SELECT pg_advisory_xact_lock(${advisoryKey(':name')})`,
  keyLocks(count) {
    if (count === 0) return undefined;
    // One statement for all of them, in the order given (the caller sorts the keys, so that two
    // transactions never take the same locks in opposite orders).
    const locks = Array.from(
      { length: count },
      (_, i) => `pg_advisory_xact_lock(${advisoryKey(`:table || ':' || :k${i}`)})`,
    );
    return `SELECT ${locks.join(', ')}`;
  },
  cleanupLock: () => ({
    acquire: `SELECT 1 AS held WHERE pg_try_advisory_lock(${advisoryKey(':name')})`,
    release: `SELECT pg_advisory_unlock(${advisoryKey(':name')})`,
    session: true,
  }),
  compile(sql) {
    const order: string[] = [];
    const text = replaceParameters(sql, (name) => {
      let index = order.indexOf(name);
      if (index < 0) index = order.push(name) - 1;
      return `$${index + 1}`;
    });
    return { text, order };
  },
};

/**
 * SQLite, through better-sqlite3, which binds :name parameters itself. A table keyed by text is
 * stored by its key (WITHOUT ROWID). Every writing transaction starts IMMEDIATE: it takes the
 * database's one write lock first, so writers in this and other processes run one after the
 * other and no transaction can read a count that another then changes. The cleanup lock is a
 * lease row in the meta table, as SQLite has no locks that outlive a transaction.
 */
export const sqlite: Dialect = {
  engine: 'sqlite',
  keyType: 'TEXT',
  tableOptions: ' WITHOUT ROWID',
  begin: 'BEGIN IMMEDIATE',
  migrationLock: undefined,
  keyLocks: () => undefined,
  // The lease row holds "<until> <token>": free once :now passes until (its holder died), and
  // given back only by the holder whose token it still carries.
  cleanupLock: (meta) => ({
    acquire: `UPDATE ${meta} SET value = :until || ' ' || :token WHERE name = :name AND CAST(substr(value, 1, instr(value || ' ', ' ') - 1) AS INTEGER) <= :now RETURNING 1 AS held`,
    release: `UPDATE ${meta} SET value = '0' WHERE name = :name AND value = :until || ' ' || :token`,
    session: false,
  }),
  compile: (sql) => ({ text: sql, order: [] }),
};

/**
 * Replaces every `:name` parameter outside quotes. A `::` (a PostgreSQL cast) is never a
 * parameter; shared statements use CAST() instead, so it does not occur in them anyway.
 */
export function replaceParameters(sql: string, replace: (name: string) => string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      const stop = end < 0 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === ':' && sql[i + 1] === ':') {
      out += '::';
      i += 2;
      continue;
    }
    if (ch === ':') {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1));
      if (match) {
        out += replace(match[0]);
        i += 1 + match[0].length;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return out;
}
