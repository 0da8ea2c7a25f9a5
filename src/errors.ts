/**
 * Every failure the API can report, with its stable code and HTTP status.
 * Codes are part of the public contract: clients branch on them, so never rename one.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  invalid_phone: 400,
  invalid_email: 400,
  invalid_code: 400,
  code_expired: 400,
  invalid_token: 400,
  token_expired: 400,
  token_used: 400,
  challenge_required: 403,
  challenge_failed: 403,
  country_not_allowed: 403,
  recipient_opted_out: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  too_many_attempts: 429,
  internal_error: 500,
  delivery_failed: 502,
  store_unavailable: 503,
  provider_misconfigured: 503,
  provider_rate_limited: 503,
  sms_budget_exhausted: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Extra machine-readable fields that travel inside `error` next to code and message. */
export type ErrorDetails = Record<string, string | number | boolean>;

/** Base class: anything thrown as a VerifydError is reported to the client as-is. */
export class VerifydError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(
    code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
    options?: ErrorOptions,
  ) {
    // A 4xx is an expected answer, not a fault: nobody reads its stack, and capturing one costs
    // more than the rest of building the response.
    const stackTraceLimit = Error.stackTraceLimit;
    if (ERROR_STATUS[code] < 500) Error.stackTraceLimit = 0;
    try {
      super(message, options);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** The client must wait `retryAfterSeconds` before the same request can succeed. */
export class RateLimitError extends VerifydError {
  readonly retryAfterSeconds: number;

  constructor(
    code: 'rate_limited' | 'too_many_attempts',
    message: string,
    retryAfterSeconds: number,
    details: ErrorDetails = {},
  ) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super(code, message, { ...details, retryAfter: seconds });
    this.retryAfterSeconds = seconds;
  }
}

/**
 * The storage backend could not be reached or did not answer in time.
 * Callers must treat this as "unknown", never as "not found": the service fails closed.
 */
export class StoreUnavailableError extends VerifydError {
  constructor(backend: string, cause?: unknown) {
    super(
      'store_unavailable',
      `The ${backend} store is unavailable; try again shortly.`,
      {},
      {
        cause,
      },
    );
  }
}

/** An SMS or email provider refused the message, failed, or timed out. */
export class DeliveryFailedError extends VerifydError {
  constructor(channel: 'sms' | 'email', cause?: unknown) {
    super(
      'delivery_failed',
      `The ${channel} provider could not deliver the message; try again.`,
      {},
      {
        cause,
      },
    );
  }
}

/**
 * Start-up configuration is invalid. `problems` holds every problem found, one line each naming
 * the variable, so an operator fixes them all after one start instead of one per restart; the
 * message is those lines joined by newlines.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : [...problems];
    super(list.join('\n'));
    this.name = 'ConfigError';
    this.problems = list;
  }
}
