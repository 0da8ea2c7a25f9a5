import type { RequestHandler } from 'express';
import type { Store } from '../src/store/types';

export interface HealthDeps {
  store: Store;
  /** Extra fields for the body, e.g. the bot-protection mode and key counts. */
  describe?: () => Promise<Record<string, unknown>>;
}

/** 200 when the store answers a round trip, 503 with the same shape when it does not. */
export function createHealthHandler({ store, describe }: HealthDeps): RequestHandler {
  return async (_req, res) => {
    let ok = true;
    try {
      await store.ping();
    } catch {
      ok = false;
    }
    const extra = ok && describe ? await describe().catch(() => ({})) : {};
    res
      .status(ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({ status: ok ? 'ok' : 'unavailable', store: { backend: store.backend, ok }, ...extra });
  };
}
