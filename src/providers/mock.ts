import { randomUUID } from 'node:crypto';
import { DeliveryFailedError, type DeliveryOutcome } from '../errors';
import type { Logger } from '../logger';
import type {
  DeliveryReceipt,
  EmailMessage,
  EmailProvider,
  OutboxMessage,
  SmsMessage,
  SmsProvider,
} from './types';

/**
 * What the mock providers "sent", for CI pipelines and developers to read codes from. Bounded so
 * a long-running development instance cannot grow without limit: the oldest message goes first.
 */
export class Outbox {
  readonly capacity: number;
  readonly #messages: OutboxMessage[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Outbox capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.#messages.length;
  }

  add(message: OutboxMessage): void {
    this.#messages.push({ ...message });
    const overflow = this.#messages.length - this.capacity;
    if (overflow > 0) this.#messages.splice(0, overflow);
  }

  /** Oldest first, newest last; `to` must match exactly. Copies, so callers cannot edit history. */
  list(filter: { to?: string } = {}): OutboxMessage[] {
    const { to } = filter;
    return this.#messages.filter((m) => to === undefined || m.to === to).map((m) => ({ ...m }));
  }

  clear(): void {
    this.#messages.length = 0;
  }
}

export interface MockProviderOptions {
  /**
   * Log each message's full text so a developer can read the code from the console. Only for
   * NODE_ENV=development: this is the one place in the service that logs a code or link.
   */
  logMessages?: boolean;
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

export function createMockSmsProvider(
  outbox: Outbox,
  logger?: Logger,
  options: MockProviderOptions = {},
): MockSmsProvider {
  const faults = new FaultQueue();
  return {
    name: 'mock',
    ...faults.hooks(),
    async send(message: SmsMessage): Promise<DeliveryReceipt> {
      await faults.apply('sms');
      const stored = record(outbox, { channel: 'sms', to: message.to, body: message.body });
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
  return {
    name: 'mock',
    ...faults.hooks(),
    async send(message: EmailMessage): Promise<DeliveryReceipt> {
      await faults.apply('email');
      // The text part carries the same link as the HTML part and is what a pipeline can parse.
      const stored = record(outbox, {
        channel: 'email',
        to: message.to,
        subject: message.subject,
        body: message.text,
      });
      report(logger, options, stored);
      return { id: stored.id };
    },
  };
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
