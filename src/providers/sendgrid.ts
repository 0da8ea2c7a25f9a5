import { MailService } from '@sendgrid/mail';
import { DeliveryFailedError, type DeliveryFailure } from '../errors';
import { isTimeout, timeoutCode, withDeadline } from './deadline';
import {
  outcomeOfNetError,
  outcomeOfStatus,
  providerErrorRow,
  retryAfterSeconds,
} from './failures';
import type { DeliveryReceipt, EmailMessage, EmailProvider } from './types';

export interface SendGridEmailProviderOptions {
  apiKey: string;
  /** Sender, "address" or "Name <address>"; must be a verified SendGrid sender. */
  from: string;
  /** Upper bound for one send, from PROVIDER_TIMEOUT_MS. */
  timeoutMs: number;
  /**
   * SENDGRID_API_BASE_URL: an http(s) URL that replaces https://api.sendgrid.com/ (SendGrid's EU
   * endpoint, a gateway, or a local server in tests).
   */
  baseUrl?: string;
}

/**
 * The request defaults live on the MailService's client, which the package's typings do not
 * expose; this is the one method used, as @sendgrid/client implements it (axios options).
 */
interface RequestDefaults {
  setDefaultRequest(key: 'baseUrl', value: string): unknown;
  setDefaultRequest(key: 'maxRedirects', value: number): unknown;
}

/**
 * Tracking off on every verification email. Click tracking rewrites each link through SendGrid's
 * redirector (a mail scanner following it, or a mangled token, breaks the link), open tracking
 * adds a pixel and subscription tracking an unsubscribe footer, none of which a one-off
 * verification email wants. Setting them per message overrides whatever the account enables.
 */
const NO_TRACKING = {
  clickTracking: { enable: false, enableText: false },
  openTracking: { enable: false },
  subscriptionTracking: { enable: false },
};

/**
 * Sends through /v3/mail/send. Any failure becomes DeliveryFailedError built from the status,
 * the names of the fields SendGrid objected to and the transport's error code only: the SDK's
 * errors are never passed on, because an axios error carries the JSON request, link included.
 */
export function createSendGridEmailProvider(options: SendGridEmailProviderOptions): EmailProvider {
  const { apiKey, from, timeoutMs, baseUrl } = options;
  // A private instance rather than the package's singleton: two providers never share a key.
  const service = new MailService();
  service.setApiKey(apiKey);
  service.setTimeout(timeoutMs);
  const { client } = service as unknown as { client: RequestDefaults };
  // /v3/mail/send never redirects; following one would re-post the link to wherever it points.
  client.setDefaultRequest('maxRedirects', 0);
  // setApiKey writes the region's baseUrl into the request defaults, so override it afterwards.
  if (baseUrl !== undefined) client.setDefaultRequest('baseUrl', baseUrl);

  return {
    name: 'sendgrid',
    async send(message: EmailMessage): Promise<DeliveryReceipt> {
      let status: unknown;
      let messageId: unknown;
      try {
        const [response] = await withDeadline(
          service.send({
            to: message.to,
            from,
            subject: message.subject,
            content: [
              { type: 'text/plain', value: message.text },
              { type: 'text/html', value: message.html },
            ],
            trackingSettings: NO_TRACKING,
          }),
          timeoutMs,
        );
        status = response.statusCode;
        messageId = response.headers?.['x-message-id'];
      } catch (error) {
        throw new DeliveryFailedError('email', classify(error, timeoutMs));
      }
      // 202 is SendGrid's only success; another 2xx is someone else (e.g. a proxy's page), and
      // whether the mail went on from there is unknown.
      if (status !== 202) {
        throw new DeliveryFailedError('email', {
          outcome: 'unknown',
          failure: {
            provider: 'sendgrid',
            ...(typeof status === 'number' ? { httpStatus: status } : {}),
            reason: 'answered 2xx other than 202',
          },
        });
      }
      // The API description promises no X-Message-Id: a 202 without one is still accepted.
      return typeof messageId === 'string' && messageId !== '' ? { id: messageId } : {};
    },
  };
}

/** Decides the outcome and the answer of a failed send, from codes and field names only. */
function classify(error: unknown, timeoutMs: number): DeliveryFailure {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  if (isTimeout(error)) {
    return {
      outcome: 'unknown',
      failure: {
        provider: 'sendgrid',
        netError: timeoutCode(error),
        reason: `no answer within ${timeoutMs} ms`,
      },
    };
  }
  // The SDK's ResponseError (4xx/5xx) puts the HTTP status in `code` and the answer in `response`.
  if (typeof fields.code === 'number') {
    const httpStatus = fields.code;
    const response = fields.response as { body?: unknown; headers?: Record<string, unknown> };
    const outcome = outcomeOfStatus(httpStatus);
    const row = outcome === 'refused' ? providerErrorRow('sendgrid', { httpStatus }) : undefined;
    const rejected = rejectedFields(response?.body);
    return {
      outcome,
      ...(row ? { code: row.answer } : {}),
      ...(row?.answer === 'provider_rate_limited'
        ? { retryAfterSeconds: retryAfterSeconds(response?.headers?.['retry-after']) }
        : {}),
      failure: {
        provider: 'sendgrid',
        httpStatus,
        reason:
          row?.reason ??
          (outcome === 'refused'
            ? `request refused${rejected}`
            : 'server error; the mail may have been accepted'),
      },
    };
  }
  // Anything else with a response is a 1xx/3xx that axios refused: not taken where it was sent.
  const status = (fields.response as { status?: unknown } | undefined)?.status;
  if (typeof status === 'number') {
    return {
      outcome: 'refused',
      failure: {
        provider: 'sendgrid',
        httpStatus: status,
        reason: 'unexpected redirect or status',
      },
    };
  }
  if (typeof fields.code === 'string') {
    return {
      outcome: outcomeOfNetError(fields.code),
      failure: { provider: 'sendgrid', netError: fields.code, reason: 'request failed' },
    };
  }
  // The SDK's own validation (e.g. an unparsable EMAIL_FROM) fails before anything is sent.
  if (error instanceof Error && !('config' in error)) {
    return {
      outcome: 'refused',
      failure: { provider: 'sendgrid', reason: 'the SDK refused the message before sending it' },
    };
  }
  return { outcome: 'unknown', failure: { provider: 'sendgrid', reason: 'request failed' } };
}

/** SendGrid's `errors[].field` names the offending request field without quoting its value. */
function rejectedFields(body: unknown): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors)) return '';
  const names = errors
    .map((e) => (e as { field?: unknown } | null)?.field)
    .filter(
      (f): f is string => typeof f === 'string' && /^[\w.[\]]{1,64}$/.test(f) && f !== 'null',
    );
  return names.length > 0 ? ` (fields: ${names.join(', ')})` : '';
}
