import { type Request, Router } from 'express';
import { VerifydError } from '../src/errors';
import { isFromThisMachine } from '../src/http/loopback';
import type { Outbox } from '../src/providers/mock';
import type { OutboxMessage } from '../src/providers/types';
import { addDevInboxPage } from './dev-inbox';

export interface DevRoutesOptions {
  /** DEV_ROUTES_PUBLIC: serve every client, not only clients on this machine. */
  public?: boolean;
}

/** The longest GET /dev/outbox/latest may wait: long enough for any send, short of proxy time-outs. */
export const MAX_WAIT_SECONDS = 30;

/** A comment line that keeps an idle event stream open through proxies that drop silent ones. */
const HEARTBEAT_MS = 15_000;

/**
 * What the mock providers sent, so end-to-end tests of apps can read their codes and links, and
 * the dev inbox page (GET /dev) that shows them to a person. Mounted only with a mock provider
 * outside production (see createVerificationRouter). The outbox holds live codes and links, so a
 * development instance that listens beyond loopback would hand them to anybody who can reach it:
 * by default only clients on this machine are served, and any other client gets the 404 of a route
 * that does not exist.
 */
export function createDevOutboxRouter(outbox: Outbox, options: DevRoutesOptions = {}): Router {
  const router = Router();
  if (!options.public) {
    router.use('/dev', (req, _res, next) => next(isFromThisMachine(req) ? undefined : 'router'));
  }
  addDevInboxPage(router);

  router.get('/dev/outbox', (req, res) => {
    onlyParameters(req, ['to']);
    const to = recipient(req);
    res
      .set('Cache-Control', 'no-store')
      .json({ messages: outbox.list(to === undefined ? {} : { to }).map(view) });
  });

  // A long poll: the newest message to `to` (newer than `after`), waiting up to `wait` seconds
  // for one to arrive, so a test waits exactly as long as the send takes instead of sleeping.
  router.get('/dev/outbox/latest', async (req, res) => {
    onlyParameters(req, ['to', 'after', 'wait']);
    const to = recipient(req);
    const after = queryText(req, 'after');
    const waitMs = waitSeconds(req) * 1000;
    const left = new AbortController();
    const onClose = () => left.abort();
    res.on('close', onClose);
    const filter = {
      ...(to === undefined ? {} : { to }),
      ...(after === undefined ? {} : { after }),
    };
    const message = await outbox.waitForLatest(filter, waitMs, left.signal);
    res.off('close', onClose);
    if (left.signal.aborted) return;
    if (!message) {
      const whom = to === undefined ? 'anybody' : to;
      throw new VerifydError(
        'not_found',
        `No message to ${whom}${after === undefined ? '' : ' newer than the one named by after'}${
          waitMs > 0 ? ` arrived within ${waitMs / 1000} s` : ' yet'
        }.`,
      );
    }
    res.set('Cache-Control', 'no-store').json({ message: view(message) });
  });

  // Server-sent events for the inbox page: first the whole outbox, then each change as it happens.
  router.get('/dev/outbox/events', (_req, res) => {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // Tells a buffering reverse proxy (nginx) to pass each event on at once.
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    // A reconnecting page gets a fresh snapshot, so nothing sent while it was away is missed.
    res.write('retry: 2000\n\n');
    send('snapshot', { messages: outbox.list().map(view) });
    if (outbox.closed) {
      res.end();
      return;
    }
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
    };
    const unsubscribe = outbox.subscribe((event) => {
      if (event.type === 'added') send('added', view(event.message));
      else if (event.type === 'cleared') send('cleared', { to: event.to ?? null });
      else {
        stop();
        res.end();
      }
    });
    res.on('close', stop);
  });

  router.delete('/dev/outbox', (req, res) => {
    onlyParameters(req, ['to']);
    const to = recipient(req);
    outbox.clear(to === undefined ? {} : { to });
    res.status(204).end();
  });
  return router;
}

/** A message as the API shows it: `code` and `link` always present, null when it has none. */
function view(message: OutboxMessage): Record<string, unknown> {
  const { code, link, ...rest } = message;
  return { ...rest, code: code ?? null, link: link ?? null };
}

/**
 * Refuses a query parameter the route does not know. A misspelt filter (`To`, or `to[]`, which
 * Express's query parser files under its own name) would otherwise be ignored, and an unfiltered
 * answer is the wrong one: another recipient's code, or a DELETE that empties the whole outbox.
 */
function onlyParameters(req: Request, known: readonly string[]): void {
  const unknown = Object.keys(req.query).find((name) => !known.includes(name));
  if (unknown !== undefined) {
    throw new VerifydError(
      'invalid_request',
      `Invalid request: unknown query parameter ${JSON.stringify(unknown.slice(0, 40))}; this route takes ${known.join(', ')}.`,
      { field: unknown.slice(0, 40) },
    );
  }
}

/** A single text value of the query string; a repeated or nested one is a client error. */
function queryText(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 320) {
    throw new VerifydError('invalid_request', `Invalid request: ${name} must be one short text.`, {
      field: name,
    });
  }
  return value;
}

function recipient(req: Request): string | undefined {
  const to = queryText(req, 'to');
  return to === undefined ? undefined : normalizeTo(to);
}

function waitSeconds(req: Request): number {
  const wait = queryText(req, 'wait');
  if (wait === undefined) return 0;
  const seconds = /^\d{1,3}(\.\d{1,3})?$/.test(wait) ? Number(wait) : Number.NaN;
  if (!(seconds <= MAX_WAIT_SECONDS)) {
    throw new VerifydError(
      'invalid_request',
      `Invalid request: wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`,
      { field: 'wait' },
    );
  }
  return seconds;
}

/** "+1 555…" in a query string arrives as " 1 555…"; accept it the way people type it. */
function normalizeTo(value: string): string {
  const trimmed = value.trim();
  if (/^\d[\d\s().-]*$/.test(trimmed) && value.startsWith(' '))
    return `+${trimmed.replace(/[\s().-]/g, '')}`;
  if (trimmed.startsWith('+')) return `+${trimmed.slice(1).replace(/[\s().-]/g, '')}`;
  return trimmed.includes('@') ? trimmed.toLowerCase() : trimmed;
}
