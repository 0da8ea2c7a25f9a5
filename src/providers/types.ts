/**
 * Delivery boundaries. An adapter turns one message into one provider call and nothing else:
 * no retries (the client retries by calling the send route again) and no logging of the body,
 * which carries a live code or link.
 */

export interface SmsMessage {
  /** Recipient in E.164, e.g. "+15551234567". */
  to: string;
  /** The full text, code included. */
  body: string;
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
  /** The provider's id for the message (Twilio SID, SendGrid X-Message-Id, or a mock id). */
  id: string;
}

export interface SmsProvider {
  /** Provider name for logs and /health, e.g. "twilio" or "mock". */
  readonly name: string;
  /**
   * Hands the message to the provider. Resolves once the provider accepted it.
   * Rejects with DeliveryFailedError when the provider answers 4xx/5xx or does not answer within
   * PROVIDER_TIMEOUT_MS; the caller must then treat the code as never sent.
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
  body: string;
  /** ISO 8601 timestamp. */
  sentAt: string;
}
