import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import { DeliveryFailedError, type DeliveryFailure } from '../errors';
import { isTimeout, timeoutCode, withDeadline } from './deadline';
import {
  outcomeOfNetError,
  outcomeOfStatus,
  providerErrorRow,
  retryAfterSeconds,
} from './failures';
import type { DeliveryReceipt, SmsMessage, SmsProvider } from './types';

export interface TwilioSmsProviderOptions {
  accountSid: string;
  authToken: string;
  /** Sender number in E.164; ignored when messagingServiceSid is set. */
  from?: string;
  /**
   * Messaging Service to send through. It wins over `from` because the service's sender pool then
   * picks the number (geo-match, sticky sender, failover, throughput across numbers), whereas
   * sending From as well would pin every message to one number and bypass that routing.
   */
  messagingServiceSid?: string;
  /** Upper bound for one send, from PROVIDER_TIMEOUT_MS. */
  timeoutMs: number;
  /**
   * TWILIO_API_BASE_URL: an http(s) origin, optionally with a path, that replaces
   * https://api.twilio.com (a Twilio-compatible gateway, or a local server in tests).
   */
  baseUrl?: string;
}

/** Twilio's accepted ValidityPeriod range in seconds (Messages create, twilio-oai api_v2010). */
const VALIDITY_PERIOD = { min: 1, max: 36_000 } as const;

/** Message statuses that say, already in the 201, that the message will not be delivered. */
const FAILED_STATUSES = new Set(['failed', 'undelivered']);

/**
 * Sends through the Messages resource. Any failure becomes DeliveryFailedError built from the
 * status, Twilio's numeric error code and the transport's error code only: the SDK's own errors
 * are never passed on, because an axios error carries the form-encoded request, Body and code
 * included, and Twilio's message text quotes the number.
 */
export function createTwilioSmsProvider(options: TwilioSmsProviderOptions): SmsProvider {
  const { accountSid, authToken, from, messagingServiceSid, timeoutMs, baseUrl } = options;
  // The account SID's form and the presence of a sender are loadConfig's to check, together with
  // every other setting, so that one start reports them all.
  const sender = messagingServiceSid ? { messagingServiceSid } : { from };

  // The SDK only applies `timeout` to an http client it builds itself, so build ours with it.
  const httpClient = new VerifydRequestClient(baseUrl, { timeout: timeoutMs });
  // autoRetry stays off: the contract is one message, one provider call.
  const client = twilio(accountSid, authToken, { httpClient, autoRetry: false });
  // The SDK requires the Messages API lazily (~150 ms of synchronous loading): pay that at start-up,
  // not inside the first user's send.
  const messages = client.messages;

  return {
    name: 'twilio',
    async send(message: SmsMessage): Promise<DeliveryReceipt> {
      let created: { sid?: unknown; status?: unknown; errorCode?: unknown };
      try {
        created = await withDeadline(
          messages.create({
            to: message.to,
            body: message.body,
            ...sender,
            ...validityPeriod(message.validForSeconds),
          }),
          timeoutMs,
        );
      } catch (error) {
        throw new DeliveryFailedError('sms', classify(error, timeoutMs));
      }
      return receipt(created);
    },
  };
}

/**
 * Twilio queues a message for up to 10 hours by default; a code delivered after it expired only
 * confuses the person. So the queue life is the code's remaining life, within Twilio's range.
 */
function validityPeriod(seconds: number | undefined): { validityPeriod?: number } {
  if (seconds === undefined || !Number.isFinite(seconds)) return {};
  const whole = Math.floor(seconds);
  return {
    validityPeriod: Math.min(VALIDITY_PERIOD.max, Math.max(VALIDITY_PERIOD.min, whole)),
  };
}

/** A 201 is only a success if it names the message and does not already report it failed. */
function receipt(created: {
  sid?: unknown;
  status?: unknown;
  errorCode?: unknown;
}): DeliveryReceipt {
  const { sid, status, errorCode } = created ?? {};
  // A 2xx without a SID is not Twilio (e.g. a proxy's page): whether Twilio took it is unknown.
  if (typeof sid !== 'string' || sid === '') {
    throw new DeliveryFailedError('sms', {
      outcome: 'unknown',
      failure: { provider: 'twilio', reason: 'answered 2xx without a message SID' },
    });
  }
  if (typeof status === 'string' && FAILED_STATUSES.has(status)) {
    const providerCode = typeof errorCode === 'number' ? errorCode : undefined;
    const row = providerErrorRow('twilio', { providerCode });
    throw new DeliveryFailedError('sms', {
      outcome: 'refused',
      ...(row ? { code: row.answer } : {}),
      failure: {
        provider: 'twilio',
        httpStatus: 201,
        ...(providerCode === undefined ? {} : { providerCode }),
        reason: row ? row.reason : `message created with status ${status}`,
      },
    });
  }
  return { id: sid };
}

