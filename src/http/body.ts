import express, { type RequestHandler } from 'express';
import { VerifydError } from '../errors';

/** Bodies are small; anything larger is refused with 413 before it is parsed. */
export const BODY_LIMIT = '10kb';

export const parseJson = express.json({ limit: BODY_LIMIT, strict: true });
export const parseForm = express.urlencoded({
  limit: BODY_LIMIT,
  extended: false,
  parameterLimit: 20,
});

/** POST bodies must be JSON (or one of `alsoAccept`), so a form or text body is refused with 415. */
export function requireContentType(...alsoAccept: string[]): RequestHandler {
  const accepted = ['application/json', ...alsoAccept];
  return (req, _res, next) => {
    // The header almost every client sends is settled without parsing it; type-is decides the rest.
    if (req.headers['content-type'] === 'application/json') return next();
    if (req.method !== 'POST' || req.is(accepted)) return next();
    next(new VerifydError('unsupported_media_type', 'Send the request body as application/json.'));
  };
}
