import type { RequestHandler } from 'express';
import type { Lifecycle } from '../src/lifecycle';
import type { Store } from '../src/store/types';

export interface HealthDeps {
  store: Store;
  /**
   * Extra fields for the body, e.g. the bot-protection mode. Synchronous on purpose: the route is
   * public and unlimited, so it may cost no work beyond the one store round trip of the probe.
   */
  describe?: () => Record<string, unknown>;
  /** While it drains, /health and /health/ready answer 503 without asking the store. */
  lifecycle?: Pick<Lifecycle, 'draining'>;
  /** The longest a readiness probe waits for the store (STORE_TIMEOUT_MS). */
  timeoutMs?: number;
}

interface Reachability {
  /** True when at least one of the store's servers answered. */
  ok: boolean;
  /** For a store on several servers: how many there are and how many did not answer. */
  servers?: { total: number; unreachable: number };
}

async function reach(store: Store, timeoutMs?: number): Promise<Reachability> {
  if (timeoutMs !== undefined) {
    // The stores enforce STORE_TIMEOUT_MS themselves; this bound only keeps a probe from hanging
    // on a store that does not (a custom one), since an orchestrator reads a hang as a failure.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Reachability>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false }), timeoutMs);
    });
    try {
      return await Promise.race([reach(store), late]);
    } finally {
      clearTimeout(timer);
    }
  }
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
export function createHealthHandler({
  store,
  describe,
  lifecycle,
  timeoutMs,
}: HealthDeps): RequestHandler {
  return async (_req, res) => {
    if (lifecycle?.draining) {
      drainingAnswer(res, store);
      return;
    }
    const { ok, servers } = await reach(store, timeoutMs);
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

function drainingAnswer(res: Parameters<RequestHandler>[1], store: Store): void {
  res
    .status(503)
    .set('Cache-Control', 'no-store')
    .json({ status: 'draining', store: { backend: store.backend } });
}

/**
 * GET /health/live: the process answers HTTP, nothing more. No store call, so an orchestrator
 * never restarts a healthy process because its store is down (restarting would not bring the store
 * back, and would drop every request in flight).
 */
export const liveHandler: RequestHandler = (_req, res) => {
  res.set('Cache-Control', 'no-store').json({ status: 'ok' });
};

/**
 * GET /health/ready: whether to send this process traffic. 503 while it drains, or when the store
 * does not answer a ping within its timeout; 200 otherwise, also when some servers of a store on
 * several are down (the rest of the keys are served, see createHealthHandler).
 */
export function createReadyHandler({ store, lifecycle, timeoutMs }: HealthDeps): RequestHandler {
  return async (_req, res) => {
    if (lifecycle?.draining) {
      drainingAnswer(res, store);
      return;
    }
    const { ok, servers } = await reach(store, timeoutMs);
    res
      .status(ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({
        status: !ok ? 'unavailable' : servers?.unreachable ? 'degraded' : 'ok',
        store: { backend: store.backend, ok, ...(servers ? { servers } : {}) },
      });
  };
}
