import type { ErrorRequestHandler } from 'express';
import { DeliveryFailedError, VerifydError } from '../src/errors';
import { errorCodeOf, type SendOutcome, type VerificationEvents } from '../src/metrics';
import type { Target } from './targets';

/**
 * The hooks the verification flows call to report to metrics (src/metrics.ts), kept here so that
 * the flows carry a line each: what a send, a refusal or a check counts as is decided below.
 */

/** Errors a send already reported, so the error handler's tap does not count them twice. */
const reported = new WeakSet<object>();

/** What a failed send counts as: which limit refused it, or how delivery or the store failed. */
function sendFailure(error: unknown): { outcome: SendOutcome; reason: string } {
  if (error instanceof DeliveryFailedError) {
    return {
      outcome: error.outcome === 'unknown' ? 'unknown' : 'delivery_failed',
      reason: error.code,
    };
  }
  if (error instanceof VerifydError && error.limit) {
    return { outcome: 'refused', reason: error.limit };
  }
  if (error instanceof VerifydError) {
    const reason = ROUTE_REFUSALS[error.code];
    if (reason) return { outcome: 'refused', reason };
    if (error.status === 429) return { outcome: 'refused', reason: error.code };
  }
  return { outcome: 'error', reason: errorCodeOf(error) };
}

/** Refusals that name no send limit, and the reason each counts under. */
const ROUTE_REFUSALS: Partial<Record<string, string>> = {
  // SMS_ALLOWED_COUNTRIES (a provider's own refusal of a country is a DeliveryFailedError).
  country_not_allowed: 'country',
  challenge_required: 'challenge',
  challenge_failed: 'challenge',
  // The per-client request limit, which refuses before the body is read.
  rate_limited: 'client_requests',
  // The SMS pumping defences (services/pumping): each refusal under its own code.
  number_type_not_allowed: 'number_type_not_allowed',
  prefix_blocked: 'prefix_blocked',
  country_limit_reached: 'country_limit_reached',
  destination_suspended: 'destination_suspended',
};

export function countryOf(target: Target): string | undefined {
  return target.channel === 'sms' ? target.country : undefined;
}

function reportSend(events: VerificationEvents, target: Target, error?: unknown): void {
  const channel = target.channel;
  const country = countryOf(target);
  if (error === undefined) {
    events.send({ channel, country, outcome: 'sent' });
    return;
  }
  events.send({ channel, country, ...sendFailure(error) });
  if (typeof error === 'object' && error !== null) reported.add(error);
}

/** Runs a send to `target` and reports whether it went out, and if not, why. */
export async function observeSend<T>(
  events: VerificationEvents | undefined,
  target: Target,
  run: () => Promise<T>,
): Promise<T> {
  if (!events) return run();
  try {
    const result = await run();
    reportSend(events, target);
    return result;
  } catch (error) {
    reportSend(events, target, error);
    throw error;
  }
}

/**
 * Runs what guards a send to `target` (the SMS pumping defences), reporting a refusal it made
 * itself. A send it lets through reports itself (observeSend), so nothing is counted twice.
 */
export async function observeGuard<T>(
  events: VerificationEvents | undefined,
  target: Target,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const already = typeof error === 'object' && error !== null && reported.has(error);
    if (events && !already) reportSend(events, target, error);
    throw error;
  }
}

/** Runs a check that may refuse a send to `target` (the country allow-list), reporting a refusal. */
export function observeRefusal(
  events: VerificationEvents | undefined,
  target: Target,
  check: () => void,
): void {
  try {
    check();
  } catch (error) {
    if (events) reportSend(events, target, error);
    throw error;
  }
}

interface Checks {
  checkPhoneCode(...args: never[]): Promise<unknown>;
  confirmEmailToken(...args: never[]): Promise<unknown>;
}

/** `service` with each code or link check reported: approved, or the error code it answered. */
export function observeChecks<S extends Checks>(
  events: VerificationEvents | undefined,
  service: S,
): S {
  if (!events) return service;
  const checked =
    <A extends unknown[], R>(channel: 'sms' | 'email', run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        const result = await run(...args);
        events.check({ channel, outcome: 'approved' });
        return result;
      } catch (error) {
        events.check({ channel, outcome: errorCodeOf(error) });
        throw error;
      }
    };
  return {
    ...service,
    checkPhoneCode: checked('sms', service.checkPhoneCode),
    confirmEmailToken: checked('email', service.confirmEmailToken),
  };
}

const SEND_PATHS: Record<string, 'sms' | 'email' | 'resend'> = {
  '/verify-phone': 'sms',
  '/verify-email': 'email',
  '/resend-verification': 'resend',
};

/**
 * `handler` (the router's error handler), which also counts the sends refused before they reach
 * the service, by the per-client request limit (or a store failure of that limit): fraud
 * dashboards must see them next to the sends the service refused. Invalid input is not a send.
 */
export function countRouteRefusals(
  handler: ErrorRequestHandler,
  events: VerificationEvents,
): ErrorRequestHandler {
  return (error, req, res, next) => {
    const kind = SEND_PATHS[req.path];
    if (kind && !reported.has(error as object) && error instanceof VerifydError) {
      const code = error.code;
      if (code === 'rate_limited' || code === 'store_unavailable') {
        const body = req.body as { phone?: unknown; email?: unknown } | undefined;
        // A resend refused before its body was read has no channel to count under.
        const channel =
          kind !== 'resend'
            ? kind
            : typeof body?.phone === 'string'
              ? 'sms'
              : typeof body?.email === 'string'
                ? 'email'
                : undefined;
        if (channel) events.send({ channel, ...sendFailure(error) });
      }
    }
    handler(error, req, res, next);
  };
}
