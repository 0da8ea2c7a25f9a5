import type { Config } from '../config';
import type { Logger } from '../logger';
import { MemcachedStore } from './memcached';
import { MemoryStore } from './memory';
import { RedisStore } from './redis';
import type { Store } from './types';

export * from './types';

export interface CreateStoreOptions {
  logger?: Logger;
  /** Clock for the memory store, so tests can move time; the networked stores use real time. */
  now?: () => number;
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
  const { logger } = options;
  switch (config.STORE) {
    case 'memory':
      return new MemoryStore({
        keyPrefix: config.KEY_PREFIX,
        now: options.now,
        sweepIntervalSeconds: config.CLEANUP_INTERVAL_SECONDS,
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
