import type { IncomingMessage } from 'node:http';

/**
 * Request lines carry the path but never the query string: GET /verify-email-token?token=… would
 * otherwise write a live token into the log. Headers are left out for the same reason.
 */
export function requestSerializer(req: IncomingMessage & { originalUrl?: string }) {
  const url = req.originalUrl ?? req.url ?? '';
  return {
    method: req.method,
    path: url.split('?')[0],
    remoteAddress: req.socket?.remoteAddress,
  };
}
