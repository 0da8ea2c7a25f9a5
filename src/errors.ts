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
  unauthorized: 401,
  challenge_required: 403,
  challenge_failed: 403,
  country_not_allowed: 403,
  number_type_not_allowed: 403,
  prefix_blocked: 403,
  destination_suspended: 403,
  recipient_opted_out: 403,
  user_mismatch: 403,
  not_found: 404,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  expectation_failed: 417,
  rate_limited: 429,
  country_limit_reached: 429,
  too_many_attempts: 429,
  headers_too_large: 431,
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

/** The send limits, by the names metrics count their refusals under (see refusedBy). */
export type SendLimitName =
  | 'cooldown'
  | 'recipient'
  | 'resend'
  | 'client_recipients'
  | 'sms_budget';

/** Base class: anything thrown as a VerifydError is reported to the client as-is. */
export class VerifydError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  /** Which send limit refused, for metrics; never part of the answer. */
  limit?: SendLimitName;

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

/** Marks `error` as the refusal of send limit `limit`, so metrics can tell the limits apart. */
export function refusedBy<E extends VerifydError>(limit: SendLimitName, error: E): E {
  error.limit = limit;
  return error;
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

/**
 * Whether a failed send could still reach the recipient. `refused`: the provider said it did not
 * take the message (a 4xx, a 2xx reporting the message failed, a connection that never opened).
 * `unknown`: the request may have been taken (no answer in time, the connection lost after the
 * request was written, a 5xx), so the message may still arrive.
 */
export type DeliveryOutcome = 'refused' | 'unknown';

/** The answers a provider failure can take; src/providers/failures.ts decides which. */
export type DeliveryErrorCode = Extract<
  ErrorCode,
  | 'invalid_phone'
  | 'recipient_opted_out'
  | 'country_not_allowed'
  | 'provider_misconfigured'
  | 'provider_rate_limited'
  | 'delivery_failed'
>;

/**
 * What the log says about a provider failure, for an operator. Built from fixed texts and the
 * provider's numeric codes only: never a credential, the recipient, the message text, or the
 * provider's own free text (which quotes the number).
 */
export interface ProviderFailure {
  /** e.g. "twilio", "sendgrid", "mock". */
  provider: string;
  /** The HTTP status the provider answered, when it answered. */
  httpStatus?: number;
  /** The provider's own error code, e.g. Twilio's 21211. */
  providerCode?: number;
  /** The transport's error code (e.g. ECONNRESET) when no answer came. */
  netError?: string;
  /** A short fixed reason. */
  reason: string;
}

/** What a client reads for each answer; `unknown` delivery failures say the message may arrive. */
const DELIVERY_MESSAGES: Record<
  DeliveryErrorCode | 'delivery_unknown',
  (channel: 'sms' | 'email') => string
> = {
  invalid_phone: () => 'The SMS provider cannot deliver to this number; check it or use another.',
  recipient_opted_out: () =>
    'The recipient opted out of messages from this sender (e.g. replied STOP) and must opt back in.',
  country_not_allowed: () => "The SMS provider may not send to this number's country.",
  provider_misconfigured: (channel) =>
    `The ${channel} provider refused this service's credentials or account; the operator must fix its settings.`,
  provider_rate_limited: (channel) =>
    `The ${channel} provider is throttling this service; try again after Retry-After.`,
  delivery_failed: (channel) => `The ${channel} provider could not deliver the message; try again.`,
  delivery_unknown: (channel) =>
    `The ${channel} provider did not confirm the message; it may still arrive, so the ${
      channel === 'sms' ? 'code' : 'link'
    } stays valid and the send counts against the limits.`,
};

export interface DeliveryFailure {
  outcome: DeliveryOutcome;
  failure: ProviderFailure;
  /** The public answer; delivery_failed when the failure has no answer of its own. */
  code?: DeliveryErrorCode;
  /** Only with provider_rate_limited: seconds until the provider takes messages again. */
  retryAfterSeconds?: number;
}

/**
 * An SMS or email provider did not take the message, or did not say whether it did. `outcome` is
 * what the caller acts on (see SmsProvider.send); `failure` is what it logs.
 */
export class DeliveryFailedError extends VerifydError {
  readonly channel: 'sms' | 'email';
  readonly outcome: DeliveryOutcome;
  readonly failure: ProviderFailure;

  constructor(channel: 'sms' | 'email', init: DeliveryFailure) {
    const code = init.code ?? 'delivery_failed';
    const unknown = code === 'delivery_failed' && init.outcome === 'unknown';
    const message = DELIVERY_MESSAGES[unknown ? 'delivery_unknown' : code](channel);
    const details: ErrorDetails = {};
    // Only delivery_failed leaves the outcome open; the client can then tell the person to wait.
    if (code === 'delivery_failed') details.outcome = init.outcome;
    if (init.retryAfterSeconds !== undefined) {
      details.retryAfter = Math.max(1, Math.ceil(init.retryAfterSeconds));
    }
    super(code, message, details);
    this.channel = channel;
    this.outcome = init.outcome;
    this.failure = { ...init.failure };
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
