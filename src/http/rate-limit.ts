import type { RequestHandler } from 'express';
import { type RateLimitInfo, type Store as RateLimitStore, rateLimit } from 'express-rate-limit';
import { RateLimitError } from '../errors';
import { keys } from '../store/keys';
import type { Store } from '../store/types';
import { clientOf } from './client-key';

/**
 * Adapts the service's store to express-rate-limit, so every worker sharing Redis or Memcached
 * shares the per-client counts, and a store outage rejects requests instead of waving them through.
 */
export class SharedRateLimitStore implements RateLimitStore {
  readonly localKeys = false;
  readonly prefix = 'rl:ip:';
  private windowSeconds = 60;

  constructor(private readonly store: Store) {}

  init(options: { windowMs: number }): void {
    this.windowSeconds = Math.max(1, Math.ceil(options.windowMs / 1000));
  }

  private key(key: string): string {
    return keys.requests(key);
  }

  async increment(key: string) {
    const { count, resetMs } = await this.store.increment(this.key(key), this.windowSeconds);
    return { totalHits: count, resetTime: new Date(Date.now() + resetMs) };
  }

  async decrement(key: string): Promise<void> {
    await this.store.decrement(this.key(key));
  }

  async resetKey(key: string): Promise<void> {
    await this.store.delete(this.key(key));
  }
}

export interface IpRateLimitOptions {
  store: Store;
  windowSeconds: number;
  max: number;
}

export function ipRateLimit({ store, windowSeconds, max }: IpRateLimitOptions): RequestHandler {
  return rateLimit({
    windowMs: windowSeconds * 1000,
    limit: max,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new SharedRateLimitStore(store),
    // Fail closed: a store error reaches the error handler as store_unavailable.
    passOnStoreError: false,
    // The client's network, as for every other per-client limit (see clientKey).
    keyGenerator: (req) => clientOf(req),
    handler: (req, _res, next) => {
      const info = (req as typeof req & { rateLimit?: RateLimitInfo }).rateLimit;
      const reset = info?.resetTime?.getTime() ?? Date.now() + windowSeconds * 1000;
      next(
        new RateLimitError(
          'rate_limited',
          'Too many requests from this address; slow down.',
          (reset - Date.now()) / 1000,
        ),
      );
    },
  });
}
