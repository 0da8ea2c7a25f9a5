import type { RequestHandler } from 'express';

/** Methods and request headers a browser may use cross-origin: what the API's routes take. */
const ALLOWED_METHODS = 'GET, POST, DELETE';
const ALLOWED_HEADERS = 'Content-Type';
/** Headers a page may read from an answer: when to try again, and how much is left. */
const EXPOSED_HEADERS = 'Retry-After, RateLimit, RateLimit-Policy';
/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE = '600';

/**
 * CORS for the exact origins in CORS_ORIGINS, and none by default. Credentials are never allowed:
 * the API uses no cookies, and a page from an allowed origin must not be able to ride on a
 * session of the user's. A preflight from an allowed origin is answered here with 204, before the
 * per-client limit, so it costs no store call; any other origin gets no CORS headers, and the
 * browser keeps its page from reading the answer.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (allowed.size === 0) return next();
    // Caches must keep answers to different origins apart, whichever origin this one came from.
    res.vary('Origin');
    if (origin === undefined || !allowed.has(origin)) return next();
    res.set('Access-Control-Allow-Origin', origin);
    const preflight =
      req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      res.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
      return next();
    }
    res.vary('Access-Control-Request-Headers');
    res
      .status(204)
      .set({
        'Access-Control-Allow-Methods': ALLOWED_METHODS,
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': PREFLIGHT_MAX_AGE,
        'Content-Length': '0',
      })
      .end();
  };
}
