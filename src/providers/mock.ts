import { randomUUID } from 'node:crypto';
import { DeliveryFailedError, type DeliveryOutcome } from '../errors';
import type { Logger } from '../logger';
import { failureOf, faultFor } from './mock-faults';
import type {
  DeliveryReceipt,
  EmailMessage,
  EmailProvider,
  OutboxMessage,
  SmsMessage,
  SmsProvider,
} from './types';

/** What changed in an outbox, for a live view (the dev inbox page) or a waiting reader. */
export type OutboxEvent =
  | { type: 'added'; message: OutboxMessage }
  /** `to` absent: everything was cleared. */
  | { type: 'cleared'; to?: string }
  /** The server is shutting down: live views and waiting readers end now. */
  | { type: 'closed' };

export type OutboxListener = (event: OutboxEvent) => void;

/**
 * What the mock providers "sent", for CI pipelines and developers to read codes from. Bounded so
 * a long-running development instance cannot grow without limit: the oldest message goes first.
 * Listeners hear of every change, so a page can show messages as they arrive and a test can wait
 * for its message instead of sleeping.
 */
export class Outbox {
  readonly capacity: number;
  readonly #messages: OutboxMessage[] = [];
  readonly #listeners = new Set<OutboxListener>();
  #closed = false;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Outbox capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.#messages.length;
  }

  /** How many live views and waiting readers are listening right now. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** True once close() was called: nobody waits on this outbox any more. */
  get closed(): boolean {
    return this.#closed;
  }

  add(message: OutboxMessage): void {
    this.#messages.push({ ...message });
    const overflow = this.#messages.length - this.capacity;
    if (overflow > 0) this.#messages.splice(0, overflow);
    this.#emit({ type: 'added', message: { ...message } });
  }

  /** Oldest first, newest last; `to` must match exactly. Copies, so callers cannot edit history. */
  list(filter: { to?: string } = {}): OutboxMessage[] {
    const { to } = filter;
    return this.#messages.filter((m) => to === undefined || m.to === to).map((m) => ({ ...m }));
  }

  /**
   * The newest message to `to` (any recipient when absent) that arrived after the message with id
   * `after`. An `after` the outbox no longer holds (cleared, or pushed out by newer messages) was
   * older than everything it holds, so every message counts.
   */
  latest(filter: { to?: string; after?: string } = {}): OutboxMessage | undefined {
    const { to, after } = filter;
    const start = after === undefined ? 0 : this.#messages.findIndex((m) => m.id === after) + 1;
    for (let i = this.#messages.length - 1; i >= start; i--) {
      const message = this.#messages[i] as OutboxMessage;
      if (to === undefined || message.to === to) return { ...message };
    }
    return undefined;
  }

  /**
   * Resolves with latest(filter) as soon as there is one, or undefined once `waitMs` passed, the
   * signal aborted (the client left) or the outbox closed, whichever comes first.
   */
  waitForLatest(
    filter: { to?: string; after?: string },
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<OutboxMessage | undefined> {
    const found = this.latest(filter);
    if (found || waitMs <= 0 || this.#closed || signal?.aborted) return Promise.resolve(found);
    return new Promise((resolve) => {
      const finish = (message: OutboxMessage | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        resolve(message);
      };
      const onAbort = () => finish(undefined);
      const timer = setTimeout(() => finish(undefined), waitMs);
      const unsubscribe = this.subscribe((event) => {
        if (event.type === 'closed') finish(undefined);
        else if (
          event.type === 'added' &&
          (filter.to === undefined || event.message.to === filter.to)
        )
          finish(event.message);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Removes every message, or only those to `to`. Returns how many went. */
  clear(filter: { to?: string } = {}): number {
    const { to } = filter;
    const before = this.#messages.length;
    if (to === undefined) this.#messages.length = 0;
    else {
      const kept = this.#messages.filter((m) => m.to !== to);
      this.#messages.splice(0, this.#messages.length, ...kept);
    }
    this.#emit(to === undefined ? { type: 'cleared' } : { type: 'cleared', to });
    return before - this.#messages.length;
  }

  /** Calls `listener` on every change until the returned function is called. */
  subscribe(listener: OutboxListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Ends every live view and waiting reader (they hear `closed`), so that a server shutting down
   * is not held open by a page that never disconnects. Messages stay readable.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#emit({ type: 'closed' });
    this.#listeners.clear();
  }

  #emit(event: OutboxEvent): void {
    // A copy: a listener may unsubscribe (itself or another) while being called.
    for (const listener of [...this.#listeners]) listener(event);
  }
}

export interface MockProviderOptions {
  /**
   * Log each message's full text so a developer can read the code from the console. Only for
   * NODE_ENV=development: this is the one place in the service that logs a code or link.
   */
  logMessages?: boolean;
  /**
   * SMS_TEMPLATE, so the code is read from the place the template puts it; without it, the first
   * standalone group of 4 to 10 digits in the text.
   */
  smsTemplate?: string;
  /** EMAIL_CODE_TEMPLATE, read the same way from an email that carries a code instead of a link. */
  emailCodeTemplate?: string;
  /** PROVIDER_TIMEOUT_MS: how long a fault number that never answers takes to fail. */
  timeoutMs?: number;
}

/** Test hooks to simulate a provider outage without the real SDKs. */
export interface FaultInjection {
  /**
   * The next `times` sends reject with DeliveryFailedError, after `delayMs` (a slow failure):
   * `refused` by default, or `unknown` to stand for a timeout or a lost connection.
   */
  failNext(times?: number, options?: { delayMs?: number; outcome?: DeliveryOutcome }): void;
  /** The next `times` sends succeed, but only after `delayMs`. */
  delayNext(delayMs: number, times?: number): void;
  /** Drops every fault not yet consumed. */
  clearFaults(): void;
}

export type MockSmsProvider = SmsProvider & FaultInjection;
export type MockEmailProvider = EmailProvider & FaultInjection;

const DEFAULT_TIMEOUT_MS = 10_000;

export function createMockSmsProvider(
  outbox: Outbox,
  logger?: Logger,
  options: MockProviderOptions = {},
): MockSmsProvider {
  const faults = new FaultQueue();
  const readCode = codeReader(options.smsTemplate);
  return {
    name: 'mock',
    ...faults.hooks(),
    async send(message: SmsMessage): Promise<DeliveryReceipt> {
      await faults.apply('sms');
      if (await simulateFault('sms', message.to, options, logger)) return { id: randomUUID() };
      const code = readCode(message.body);
      const stored = record(outbox, {
        channel: 'sms',
        to: message.to,
        body: message.body,
        ...(code === undefined ? {} : { code }),
      });
      report(logger, options, stored);
      return { id: stored.id };
    },
  };
}

export function createMockEmailProvider(
  outbox: Outbox,
  logger?: Logger,
  options: MockProviderOptions = {},
): MockEmailProvider {
  const faults = new FaultQueue();
  const readCode = codeReader(options.emailCodeTemplate, true);
  return {
    name: 'mock',
    ...faults.hooks(),
    async send(message: EmailMessage): Promise<DeliveryReceipt> {
      await faults.apply('email');
      if (await simulateFault('email', message.to, options, logger)) return { id: randomUUID() };
      // The text part carries the same link or code as the HTML part and is what a pipeline can
      // parse. An email carries one or the other (POST /verify-email's method).
      const link = readLink(message.text);
      const code = link === undefined ? readCode(message.text) : undefined;
      const stored = record(outbox, {
        channel: 'email',
        to: message.to,
        subject: message.subject,
        body: message.text,
        html: message.html,
        ...(link === undefined ? {} : { link }),
        ...(code === undefined ? {} : { code }),
      });
      report(logger, options, stored);
      return { id: stored.id };
    },
  };
}

/**
 * Fails the send as the real provider would for a fault number or address (./mock-faults.ts).
 * Resolves true when the provider "accepted" a message it will never deliver, false for any
 * other recipient.
 */
async function simulateFault(
  channel: 'sms' | 'email',
  to: string,
  options: MockProviderOptions,
  logger: Logger | undefined,
): Promise<boolean> {
  const fault = faultFor(channel, to);
  if (!fault) return false;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The global timer, so tests that fake timers can advance through the wait.
  if (fault.answer.kind === 'timeout') await new Promise((r) => setTimeout(r, timeoutMs));
  const failure = failureOf(fault, timeoutMs);
  if (failure) throw new DeliveryFailedError(channel, failure);
  logger?.info({ provider: 'mock', channel }, `mock ${channel} dropped: ${fault.simulates}`);
  return true;
}

/**
 * Reads the code where the template puts it: the template's text around {code} must match
 * exactly, so digits elsewhere in the text (a sender's name, a year) are not taken for it. A
 * text the template did not make (another template, in an embedding app) falls back to the first
 * standalone group of 4 to 10 digits.
 */
function codeReader(
  template: string | undefined,
  /** The template is the text's beginning rather than all of it (an email adds lines after it). */
  beginsText = false,
): (body: string) => string | undefined {
  const generic = /(?<!\d)(\d{4,10})(?!\d)/;
  if (template === undefined || !template.includes('{code}')) {
    return (body) => generic.exec(body)?.[1];
  }
  const [before = '', ...rest] = template.split('{code}');
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // Later occurrences of {code} must repeat the same code.
  const pattern = new RegExp(
    `^${literal(before)}(\\d{4,10})${rest.map((part) => literal(part)).join('\\1')}${beginsText ? '' : '$'}`,
  );
  return (body) => pattern.exec(body)?.[1] ?? generic.exec(body)?.[1];
}

/** The verification link in an email's text: the first http(s) URL that carries a token. */
function readLink(text: string): string | undefined {
  const urls = text.match(/https?:\/\/[^\s<>"']+/g) ?? [];
  return urls.find((url) => /[?&]token=/.test(url)) ?? urls[0];
}

function record(outbox: Outbox, message: Omit<OutboxMessage, 'id' | 'sentAt'>): OutboxMessage {
  const stored: OutboxMessage = { id: randomUUID(), ...message, sentAt: new Date().toISOString() };
  outbox.add(stored);
  return stored;
}

function report(
  logger: Logger | undefined,
  options: MockProviderOptions,
  message: OutboxMessage,
): void {
  if (!logger) return;
  const fields = { provider: 'mock', channel: message.channel, messageId: message.id };
  if (options.logMessages) {
    // In the message string, not a field: the logger redacts *.body and *.text fields by design.
    logger.info(fields, `mock ${message.channel} to ${message.to}:\n${message.body}`);
  } else {
    logger.debug(fields, `mock ${message.channel} accepted`);
  }
}

interface Fault {
  fail: DeliveryOutcome | false;
  delayMs: number;
}

/** Faults are consumed one per send, in the order they were queued. */
class FaultQueue {
  readonly #queue: Fault[] = [];

  hooks(): FaultInjection {
    return {
      failNext: (times = 1, { delayMs = 0, outcome = 'refused' } = {}) =>
        this.#push({ fail: outcome, delayMs }, times),
      delayNext: (delayMs, times = 1) => this.#push({ fail: false, delayMs }, times),
      clearFaults: () => {
        this.#queue.length = 0;
      },
    };
  }

  async apply(channel: 'sms' | 'email'): Promise<void> {
    const fault = this.#queue.shift();
    if (!fault) return;
    // The global timer, so tests that fake timers can advance through the delay.
    if (fault.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault.fail) {
      throw new DeliveryFailedError(channel, {
        outcome: fault.fail,
        failure: { provider: 'mock', reason: 'failure injected by a test' },
      });
    }
  }

  #push(fault: Fault, times: number): void {
    if (!Number.isInteger(times) || times < 1) {
      throw new RangeError(`times must be a positive integer, got ${times}`);
    }
    if (!Number.isFinite(fault.delayMs) || fault.delayMs < 0) {
      throw new RangeError(`delayMs must be a non-negative number, got ${fault.delayMs}`);
    }
    for (let i = 0; i < times; i++) this.#queue.push({ ...fault });
  }
}
