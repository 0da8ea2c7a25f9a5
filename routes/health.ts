import type { RequestHandler } from 'express';
import type { Store } from '../src/store/types';

export interface HealthDeps {
  store: Store;
  /**
   * Extra fields for the body, e.g. the bot-protection mode. Synchronous on purpose: the route is
   * public and unlimited, so it may cost no work beyond the one store round trip of the probe.
   */
  describe?: () => Record<string, unknown>;
}

interface Reachability {
  /** True when at least one of the store's servers answered. */
  ok: boolean;
  /** For a store on several servers: how many there are and how many did not answer. */
  servers?: { total: number; unreachable: number };
}

async function reach(store: Store): Promise<Reachability> {
  if (store.pingEach) {
    const states = await store.pingEach();
    const unreachable = states.filter((state) => !state.ok).length;
    if (states.length < 2) return { ok: unreachable === 0 };
    return { ok: unreachable < states.length, servers: { total: states.length, unreachable } };
  }
  try {
    await store.ping();
    return { ok: true };
  } catch {
    return { ok: false };
  }
}

/**
 * 200 when the store answers a round trip, 503 with the same shape when it does not. One probe
 * costs that round trip (one to each server of a store that has several) and nothing else.
 * A store on several servers (Memcached) with some but not all of them down answers 200 with
 * status "degraded": requests whose keys live on the live servers still work, and a 503 would
 * make a load balancer take every instance out of service, turning a partial outage into a total
 * one. Which servers are down is logged by the store, not shown here, since this route is public.
 */
export function createHealthHandler({ store, describe }: HealthDeps): RequestHandler {
  return async (_req, res) => {
    const { ok, servers } = await reach(store);
    const status = !ok ? 'unavailable' : servers?.unreachable ? 'degraded' : 'ok';
    const extra = ok && describe ? describe() : {};
    res
      .status(ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({
        status,
        store: { backend: store.backend, ok, ...(servers ? { servers } : {}) },
        ...extra,
      });
  };
}
