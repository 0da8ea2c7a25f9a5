import type { DeliveryErrorCode, DeliveryOutcome } from '../errors';

/** One provider error a client or operator can act on, and the answer verifyd gives for it. */
export interface ProviderErrorRow {
  provider: 'twilio' | 'sendgrid';
  /** The provider's own error code (Twilio's numeric codes)... */
  providerCode?: number;
  /** ...or, where the provider has none, the HTTP status. */
  httpStatus?: number;
  answer: DeliveryErrorCode;
  /** What the provider means, in a few words: logged, and shown in the README's table. */
  reason: string;
}

/**
 * Provider error → our answer, in one table so the adapters, the README's "Provider errors" table
 * and the tests cannot disagree. A client can only act on a stable code: a bad number must be
 * fixed by the person, an opted-out one cannot be reached until they opt back in, a region or
 * credential problem is the operator's, and throttling is worth waiting out. Anything not listed
 * is `delivery_failed`. Every row is a definite refusal: the provider says it did not take the
 * message, so the caller voids the code and gives the limits back.
 */
export const PROVIDER_ERRORS: readonly ProviderErrorRow[] = [
  {
    provider: 'twilio',
    providerCode: 20003,
    answer: 'provider_misconfigured',
    reason: 'authentication failed (account SID or auth token)',
  },
  {
    provider: 'twilio',
    providerCode: 21211,
    answer: 'invalid_phone',
    reason: "invalid 'To' number",
  },
  {
    provider: 'twilio',
    providerCode: 21217,
    answer: 'invalid_phone',
    reason: 'number does not appear to be valid',
  },
  {
    provider: 'twilio',
    providerCode: 21408,
    answer: 'country_not_allowed',
    reason: "account may not send to the 'To' number's region",
  },
  {
    provider: 'twilio',
    providerCode: 21610,
    answer: 'recipient_opted_out',
    reason: 'recipient unsubscribed from this sender',
  },
  {
    provider: 'twilio',
    providerCode: 21612,
    answer: 'invalid_phone',
    reason: "'To' number not reachable by SMS from this sender",
  },
  {
    provider: 'twilio',
    providerCode: 21614,
    answer: 'invalid_phone',
    reason: "'To' number is not a mobile number",
  },
  {
    provider: 'twilio',
    httpStatus: 429,
    answer: 'provider_rate_limited',
    reason: 'too many requests',
  },
  {
    provider: 'sendgrid',
    httpStatus: 401,
    answer: 'provider_misconfigured',
    reason: 'API key missing or invalid',
  },
  {
    provider: 'sendgrid',
    httpStatus: 403,
    answer: 'provider_misconfigured',
    reason: 'API key lacks mail send access, or the sender is not verified',
  },
  {
    provider: 'sendgrid',
    httpStatus: 429,
    answer: 'provider_rate_limited',
    reason: 'too many requests',
  },
];

/** The row for a provider's answer: its own error code first, then the HTTP status. */
export function providerErrorRow(
  provider: ProviderErrorRow['provider'],
  answer: { providerCode?: number; httpStatus?: number },
): ProviderErrorRow | undefined {
  const rows = PROVIDER_ERRORS.filter((row) => row.provider === provider);
  return (
    (answer.providerCode === undefined
      ? undefined
      : rows.find((row) => row.providerCode === answer.providerCode)) ??
    (answer.httpStatus === undefined
      ? undefined
      : rows.find((row) => row.providerCode === undefined && row.httpStatus === answer.httpStatus))
  );
}

/**
 * An HTTP error status says the request was read. A 4xx refuses it; a 5xx may come after the
 * message was accepted (a timeout behind the provider's edge, a crash after queueing), so it
 * proves nothing.
 */
export function outcomeOfStatus(status: number): DeliveryOutcome {
  return status >= 500 ? 'unknown' : 'refused';
}

/**
 * Transport errors that happen before a byte of the request is written: name resolution, the
 * TCP connect, the TLS handshake. Everything else (ECONNRESET, EPIPE, a timeout) may strike after
 * the provider read the request, so its outcome is unknown.
 */
const BEFORE_WRITE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function outcomeOfNetError(code: string): DeliveryOutcome {
  return BEFORE_WRITE.has(code) ? 'refused' : 'unknown';
}

/** Seconds to wait when a provider throttles without saying for how long. */
export const DEFAULT_PROVIDER_RETRY_AFTER_SECONDS = 30;
/** A provider's Retry-After is believed up to an hour; beyond that it is more likely an error. */
const MAX_PROVIDER_RETRY_AFTER_SECONDS = 3600;

/** Retry-After as seconds (RFC 9110: delay-seconds or an HTTP-date), within sane bounds. */
export function retryAfterSeconds(header: unknown, now: number = Date.now()): number {
  const value = Array.isArray(header) ? header[0] : header;
  let seconds = Number.NaN;
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) seconds = Number(value);
  else if (typeof value === 'string' && value.trim() !== '') {
    const at = Date.parse(value);
    if (Number.isFinite(at)) seconds = Math.ceil((at - now) / 1000);
  } else if (typeof value === 'number') seconds = value;
  if (!Number.isFinite(seconds)) return DEFAULT_PROVIDER_RETRY_AFTER_SECONDS;
  return Math.min(MAX_PROVIDER_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(seconds)));
}
