import type { Config } from '../../config';
import { StoreUnavailableError } from '../../errors';
import type { Logger } from '../../logger';
import type { Engine } from './engine';
import { PostgresEngine } from './postgres';
import { SqliteEngine } from './sqlite';
import { SqlStore } from './store';

export { SCHEMA_VERSION, SchemaError, tableNames } from './schema';
export { loadSqliteDriver, SqliteDriverError } from './sqlite';
export { type CleanupRun, SqlStore } from './store';

export interface CreateSqlStoreOptions {
  logger?: Logger;
  now?: () => number;
  /** Run the cleanup job every CLEANUP_INTERVAL_SECONDS; false for one-off tools (the CLI). */
  housekeeping?: boolean;
}

/** The engine STORE names, opened with the configured settings (nothing is sent yet on PostgreSQL). */
export function openEngine(config: Config, logger?: Logger): Engine {
  if (config.STORE === 'postgres') {
    if (!config.DATABASE_URL) throw new Error('STORE=postgres needs DATABASE_URL');
    return new PostgresEngine({
      url: config.DATABASE_URL,
      poolSize: config.DATABASE_POOL_SIZE,
      timeoutMs: config.STORE_TIMEOUT_MS,
      logger,
    });
  }
  return new SqliteEngine({ path: config.SQLITE_PATH, timeoutMs: config.STORE_TIMEOUT_MS, logger });
}

/**
 * STORE=postgres or sqlite, with its tables created or migrated before it resolves. A database
 * that cannot be reached yet is not fatal: the store starts, answers StoreUnavailableError (503)
 * and migrates on the first call once the database is back, as the other networked stores
 * reconnect by themselves. A database that answers but refuses (wrong password, no such database,
 * missing rights, tables of another KEY_PREFIX or a newer verifyd) stops the start with its reason.
 */
export async function createSqlStore(
  config: Config,
  options: CreateSqlStoreOptions = {},
): Promise<SqlStore> {
  const { logger, housekeeping = true } = options;
  const engine = openEngine(config, logger);
  const store = new SqlStore(engine, {
    keyPrefix: config.KEY_PREFIX,
    logger,
    ...(options.now ? { now: options.now } : {}),
    cleanupIntervalSeconds: housekeeping ? config.CLEANUP_INTERVAL_SECONDS : 0,
  });
  try {
    await store.migrate();
  } catch (error) {
    if (error instanceof StoreUnavailableError && engine.classify(error) === 'unavailable') {
      logger?.warn(
        { err: error.cause, table: store.names.plain.entries },
        `${config.STORE} not reachable yet; starting anyway, the tables are set up once it answers`,
      );
      return store;
    }
    await store.close().catch(() => undefined);
    const cause = error instanceof StoreUnavailableError ? error.cause : error;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`STORE=${config.STORE} (${where(config)}): ${reason}`, { cause });
  }
  return store;
}

/** Where the store is, for a start-up error: the database URL without its password, or the file. */
function where(config: Config): string {
  if (config.STORE === 'sqlite') return `SQLITE_PATH ${config.SQLITE_PATH}`;
  try {
    const url = new URL(config.DATABASE_URL ?? '');
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}
