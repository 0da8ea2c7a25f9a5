import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Request lines carry the path but never the query string: GET /verify-email-token?token=… would
 * otherwise write a live token into the log. Headers are left out for the same reason.
 */
export function requestSerializer(req: IncomingMessage & { id?: unknown; raw?: IncomingMessage }) {
  const raw = (req.raw ?? req) as IncomingMessage & { originalUrl?: string };
  const url = raw.originalUrl ?? raw.url ?? '';
  return {
    id: req.id,
    method: raw.method,
    path: url.split('?')[0],
    remoteAddress: raw.socket?.remoteAddress,
  };
}

/** The status is what a request line needs; the response headers are the same on every line. */
export function responseSerializer(res: ServerResponse) {
  return { statusCode: res.statusCode };
}