/** Twilio throttled the request; the SDK's RestException would drop the Retry-After header. */
class TwilioThrottled extends Error {
  constructor(
    readonly providerCode: number | undefined,
    readonly retryAfterSeconds: number,
  ) {
    super('Twilio answered HTTP 429');
  }
}

/**
 * Keeps the SDK's own request handling (auth, form encoding, headers). With a base URL it swaps
 * the origin after the SDK has applied edge/region, so a gateway or a test sees exactly what
 * Twilio would receive. A 429 is turned into TwilioThrottled here, the one place that still sees
 * the answer's headers.
 */
class VerifydRequestClient extends twilio.RequestClient {
  readonly #base: string | undefined;

  constructor(baseUrl: string | undefined, options: RequestClient.RequestClientOptions) {
    super(options);
    if (baseUrl !== undefined) {
      const base = new URL(baseUrl);
      this.#base = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    }
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
    let uri = opts.uri;
    if (this.#base !== undefined) {
      const target = new URL(opts.uri);
      uri = `${this.#base}${target.pathname}${target.search}`;
    }
    const response = await super.request({ ...opts, uri });
    if (response.statusCode === 429) {
      throw new TwilioThrottled(
        numericCode(parseJson(response.body)),
        retryAfterSeconds(
          (response.headers as Record<string, unknown> | undefined)?.['retry-after'],
        ),
      );
    }
    return response;
  }
}

function parseJson(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function numericCode(body: unknown): number | undefined {
  const code = (body as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Decides the outcome and the answer of a failed create, from codes only. */
function classify(error: unknown, timeoutMs: number): DeliveryFailure {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  if (error instanceof TwilioThrottled) {
    return {
      outcome: 'refused',
      code: 'provider_rate_limited',
      retryAfterSeconds: error.retryAfterSeconds,
      failure: {
        provider: 'twilio',
        httpStatus: 429,
        ...(error.providerCode === undefined ? {} : { providerCode: error.providerCode }),
        reason: 'too many requests',
      },
    };
  }
  if (isTimeout(error)) {
    return {
      outcome: 'unknown',
      failure: {
        provider: 'twilio',
        netError: timeoutCode(error),
        reason: `no answer within ${timeoutMs} ms`,
      },
    };
  }
  // RestException and TwilioServiceException both carry the HTTP status and a numeric code.
  if (typeof fields.status === 'number') {
    const httpStatus = fields.status;
    const providerCode =
      typeof fields.code === 'number' && fields.code !== 0 ? fields.code : undefined;
    const outcome = outcomeOfStatus(httpStatus);
    const row =
      outcome === 'refused' ? providerErrorRow('twilio', { providerCode, httpStatus }) : undefined;
    return {
      outcome,
      ...(row ? { code: row.answer } : {}),
      failure: {
        provider: 'twilio',
        httpStatus,
        ...(providerCode === undefined ? {} : { providerCode }),
        reason:
          row?.reason ??
          (outcome === 'refused'
            ? 'request refused'
            : 'server error; the message may have been accepted'),
      },
    };
  }
  // The SDK parses a 2xx body itself; one that is not JSON is not Twilio's answer.
  if (error instanceof SyntaxError) {
    return {
      outcome: 'unknown',
      failure: { provider: 'twilio', reason: 'answered 2xx with a body that is not JSON' },
    };
  }
  if (typeof fields.code === 'string') {
    return {
      outcome: outcomeOfNetError(fields.code),
      failure: { provider: 'twilio', netError: fields.code, reason: 'request failed' },
    };
  }
  return {
    outcome: 'unknown',
    failure: {
      provider: 'twilio',
      reason: `request failed (${(error as Error | undefined)?.name ?? 'unknown error'})`,
    },
  };
}
