import express, { type RequestHandler } from 'express';
import { VerifydError } from '../errors';

/** Bodies are small; anything larger is refused with 413 before it is parsed. */
export const BODY_LIMIT = '10kb';

// Not strict: a body of `null`, `"x"` or `1` is valid JSON, so it gets the route's clear
// invalid_request ("must be a JSON object") rather than a misleading invalid_json.
// Annotated, so the emitted .d.ts names express's own type rather than a path into whichever
// copy of @types/connect the build happened to resolve (a non-hoisted or linked node_modules
// otherwise fails the declaration build).
export const parseJson: RequestHandler = express.json({ limit: BODY_LIMIT, strict: false });
export const parseForm: RequestHandler = express.urlencoded({
  limit: BODY_LIMIT,
  extended: false,
  parameterLimit: 20,
});

/**
 * The one body-parsing layer in front of every route of the router: a POST body must be JSON, or
 * a form where the route at `formPaths` takes one (the confirm page's button posts a plain HTML
 * form). One shared layer means a route added later cannot be left without a parser, which is how
 * POST /challenge/verify once answered invalid_request to every correct payload.
 */
export function parseBodies(formPaths: readonly string[] = []): RequestHandler[] {
  const forms = new Set(formPaths);
  const jsonOnly = requireContentType();
  const jsonOrForm = requireContentType('application/x-www-form-urlencoded');
  return [
    (req, res, next) => {
      if (req.method !== 'POST') return next();
      (forms.has(req.path) ? jsonOrForm : jsonOnly)(req, res, next);
    },
    parseJson,
    parseForm,
  ];
}

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
