import { createHmac } from 'node:crypto';
import type { Logger } from '../src/logger';
import type { Clock, RandomSource } from './runtime';
import type { Channel } from './targets';

export const SIGNATURE_HEADER = 'X-Verifyd-Signature';

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  /** Retries after the first try; waits double each time from `baseDelayMs`. */
  retries: number;
  baseDelayMs?: number;
  logger: Logger;
  clock: Clock;
  /** Makes each event's id. */
  random: RandomSource;
  fetch?: typeof fetch;
  /**
   * Told of each delivery, retries included, with what it is about: a stopping process waits
   * for it (see Lifecycle.track) and can name the events it could not deliver.
   */
  track?: (delivery: Promise<boolean>, about: Record<string, unknown>) => void;
}

export interface ApprovedEvent {
  channel: Channel;
  to: string;
  userId?: string;
  purpose: string;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`; the timestamp lets receivers refuse replays. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  const digest = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${digest}`;
}

/**
 * Tells the app that a verification succeeded. Delivery happens after the HTTP answer and never
 * turns a successful verification into an error: failures are logged and retried a few times.
 */
export function createWebhookNotifier(options: WebhookOptions) {
  const { url, secret, timeoutMs, retries, logger, clock, random } = options;
  const send = options.fetch ?? fetch;
  const baseDelayMs = options.baseDelayMs ?? 500;

  /** What a failure's cause was, as far as fetch tells: `fetch failed` alone says nothing. */
  function causeOf(error: unknown): Record<string, unknown> {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    return {
      message: (error as Error).message,
      ...(cause ? { cause: cause.code ?? cause.message } : {}),
    };
  }

  /** `about` names the event in every line: its id, which the receiver sees, and what it is. */
  async function deliver(body: string, about: Record<string, unknown>): Promise<boolean> {
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0)
        await new Promise((resolve) => setTimeout(resolve, baseDelayMs * 2 ** (attempt - 1)));
      const timestamp = Math.floor(clock.now() / 1000);
      try {
        const response = await send(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
          },
          body,
          // A redirect is never followed: a 307 or 308 would hand the signed body, which a
          // receiver accepts as genuine, to whatever address the first receiver names.
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        // Nothing is read from an answer but its status; free the connection.
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) return true;
        if (response.status >= 300 && response.status < 400) {
          // The same URL would redirect again: retrying only repeats the call.
          logger.error(
            { ...about, status: response.status, attempt },
            'webhook answered with a redirect, which is not followed: set VERIFIED_WEBHOOK_URL to the final address',
          );
          return false;
        }
        logger.warn(
          { ...about, status: response.status, attempt },
          'webhook answered with an error',
        );
      } catch (error) {
        logger.warn({ ...about, err: causeOf(error), attempt }, 'webhook delivery failed');
      }
    }
    logger.error({ ...about, tries: retries + 1 }, 'webhook gave up: the event is lost');
    return false;
  }

  return {
    /**
     * Resolves when delivery finished or gave up; callers do not await it on the request path.
     * The body, and with it the event's id, is made once: every retry of one event carries the
     * same id, so a receiver that got a try whose answer was lost can recognise the next one.
     */
    notify(event: ApprovedEvent): Promise<boolean> {
      const id = random.id();
      const body = JSON.stringify({
        id,
        event: 'verification.approved',
        channel: event.channel,
        to: event.to,
        userId: event.userId ?? null,
        purpose: event.purpose,
        at: new Date(clock.now()).toISOString(),
      });
      // Not the recipient: the id, which the receiver logs too, is enough to find the event.
      const about = { webhookEvent: id, channel: event.channel, purpose: event.purpose };
      const delivery = deliver(body, about);
      options.track?.(delivery, about);
      return delivery;
    },
  };
}

export type WebhookNotifier = ReturnType<typeof createWebhookNotifier>;
