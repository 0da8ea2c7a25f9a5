import type { Logger } from '../logger';
import type { Store } from './types';

/**
 * Periodically sweeps expired entries from backends that only expire lazily (memory). Redis and
 * Memcached expire natively, so nothing is scheduled for them. The timer is unref'd so it never
 * keeps the process alive, and a run that is still going is not overlapped by the next one.
 * Returns a function that stops the sweeping.
 */
export function startCleanup(store: Store, intervalSeconds: number, logger: Logger): () => void {
  if (store.backend !== 'memory') return () => undefined;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    store
      .cleanup()
      .then(
        (removed) => logger.info({ removed }, 'store cleanup'),
        (err: unknown) => logger.error({ err }, 'store cleanup failed'),
      )
      .finally(() => {
        running = false;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
