import type { ErrorRequestHandler, RequestHandler } from 'express';
import { SendLimitError, type SendLimitKind } from '../../services/send-limits';
import { TwilioApiError } from '../../services/twilio-verify';
import { type ErrorCode, StoreUnavailableError, VerifydError } from '../errors';
import type { Logger } from '../logger';
import { undecodablePath } from './error-handler';
import { requestSerializer } from './log-serializers';

/** Twilio's error body. Never `type` and `title` together: the SDK reads those as another class. */
export interface TwilioErrorBody {
  code: number;
  message: string;
  more_info: string;
  status: number;
}

/**
 * verifyd's native error codes as the Twilio-compatible API answers them: Twilio's code and the
 * HTTP status. The one table; the README lists it. A send refused by a limit is told apart by
 * which limit refused it (SEND_LIMITS below).
 */
export const TWILIO_ERRORS: Record<ErrorCode, { code: number; status: number }> = {
  invalid_request: { code: 60200, status: 400 },
  invalid_json: { code: 60200, status: 400 },
  invalid_phone: { code: 60200, status: 400 },
  invalid_email: { code: 60200, status: 400 },
  // Answered by Node's HTTP layer (src/http/protocol-errors.ts) before any route, so always in the
  // native shape; listed so that the table stays whole.
  request_timeout: { code: 60200, status: 408 },
  expectation_failed: { code: 60200, status: 417 },
  headers_too_large: { code: 60200, status: 431 },
  // Answered 200 with status pending by VerificationCheck; never an error there.
  invalid_code: { code: 60200, status: 400 },
  code_expired: { code: 20404, status: 404 },
  invalid_token: { code: 60200, status: 400 },
  token_expired: { code: 20404, status: 404 },
  token_used: { code: 20404, status: 404 },
  challenge_required: { code: 20003, status: 403 },
  challenge_failed: { code: 20003, status: 403 },
  unauthorized: { code: 20003, status: 401 },
  country_not_allowed: { code: 60605, status: 403 },
  // The SMS pumping defences: Twilio's Fraud Guard answers a blocked delivery with 60410, and a
  // number of a type that cannot receive SMS with 60205.
  number_type_not_allowed: { code: 60205, status: 400 },
  prefix_blocked: { code: 60410, status: 403 },
  destination_suspended: { code: 60410, status: 403 },
  country_limit_reached: { code: 60410, status: 429 },
  recipient_opted_out: { code: 60410, status: 403 },
  user_mismatch: { code: 20404, status: 404 },
  not_found: { code: 20404, status: 404 },
  payload_too_large: { code: 60200, status: 413 },
  unsupported_media_type: { code: 60200, status: 415 },
  rate_limited: { code: 20429, status: 429 },
  too_many_attempts: { code: 60202, status: 429 },
  internal_error: { code: 20500, status: 500 },
  delivery_failed: { code: 60200, status: 502 },
  store_unavailable: { code: 20503, status: 503 },
  provider_misconfigured: { code: 20503, status: 503 },
  provider_rate_limited: { code: 20429, status: 429 },
  sms_budget_exhausted: { code: 60203, status: 429 },
};

/** rate_limited, by the limit that refused: Twilio has a code for each of these. */
export const SEND_LIMITS: Record<SendLimitKind, number> = {
  // Twilio's "too many concurrent requests for this number": a send within the cooldown.
  cooldown: 60212,
  // "Max send attempts reached".
  resend: 60203,
  send: 60203,
  client: 20429,
};

export function twilioBody(code: number, status: number, message: string): TwilioErrorBody {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** Native errors the router and the body parser raise, as the main error handler reads them. */
function fromParser(error: unknown): VerifydError | undefined {
  const path = undecodablePath(error);
  if (path) return path;
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    return new VerifydError('payload_too_large', 'The request body is larger than 10 kB.');
  }
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new VerifydError('invalid_request', 'The request body could not be read.');
  }
  return undefined;
}

/** The Twilio-compatible API's error handler: every error in Twilio's shape. */
export function twilioErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof TwilioApiError) {
      res.status(error.status).json(twilioBody(error.twilioCode, error.status, error.message));
      return;
    }
    const known = error instanceof VerifydError ? error : fromParser(error);
    if (!known) {
      logger.error({ err: error, req: requestSerializer(req) }, 'unhandled error');
      res.status(500).json(twilioBody(20500, 500, 'Internal server error'));
      return;
    }
    if (known instanceof StoreUnavailableError) {
      logger.warn(
        { cause: (known.cause as Error | undefined)?.message, req: requestSerializer(req) },
        'store unavailable',
      );
    }
    const mapped = TWILIO_ERRORS[known.code];
    const code = known instanceof SendLimitError ? SEND_LIMITS[known.sendLimit] : mapped.code;
    const retryAfter = known.details.retryAfter;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    // Twilio names the parameter in 60200's message; the native field says which it was.
    const field =
      known.code === 'invalid_phone' || known.code === 'invalid_email' ? 'To' : known.details.field;
    const message =
      code === 60200 && typeof field === 'string'
        ? `Invalid parameter: ${parameterName(field)}: ${known.message}`
        : known.message;
    res.status(mapped.status).json(twilioBody(code, mapped.status, message));
  };
}

/** The Twilio parameter behind a native field name. */
function parameterName(field: string): string {
  const names: Record<string, string> = {
    code: 'Code',
    phone: 'To',
    email: 'To',
    verificationId: 'VerificationSid',
  };
  return names[field] ?? field;
}

/** Unknown paths under /v2 answer 20404, as Twilio does. */
export const twilioNotFound: RequestHandler = (req, res) => {
  res.status(404).json(twilioBody(20404, 404, `The requested resource ${req.path} was not found`));
};
