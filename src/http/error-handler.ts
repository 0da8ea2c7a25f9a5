import type { ErrorRequestHandler, RequestHandler } from 'express';
import { StoreUnavailableError, VerifydError } from '../errors';
import type { Logger } from '../logger';
import { requestSerializer } from './log-serializers';

/** body-parser reports its failures with a `type`; each maps to one public code. */
const BODY_ERRORS: Record<string, VerifydError> = {
  'entity.parse.failed': new VerifydError('invalid_json', 'The request body is not valid JSON.'),
  'entity.too.large': new VerifydError(
    'payload_too_large',
    'The request body is larger than 10 kB.',
  ),
  'charset.unsupported': new VerifydError('unsupported_media_type', 'Send the body as UTF-8 JSON.'),
  'encoding.unsupported': new VerifydError(
    'unsupported_media_type',
    'The content encoding is not supported.',
  ),
  'request.aborted': new VerifydError('invalid_request', 'The request was aborted.'),
  'request.size.invalid': new VerifydError(
    'invalid_request',
    'The request body size does not match its Content-Length.',
  ),
};

/**
 * A path parameter the router could not percent-decode (`/v2/Services/%`) names no resource: 404,
 * not a request that could not be read (the router marks it 400 like a body it cannot parse).
 */
export function undecodablePath(error: unknown): VerifydError | undefined {
  if (!(error instanceof URIError)) return undefined;
  return new VerifydError('not_found', 'The path is not valid percent-encoding.');
}

function toPublicError(error: unknown): VerifydError | undefined {
  if (error instanceof VerifydError) return error;
  const path = undecodablePath(error);
  if (path) return path;
  const type = (error as { type?: unknown } | null)?.type;
  if (typeof type === 'string' && BODY_ERRORS[type]) return BODY_ERRORS[type];
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new VerifydError('invalid_request', 'The request could not be read.');
  }
  return undefined;
}

/**
 * The single place where errors become HTTP answers: `{"error":{"code","message",...details}}`.
 * Unknown errors become a bare 500 whose body says nothing about internals.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const known = toPublicError(error);
    if (!known) {
      logger.error({ err: error, req: requestSerializer(req) }, 'unhandled error');
      res
        .status(500)
        .json({ error: { code: 'internal_error', message: 'Something went wrong on our side.' } });
      return;
    }
    if (known instanceof StoreUnavailableError) {
      logger.warn(
        { cause: (known.cause as Error | undefined)?.message, req: requestSerializer(req) },
        'store unavailable',
      );
    }
    const retryAfter = known.details.retryAfter;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    res
      .status(known.status)
      .json({ error: { code: known.code, message: known.message, ...known.details } });
  };
}

/** Unknown paths answer in the same error format as everything else. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new VerifydError('not_found', `No route for ${req.method} ${req.path}.`));
};
