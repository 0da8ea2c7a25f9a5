import { MailService } from '@sendgrid/mail';
import { DeliveryFailedError } from '../errors';
import { isTimeout, withDeadline } from './deadline';
import type { DeliveryReceipt, EmailMessage, EmailProvider } from './types';

export interface SendGridEmailProviderOptions {
  apiKey: string;
  /** Sender, "address" or "Name <address>"; must be a verified SendGrid sender. */
  from: string;
  /** Upper bound for one send, from PROVIDER_TIMEOUT_MS. */
  timeoutMs: number;
  /** For tests: an http(s) URL that replaces https://api.sendgrid.com/. */
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
 * Sends through /v3/mail/send. Any failure becomes DeliveryFailedError whose cause names only
 * status, the fields SendGrid objected to, a transport error code or the SDK's own validation
 * message: the SDK's errors are never passed on, because an axios error carries the JSON request,
 * link included.
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
          }),
          timeoutMs,
        );
        messageId = response.headers?.['x-message-id'];
      } catch (error) {
        throw new DeliveryFailedError('email', describeFailure(error, timeoutMs));
      }
      // SendGrid always sets it on acceptance; a 2xx without it is something else (e.g. a proxy).
      if (typeof messageId !== 'string' || messageId === '') {
        throw new DeliveryFailedError(
          'email',
          new Error('SendGrid answered 2xx without X-Message-Id'),
        );
      }
      return { id: messageId };
    },
  };
}

/** A cause safe to log: no request data, no free text from the provider. */
function describeFailure(error: unknown, timeoutMs: number): Error {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  if (isTimeout(error)) {
    return new Error(`SendGrid did not answer within ${timeoutMs} ms`);
  }
  // The SDK's ResponseError (4xx/5xx) puts the HTTP status in `code` and the answer in `response`.
  if (typeof fields.code === 'number') {
    return new Error(`SendGrid answered HTTP ${fields.code}${rejectedFields(fields.response)}`);
  }
  // Anything else with a response is a 1xx/3xx that axios refused.
  const status = (fields.response as { status?: unknown } | undefined)?.status;
  if (typeof status === 'number') {
    return new Error(`SendGrid answered HTTP ${status}`);
  }
  if (typeof fields.code === 'string') {
    return new Error(`SendGrid request failed (${fields.code})`);
  }
  // The SDK's own validation (e.g. an unparsable EMAIL_FROM) names fields, never their values.
  if (error instanceof Error && !('config' in error)) {
    return new Error(`SendGrid SDK refused the message: ${error.message}`);
  }
  return new Error('SendGrid request failed (unknown error)');
}

/** SendGrid's `errors[].field` names the offending request field without quoting its value. */
function rejectedFields(response: unknown): string {
  const errors = (response as { body?: { errors?: unknown } } | undefined)?.body?.errors;
  if (!Array.isArray(errors)) return '';
  const names = errors
    .map((e) => (e as { field?: unknown } | null)?.field)
    .filter((f): f is string => typeof f === 'string' && f !== '');
  return names.length > 0 ? ` (fields: ${names.join(', ')})` : '';
}
