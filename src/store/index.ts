import type { Config } from '../config';
import type { Logger } from '../logger';
import { MemcachedStore } from './memcached';
import { MemoryStore } from './memory';
import { RedisStore } from './redis';
import { createSqlStore } from './sql';
import type { Store } from './types';

export * from './types';

export interface CreateStoreOptions {
  logger?: Logger;
  /** Clock for the memory and SQL stores, so tests can move time; the others use real time. */
  now?: () => number;
  /**
   * Whether the store runs its own housekeeping (the memory sweep, the SQL cleanup job) every
   * CLEANUP_INTERVAL_SECONDS. Default true; one-off tools such as the CLI pass false.
   */
  housekeeping?: boolean;
}

/**
 * Builds the store named by STORE. It resolves even while the backend is down: the networked
 * stores keep reconnecting on their own and reject calls with StoreUnavailableError meanwhile, so
 * the server can start and report 503 from /health instead of crashing.
 */
export async function createStore(
  config: Config,
  options: CreateStoreOptions = {},
): Promise<Store> {
  const { logger, housekeeping = true } = options;
  switch (config.STORE) {
    case 'memory':
      return new MemoryStore({
        keyPrefix: config.KEY_PREFIX,
        now: options.now,
        sweepIntervalSeconds: housekeeping ? config.CLEANUP_INTERVAL_SECONDS : 0,
        logger,
      });
    case 'redis': {
      const store = new RedisStore({
        url: config.REDIS_URL,
        clusterNodes: config.REDIS_CLUSTER_NODES?.split(','),
        keyPrefix: config.KEY_PREFIX,
        timeoutMs: config.STORE_TIMEOUT_MS,
        logger,
      });
      // A healthy server gets a moment to finish the handshake, so the first requests do not fail.
      if (!(await store.waitUntilReady(config.STORE_TIMEOUT_MS))) {
        logger?.warn(
          config.REDIS_CLUSTER_NODES
            ? { clusterNodes: config.REDIS_CLUSTER_NODES }
            : { url: redactUrl(config.REDIS_URL) },
          'redis not reachable yet; starting anyway',
        );
      }
      return store;
    }
    case 'memcached': {
      return new MemcachedStore({
        servers: config.MEMCACHED_SERVERS,
        keyPrefix: config.KEY_PREFIX,
        timeoutMs: config.STORE_TIMEOUT_MS,
        logger,
      });
    }
    case 'postgres':
    case 'sqlite':
      return createSqlStore(config, options);
  }
}

/** REDIS_URL may carry a password; logs get the host only. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '[unparseable]';
  }
}
