import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { Counter, collectDefaultMetrics, Histogram, type LabelValues, Registry } from 'prom-client';
import type { PumpingSignal } from '../services/pumping';
import { DeliveryFailedError, StoreUnavailableError, VerifydError } from './errors';
import type { EmailProvider, SmsProvider } from './providers/types';
import type { Store } from './store/types';

/**
 * What became of a send: delivered to the provider, refused by a limit (`reason` names it),
 * refused by the provider, of unknown outcome at the provider, or failed on our side.
 */
export type SendOutcome = 'sent' | 'refused' | 'delivery_failed' | 'unknown' | 'error';

/**
 * The domain events metrics count, reported by the verification flows (see
 * services/observed-verification.ts). Every field is from a fixed, small set: never a number,
 * address, code, token or client address, which would leak them and give every label set a
 * series of its own.
 */
export interface VerificationEvents {
  send(event: {
    channel: 'sms' | 'email';
    /** ISO 3166 region of the number; empty for email or when unknown. */
    country?: string | undefined;
    outcome: SendOutcome;
    /** The limit that refused, or the error code of a failure; empty for a send that went out. */
    reason?: string;
  }): void;
  /** `outcome` is `approved` or the error code the check answered. */
  check(event: { channel: 'sms' | 'email'; outcome: string }): void;
  approve(event: { channel: 'sms' | 'email'; country?: string | undefined }): void;
}

/** Seconds; stores answer in well under a millisecond on loopback, up to STORE_TIMEOUT_MS. */
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds; providers answer in tens to hundreds of milliseconds, up to PROVIDER_TIMEOUT_MS. */
const PROVIDER_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

let processRegistry: Registry | undefined;

