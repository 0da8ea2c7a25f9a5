import { Router } from 'express';
import { isFromThisMachine } from '../src/http/loopback';
import type { Outbox } from '../src/providers/mock';

export interface DevRoutesOptions {
  /** DEV_ROUTES_PUBLIC: serve every client, not only clients on this machine. */
  public?: boolean;
}

/**
 * What the mock providers sent, so end-to-end tests of apps can read their codes and links.
 * Mounted only with a mock provider outside production (see createVerificationRouter). The outbox
 * holds live codes and links, so a development instance that listens beyond loopback would hand
 * them to anybody who can reach it: by default only clients on this machine are served, and any
 * other client gets the 404 of a route that does not exist.
 */
export function createDevOutboxRouter(outbox: Outbox, options: DevRoutesOptions = {}): Router {
  const router = Router();
  if (!options.public) {
    router.use('/dev', (req, _res, next) => next(isFromThisMachine(req) ? undefined : 'router'));
  }
  router.get('/dev/outbox', (req, res) => {
    const to = typeof req.query.to === 'string' ? req.query.to : undefined;
    res
      .set('Cache-Control', 'no-store')
      .json({ messages: outbox.list(to === undefined ? {} : { to: normalizeTo(to) }) });
  });
  router.delete('/dev/outbox', (_req, res) => {
    outbox.clear();
    res.status(204).end();
  });
  return router;
}

/** "+1 555…" in a query string arrives as " 1 555…"; accept it the way people type it. */
function normalizeTo(value: string): string {
  const trimmed = value.trim();
  if (/^\d[\d\s().-]*$/.test(trimmed) && value.startsWith(' '))
    return `+${trimmed.replace(/[\s().-]/g, '')}`;
  if (trimmed.startsWith('+')) return `+${trimmed.slice(1).replace(/[\s().-]/g, '')}`;
  return trimmed.includes('@') ? trimmed.toLowerCase() : trimmed;
}
