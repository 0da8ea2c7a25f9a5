import { Writable } from 'node:stream';
import type { Express } from 'express';
import { type Clock, cryptoRandom, type RandomSource } from '../../services/runtime';
import { type AppDeps, createApp } from '../../src/app';
import { buildConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createProviders } from '../../src/providers';
import {
  createMockSmsProvider,
  type MockEmailProvider,
  type MockSmsProvider,
  Outbox,
} from '../../src/providers/mock';
import type { EmailProvider, SmsMessage, SmsProvider } from '../../src/providers/types';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { checkedAgainstDocument } from './contract';

export class FakeClock implements Clock {
  constructor(public current = Date.UTC(2026, 10, 21, 12, 0, 0)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

export interface TestAppOptions {
  env?: Record<string, string>;
  store?: Store;
  clock?: Clock;
  random?: RandomSource;
  sms?: SmsProvider;
  email?: EmailProvider;
  /** Captures every log line (raw JSON) at env LOG_LEVEL, or at trace. */
  logLines?: string[];
  /** The router's public URL; pass undefined to let PUBLIC_URL or HOST:PORT decide. */
  publicUrl?: string | undefined;
  /** Receives every SMS pumping signal, as a metrics exporter would. */
  onPumpingSignal?: AppDeps['onPumpingSignal'];
}

export interface TestApp {
  app: Express;
  config: Config;
  store: Store;
  outbox: Outbox;
  sms: MockSmsProvider;
  email: MockEmailProvider;
}

/** Generous limits by default, so a test meets only the limit it is about. */
export const RELAXED_LIMITS = {
  RATE_LIMIT_MAX: '100000',
  SEND_COOLDOWN_SECONDS: '0',
  SEND_MAX_PER_TARGET: '1000',
  RESEND_MAX: '1000',
  IP_MAX_TARGETS_PER_HOUR: '100000',
  SMS_HOURLY_BUDGET: '100000',
  TARGET_MAX_FAILURES: '1000',
};

export function buildTestApp(options: TestAppOptions = {}): TestApp {
  const config = buildConfig({
    ...RELAXED_LIMITS,
    ...options.env,
    // A test that captures lines may choose the level, to see which lines it lets through.
    LOG_LEVEL: options.logLines ? (options.env?.LOG_LEVEL ?? 'trace') : 'silent',
  });
  const store =
    options.store ??
    new MemoryStore({ keyPrefix: 'test:', now: () => (options.clock ?? { now: Date.now }).now() });
  const outbox = new Outbox(100);
  const logger = createLogger({
    level: config.LOG_LEVEL,
    destination: options.logLines ? captureStream(options.logLines) : undefined,
  });
  // The mocks as the server makes them (createProviders), so the outbox reads codes where the
  // templates put them; a test that wants another provider passes it in.
  const providers = createProviders(
    { ...config, SMS_PROVIDER: 'mock', EMAIL_PROVIDER: 'mock' },
    { logger, outbox },
  );
  // Both are the mocks, with their fault hooks: the config above names them.
  const sms = providers.sms as MockSmsProvider;
  const email = providers.email as MockEmailProvider;
  const app = createApp({
    config,
    store,
    logger,
    sms: options.sms ?? sms,
    email: options.email ?? email,
    outbox,
    clock: options.clock ?? { now: Date.now },
    random: options.random ?? cryptoRandom,
    publicUrl: 'publicUrl' in options ? options.publicUrl : 'http://verifyd.test',
    ...(options.onPumpingSignal ? { onPumpingSignal: options.onPumpingSignal } : {}),
  });
  // Every answer is checked against the OpenAPI document the app serves (./contract.ts).
  return { app: checkedAgainstDocument(app), config, store, outbox, sms, email };
}

function captureStream(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
}

/** The code in the newest SMS to `to`. */
export function lastCode(outbox: Outbox, to: string): string {
  const message = outbox.list({ to }).at(-1);
  const code = message?.body.match(/\d{4,10}/)?.[0];
  if (!code) throw new Error(`no code in the outbox for ${to}`);
  return code;
}

/** The token in the newest email to `to`. */
export function lastToken(outbox: Outbox, to: string): string {
  const message = outbox.list({ to }).at(-1);
  const token = message?.body.match(/token=([\w.-]+)/)?.[1];
  if (!token) throw new Error(`no link in the outbox for ${to}`);
  return token;
}

/** A mock SMS provider that also keeps every message it was handed, to count provider calls. */
export function countingSms() {
  const calls: SmsMessage[] = [];
  const inner = createMockSmsProvider(new Outbox(1000));
  return {
    calls,
    provider: {
      name: 'counting',
      async send(message: SmsMessage) {
        calls.push(message);
        return inner.send(message);
      },
    },
  };
}
