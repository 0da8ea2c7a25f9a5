import { createHash } from 'node:crypto';
import type { Dialect } from './dialect';
import type { Engine, Queryable } from './engine';

/**
 * The tables of one deployment. KEY_PREFIX plays the part in SQL that it plays in Redis: it is
 * the start of every table and index name, so deployments with different prefixes share a
 * database (or a schema) without sharing a row. Names are lower-case letters, digits and "_", so
 * an operator can type them unquoted in psql or sqlite3: "verifyd:" gives verifyd_entries and
 * verifyd_meta. Two prefixes that map to the same names (e.g. "verifyd:" and "verifyd-") are
 * told apart by the prefix recorded in the meta table: the second is refused at start.
 */
export interface TableNames {
  /** The name stem from KEY_PREFIX, e.g. "verifyd_". */
  readonly stem: string;
  /** Unquoted names, for messages and the README. */
  readonly plain: { entries: string; meta: string; expiryIndex: string };
  /** Quoted names, for statements. */
  readonly entries: string;
  readonly meta: string;
  readonly expiryIndex: string;
}

/** PostgreSQL cuts identifiers at 63 bytes; the longest name is the stem plus 21 characters. */
const MAX_STEM = 40;

export function tableNames(keyPrefix: string): TableNames {
  // Without a prefix the tables would be called "entries" and "meta", names an application's own
  // tables may well have: they keep verifyd's name then.
  let stem = keyPrefix === '' ? 'verifyd_' : keyPrefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (stem.length > MAX_STEM) {
    // Long prefixes keep their start, readable, and a digest of the whole, distinct.
    const digest = createHash('sha256').update(keyPrefix).digest('hex').slice(0, 8);
    stem = `${stem.slice(0, MAX_STEM - 10)}_${digest}_`;
  }
  const plain = {
    entries: `${stem}entries`,
    meta: `${stem}meta`,
    expiryIndex: `${stem}entries_expires_at`,
  };
  const quote = (name: string) => `"${name}"`;
  return {
    stem,
    plain,
    entries: quote(plain.entries),
    meta: quote(plain.meta),
    expiryIndex: quote(plain.expiryIndex),
  };
}

interface Migration {
  version: number;
  statements(names: TableNames, dialect: Dialect): string[];
}

/**
 * Every schema change, in order; a deployment at version N runs those above N, each once. Never
 * edit a released migration: add the next one.
 *
 * The entries table holds every kind of entry the store contract knows: a plain value, a
 * fixed-window counter (its count as decimal text in `value`) or a verification (its codes' HMACs
 * and sealed data as JSON in `value`, the binding an attempt must present for the bound lane, and
 * the attempts of both lanes in `attempts` and `bound_attempts`, which are NULL on anything else).
 * Times are epoch milliseconds. A row past `expires_at` is invisible to every statement before
 * the cleanup job removes it, which its index keeps cheap.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (n, d) => [
      `CREATE TABLE IF NOT EXISTS ${n.entries} (
        key ${d.keyType} PRIMARY KEY,
        value TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        written_at BIGINT NOT NULL,
        attempts INTEGER,
        bound_attempts INTEGER,
        binding TEXT
      )${d.tableOptions}`,
      `CREATE INDEX IF NOT EXISTS ${n.expiryIndex} ON ${n.entries} (expires_at)`,
      `INSERT INTO ${n.meta} (name, value) VALUES ('cleanup_lease', '0') ON CONFLICT (name) DO NOTHING`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

/** The schema cannot be used by this verifyd: an operator must act; retrying will not help. */
export class SchemaError extends Error {}

export interface MigrationResult {
  /** The version found: 0 for a database without the tables. */
  from: number;
  to: number;
}

async function readMeta(db: Queryable, names: TableNames) {
  const { rows } = await db.query(
    `SELECT name, value FROM ${names.meta} WHERE name IN ('schema_version', 'key_prefix')`,
  );
  const value = (name: string) =>
    rows.find((row) => row.name === name)?.value as string | undefined;
  const version = value('schema_version');
  return { version: version === undefined ? 0 : Number(version), keyPrefix: value('key_prefix') };
}

function check(
  names: TableNames,
  keyPrefix: string,
  found: { version: number; keyPrefix?: string },
) {
  if (found.keyPrefix !== undefined && found.keyPrefix !== keyPrefix) {
    throw new SchemaError(
      `The tables ${names.plain.entries} and ${names.plain.meta} belong to KEY_PREFIX ` +
        `"${found.keyPrefix}", not "${keyPrefix}"; both give the same table names. Choose a ` +
        'KEY_PREFIX that differs in letters or digits.',
    );
  }
  if (found.version > SCHEMA_VERSION) {
    throw new SchemaError(
      `The tables ${names.plain.entries} are at schema version ${found.version}, newer than this ` +
        `verifyd knows (${SCHEMA_VERSION}): a newer verifyd migrated them. Run that version.`,
    );
  }
}

/**
 * Brings the tables of `keyPrefix` to SCHEMA_VERSION. Idempotent: a schema already current costs
 * one read and no DDL, so a database role without the right to create tables works once an owner
 * has run `npx verifyd migrate`. Otherwise it runs in one transaction that workers starting at the
 * same moment take one after the other (an advisory lock on PostgreSQL, the write lock on SQLite),
 * and both engines apply DDL transactionally: a migration applies whole or not at all.
 */
export async function migrate(
  engine: Engine,
  names: TableNames,
  keyPrefix: string,
): Promise<MigrationResult> {
  try {
    const current = await readMeta(engine, names);
    if (current.version === SCHEMA_VERSION) {
      check(names, keyPrefix, current);
      return { from: current.version, to: current.version };
    }
  } catch (error) {
    if (error instanceof SchemaError) throw error;
    // No meta table yet, or the database is not there: the transaction below tells which.
  }
  return engine.transaction(async (tx) => {
    if (engine.dialect.migrationLock) {
      await tx.query(engine.dialect.migrationLock, { name: `${names.stem}:migrate` });
    }
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${names.meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    );
    const found = await readMeta(tx, names);
    check(names, keyPrefix, found);
    for (const migration of MIGRATIONS) {
      if (migration.version <= found.version) continue;
      for (const statement of migration.statements(names, engine.dialect)) {
        await tx.query(statement);
      }
    }
    const record = `INSERT INTO ${names.meta} (name, value) VALUES (:name, :value)
      ON CONFLICT (name) DO UPDATE SET value = excluded.value`;
    await tx.query(record, { name: 'schema_version', value: String(SCHEMA_VERSION) });
    await tx.query(record, { name: 'key_prefix', value: keyPrefix });
    return { from: found.version, to: SCHEMA_VERSION };
  });
}
