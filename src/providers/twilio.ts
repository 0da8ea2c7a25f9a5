import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import { DeliveryFailedError } from '../errors';
import { isTimeout, withDeadline } from './deadline';
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
  /** For tests: an http(s) origin (optionally with a path) that replaces https://api.twilio.com. */
  baseUrl?: string;
}

/**
 * Sends through the Messages resource. Any failure becomes DeliveryFailedError whose cause names
 * only status, Twilio error code and transport error code: the SDK's own errors are never passed
 * on, because an axios error carries the form-encoded request, Body and code included.
 */
export function createTwilioSmsProvider(options: TwilioSmsProviderOptions): SmsProvider {
  const { accountSid, authToken, from, messagingServiceSid, timeoutMs, baseUrl } = options;
  // The account SID's form and the presence of a sender are loadConfig's to check, together with
  // every other setting, so that one start reports them all.
  const sender = messagingServiceSid ? { messagingServiceSid } : { from };

  // The SDK only applies `timeout` to an http client it builds itself, so build ours with it.
  const httpClient =
    baseUrl === undefined
      ? new twilio.RequestClient({ timeout: timeoutMs })
      : new RebasedRequestClient(baseUrl, { timeout: timeoutMs });
  // autoRetry stays off: the contract is one message, one provider call.
  const client = twilio(accountSid, authToken, { httpClient, autoRetry: false });
  // The SDK requires the Messages API lazily (~150 ms of synchronous loading): pay that at start-up,
  // not inside the first user's send.
  const messages = client.messages;

  return {
    name: 'twilio',
    async send(message: SmsMessage): Promise<DeliveryReceipt> {
      let sid: unknown;
      try {
        const created = await withDeadline(
          messages.create({ to: message.to, body: message.body, ...sender }),
          timeoutMs,
        );
        sid = created.sid;
      } catch (error) {
        throw new DeliveryFailedError('sms', describeFailure(error, timeoutMs));
      }
      // A 2xx without a SID is not Twilio (e.g. a proxy's error page): acceptance is unconfirmed.
      if (typeof sid !== 'string' || sid === '') {
        throw new DeliveryFailedError(
          'sms',
          new Error('Twilio answered 2xx without a message SID'),
        );
      }
      return { id: sid };
    },
  };
}

/**
 * Keeps the SDK's own request handling (auth, form encoding, headers) and only swaps the origin,
 * after the SDK has applied edge/region, so tests see exactly what Twilio would receive.
 */
class RebasedRequestClient extends twilio.RequestClient {
  readonly #base: string;

  constructor(baseUrl: string, options: RequestClient.RequestClientOptions) {
    super(options);
    const base = new URL(baseUrl);
    this.#base = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const target = new URL(opts.uri);
    return super.request({ ...opts, uri: `${this.#base}${target.pathname}${target.search}` });
  }
}

/** A cause safe to log: no request data, no free text from the provider. */
function describeFailure(error: unknown, timeoutMs: number): Error {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  if (isTimeout(error)) {
    return new Error(`Twilio did not answer within ${timeoutMs} ms`);
  }
  // RestException and TwilioServiceException both carry the HTTP status and a numeric code.
  if (typeof fields.status === 'number') {
    const code = typeof fields.code === 'number' ? `, Twilio error ${fields.code}` : '';
    const info = typeof fields.moreInfo === 'string' ? ` (${fields.moreInfo})` : '';
    return new Error(`Twilio answered HTTP ${fields.status}${code}${info}`);
  }
  if (error instanceof SyntaxError) {
    return new Error('Twilio answered with a body that is not JSON');
  }
  const reason = typeof fields.code === 'string' ? fields.code : (error as Error | undefined)?.name;
  return new Error(`Twilio request failed (${reason ?? 'unknown error'})`);
}
