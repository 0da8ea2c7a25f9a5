/**
 * Delivery boundaries. An adapter turns one message into one provider call and nothing else:
 * no retries (the client retries by calling the send route again) and no logging of the body,
 * which carries a live code or link.
 *
 * The failure contract. A send that did not succeed rejects with DeliveryFailedError, whose
 * `outcome` says whether the message could still arrive:
 * - `refused`: the provider said it did not take the message (a 4xx, a 2xx that reports the
 *   message failed, a connection that failed before the request was written). The caller voids
 *   the new code or link and gives back the send limits, so the person can retry at once.
 * - `unknown`: the provider may have taken it (no answer within PROVIDER_TIMEOUT_MS, the
 *   connection lost after the request was written, a 5xx, a 2xx that is not the provider's
 *   answer). The message may still arrive, so the caller keeps the code or link valid and the
 *   limits charged: refunding would let a retry pass the cooldown and send again, once per
 *   timeout, past every limit.
 * When in doubt an adapter says `unknown`. Which provider errors get an answer of their own
 * (invalid_phone, provider_misconfigured, ...) is decided in ./failures.ts, nowhere else.
 */

export interface SmsMessage {
  /** Recipient in E.164, e.g. "+15551234567". */
  to: string;
  /** The full text, code included. */
  body: string;
  /**
   * Seconds the code in `body` stays valid. A provider that can drop a queued message (Twilio's
   * ValidityPeriod) must not deliver it later than this. Absent: the provider's own default.
   */
  validForSeconds?: number;
}

export interface EmailMessage {
  /** Recipient address, already validated. */
  to: string;
  subject: string;
  /** Plain-text part. */
  text: string;
  /** HTML part. */
  html: string;
}

/** What a provider reports back for a message it accepted. */
export interface DeliveryReceipt {
  /**
   * The provider's id for the message (Twilio SID, SendGrid X-Message-Id, or a mock id); absent
   * when the provider accepted it without naming it (SendGrid does not promise X-Message-Id).
   */
  id?: string;
}

export interface SmsProvider {
  /** Provider name for logs and /health, e.g. "twilio" or "mock". */
  readonly name: string;
  /**
   * Hands the message to the provider. Resolves once the provider accepted it. Rejects with
   * DeliveryFailedError otherwise, `refused` or `unknown` as described at the top of this file;
   * the caller voids the code only when it was refused.
   */
  send(message: SmsMessage): Promise<DeliveryReceipt>;
}

export interface EmailProvider {
  readonly name: string;
  /** Same contract as SmsProvider.send, for one email with a text and an HTML part. */
  send(message: EmailMessage): Promise<DeliveryReceipt>;
}

/** A message as kept by the mock providers' outbox, for CI pipelines to read codes from. */
export interface OutboxMessage {
  id: string;
  channel: 'sms' | 'email';
  to: string;
  subject?: string;
  /** The SMS text, or the email's text part. */
  body: string;
  /** Email only: the HTML part. */
  html?: string;
  /**
   * The code: an SMS's, read from the text where SMS_TEMPLATE puts it, or an emailed code's, where
   * EMAIL_CODE_TEMPLATE does. Absent from an email that carries a link.
   */
  code?: string;
  /** Email only: the verification link, read from the text part. */
  link?: string;
  /** ISO 8601 timestamp. */
  sentAt: string;
}
