import { Router } from 'express';
import type { Outbox } from '../src/providers/mock';

/**
 * What the mock providers sent, so end-to-end tests of apps can read their codes and links.
 * Mounted only with a mock provider outside production (see createVerificationRouter).
 */
export function createDevOutboxRouter(outbox: Outbox): Router {
  const router = Router();
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