/**
 * Node's process metrics (CPU, memory, event loop lag, GC, handles) belong to the process, not to
 * an app: one registry for the process, made once. Each app instance has a registry of its own for
 * its counters (tests build hundreds of apps), but collecting the defaults once per app would
 * start an event-loop monitor and a GC observer each time.
 */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface Metrics {
  /** This app's own series; processMetrics() holds the process's. */
  readonly registry: Registry;
  readonly events: VerificationEvents;
  /** Counts each SMS pumping signal by country, signal and action (escalated, refused, ...). */
  readonly pumpingSignal: (event: PumpingSignal) => void;
  /** The store, with every call timed and every failure counted. */
  observeStore(store: Store): Store;
  observeSms(provider: SmsProvider): SmsProvider;
  observeEmail(provider: EmailProvider): EmailProvider;
  /** Times each request, labelled by the route that matched (never the raw path) and status. */
  readonly http: RequestHandler;
  /** The exposition text: the process's metrics and this app's. */
  text(): Promise<string>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const sends = new Counter({
    name: 'verifyd_sends_total',
    help: 'Sends that reached the send routes, by channel, country, outcome and reason (the refusing limit or the error code)',
    labelNames: ['channel', 'country', 'outcome', 'reason'] as const,
    registers: [registry],
  });
  const checks = new Counter({
    name: 'verifyd_checks_total',
    help: 'Code and link checks, by channel and outcome (approved or the error code answered)',
    labelNames: ['channel', 'outcome'] as const,
    registers: [registry],
  });
  const approvals = new Counter({
    name: 'verifyd_approvals_total',
    help: 'Verifications approved (a proof issued), by channel and country; divide by verifyd_sends_total{outcome="sent"} for the conversion',
    labelNames: ['channel', 'country'] as const,
    registers: [registry],
  });
  const pumping = new Counter({
    name: 'verifyd_pumping_signals_total',
    help: 'SMS pumping defences that fired, by destination country, signal and action',
    labelNames: ['country', 'signal', 'action'] as const,
    registers: [registry],
  });
  const providerDuration = new Histogram({
    name: 'verifyd_provider_request_duration_seconds',
    help: 'Time of each SMS/email provider call, by provider, channel and outcome (ok, refused, unknown)',
    labelNames: ['provider', 'channel', 'outcome'] as const,
    buckets: PROVIDER_BUCKETS,
    registers: [registry],
  });
  const providerErrors = new Counter({
    name: 'verifyd_provider_errors_total',
    help: "Failed provider calls, by provider, channel, outcome and error (the provider's error code, http_<status>, or the network error)",
    labelNames: ['provider', 'channel', 'outcome', 'error'] as const,
    registers: [registry],
  });
  const storeDuration = new Histogram({
    name: 'verifyd_store_operation_duration_seconds',
    help: 'Time of each store operation, by backend and operation',
    labelNames: ['backend', 'operation'] as const,
    buckets: STORE_BUCKETS,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: 'verifyd_store_errors_total',
    help: 'Failed store operations, by backend, operation and kind (unavailable, or error for anything else)',
    labelNames: ['backend', 'operation', 'kind'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'verifyd_http_request_duration_seconds',
    help: 'Time from request to response, by method, route (the matched route, or "unmatched") and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });

  const events: VerificationEvents = {
    send: ({ channel, country, outcome, reason }) =>
      sends.inc({ channel, country: country ?? '', outcome, reason: reason ?? '' }),
    check: ({ channel, outcome }) => checks.inc({ channel, outcome }),
    approve: ({ channel, country }) => approvals.inc({ channel, country: country ?? '' }),
  };

  function observeProvider<P extends SmsProvider | EmailProvider>(
    provider: P,
    channel: 'sms' | 'email',
  ): P {
    const send = provider.send.bind(provider) as (message: unknown) => Promise<unknown>;
    const observed = {
      get name() {
        return provider.name;
      },
      async send(message: unknown) {
        const started = performance.now();
        const labels = { provider: provider.name, channel };
        try {
          const receipt = await send(message);
          providerDuration.observe({ ...labels, outcome: 'ok' }, seconds(started));
          return receipt;
        } catch (error) {
          const outcome = error instanceof DeliveryFailedError ? error.outcome : 'unknown';
          providerDuration.observe({ ...labels, outcome }, seconds(started));
          providerErrors.inc({ ...labels, outcome, error: providerErrorLabel(error) });
          throw error;
        }
      },
    };
    return observed as unknown as P;
  }

  return {
    registry,
    events,
    pumpingSignal: ({ country, signal, action }) => pumping.inc({ country, signal, action }),
    observeStore: (store) => observedStore(store, storeDuration, storeErrors),
    observeSms: (provider) => observeProvider(provider, 'sms'),
    observeEmail: (provider) => observeProvider(provider, 'email'),
    http: (req, res, next) => {
      const started = performance.now();
      res.once('finish', () => {
        httpDuration.observe(
          { method: req.method, route: routeLabel(req), status: String(res.statusCode) },
          seconds(started),
        );
      });
      next();
    },
    async text() {
      return (await processMetrics().metrics()) + (await registry.metrics());
    },
  };
}

function seconds(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/**
 * The route a request matched, as declared (`/verify-phone`, later `/v2/Services/:sid`), so that
 * ids in paths never become labels; requests no route answered (a 404, or one refused by a
 * middleware such as the per-client limit) are "unmatched".
 */
function routeLabel(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : 'unmatched';
}

/** The provider's own error code when it gave one, else its HTTP status, else the network error. */
function providerErrorLabel(error: unknown): string {
  if (!(error instanceof DeliveryFailedError)) return 'exception';
  const { providerCode, httpStatus, netError } = error.failure;
  if (providerCode !== undefined) return String(providerCode);
  if (httpStatus !== undefined) return `http_${httpStatus}`;
  return netError ?? 'none';
}

type StoreHistogram = Histogram<'backend' | 'operation'>;
type StoreCounter = Counter<'backend' | 'operation' | 'kind'>;

/**
 * `store` with each method call timed by operation name. A Proxy rather than a copy of the Store
 * interface: a method added to a store (or a store of another kind) is measured without a change
 * here, and optional members (pingEach, scan) stay absent where the store has none.
 */
function observedStore(store: Store, duration: StoreHistogram, errors: StoreCounter): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'close' || typeof property === 'symbol') {
        return value;
      }
      let wrapper = wrapped.get(property);
      if (!wrapper) {
        const labels: LabelValues<'backend' | 'operation'> = {
          backend: target.backend,
          operation: property,
        };
        // One child per operation, so a call does not hash its label set again.
        const timer = duration.labels(labels);
        wrapper = (...args: unknown[]) => {
          const started = performance.now();
          // Looked up at each call, so a member replaced on the store later is the one that runs.
          const current = Reflect.get(target, property, target) as (...a: unknown[]) => unknown;
          const result = current.apply(target, args);
          // scan() returns an iterator, not a promise: it is passed through untimed.
          if (!(result instanceof Promise)) return result;
          return result.then(
            (answer) => {
              timer.observe(seconds(started));
              return answer;
            },
            (error: unknown) => {
              timer.observe(seconds(started));
              errors.inc({
                ...labels,
                kind: error instanceof StoreUnavailableError ? 'unavailable' : 'error',
              });
              throw error;
            },
          );
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}

/**
 * Checks `Authorization: Bearer <token>` in constant time: both sides are hashed first, so the
 * comparison neither stops at the first wrong byte nor reveals the token's length.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token)) && given !== '';
}

/** Whether `error` is one verifyd answers itself (as opposed to a fault). */
export function errorCodeOf(error: unknown): string {
  return error instanceof VerifydError ? error.code : 'internal_error';
}
