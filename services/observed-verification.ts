import type { ErrorRequestHandler } from 'express';
import { DeliveryFailedError, VerifydError } from '../src/errors';
import { errorCodeOf, type SendOutcome, type VerificationEvents } from '../src/metrics';
import type { Target } from './targets';
import type { VerificationService } from './verification';

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
  if (error instanceof VerifydError && error.limit)
    return { outcome: 'refused', reason: error.limit };
  if (error instanceof VerifydError && error.status === 429) {
    return { outcome: 'refused', reason: error.code };
  }
  return { outcome: 'error', reason: errorCodeOf(error) };
}

function countryOf(target: Target): string | undefined {
  return target.channel === 'sms' ? target.country : undefined;
}

/**
 * The verification service with every send, check and approval reported to `events`. It wraps
 * the service from outside, so the flows themselves carry no metrics code: each method's result
 * or error is what gets counted.
 */
export function observeVerification(
  service: VerificationService,
  events: VerificationEvents,
): VerificationService {
  const sent = async <T>(target: Target, run: () => Promise<T>): Promise<T> => {
    const country = countryOf(target);
    try {
      const result = await run();
      events.send({ channel: target.channel, country, outcome: 'sent' });
      return result;
    } catch (error) {
      events.send({ channel: target.channel, country, ...sendFailure(error) });
      if (typeof error === 'object' && error !== null) reported.add(error);
      throw error;
    }
  };
  const checked = async <T extends { to: string }>(
    channel: 'sms' | 'email',
    country: () => string | undefined,
    run: () => Promise<T>,
  ): Promise<T> => {
    try {
      const result = await run();
      events.check({ channel, outcome: 'approved' });
      events.approve({ channel, country: country() });
      return result;
    } catch (error) {
      events.check({ channel, outcome: errorCodeOf(error) });
      throw error;
    }
  };
  return {
    ...service,
    sendPhoneCode: (target, context) => sent(target, () => service.sendPhoneCode(target, context)),
    sendEmailLink: (target, context) => sent(target, () => service.sendEmailLink(target, context)),
    checkPhoneCode: (target, ...rest) =>
      checked(
        'sms',
        () => target.country,
        () => service.checkPhoneCode(target, ...rest),
      ),
    confirmEmailToken: (...args) =>
      checked(
        'email',
        () => undefined,
        () => service.confirmEmailToken(...args),
      ),
  };
}

/** Route-level refusals of a send, and the reason each counts under. */
const ROUTE_REFUSALS: Partial<Record<string, { outcome: SendOutcome; reason: string }>> = {
  // SMS_ALLOWED_COUNTRIES (a provider's own country refusal is a DeliveryFailedError, counted above).
  country_not_allowed: { outcome: 'refused', reason: 'country' },
  challenge_required: { outcome: 'refused', reason: 'challenge' },
  challenge_failed: { outcome: 'refused', reason: 'challenge' },
  // The per-client request limit, which refuses before the body is read.
  rate_limited: { outcome: 'refused', reason: 'client_requests' },
  store_unavailable: { outcome: 'error', reason: 'store_unavailable' },
};

const SEND_PATHS: Record<string, 'sms' | 'email' | 'resend'> = {
  '/verify-phone': 'sms',
  '/verify-email': 'email',
  '/resend-verification': 'resend',
};

/**
 * `handler` (the router's error handler), which also counts the sends refused before they reach
 * the service: by the country allow-list, bot protection or the per-client request limit, which
 * fraud dashboards must see next to the sends the service refused. Invalid input is not a send.
 */
export function countRouteRefusals(
  handler: ErrorRequestHandler,
  events: VerificationEvents,
): ErrorRequestHandler {
  return (error, req, res, next) => {
    const kind = SEND_PATHS[req.path];
    const refusal =
      kind && !reported.has(error as object) ? ROUTE_REFUSALS[errorCodeOf(error)] : undefined;
    if (kind && refusal && !(error instanceof DeliveryFailedError)) {
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
      if (channel) {
        const country = error instanceof VerifydError ? error.details.country : undefined;
        events.send({
          channel,
          country: typeof country === 'string' && country !== 'unknown' ? country : undefined,
          ...refusal,
        });
      }
    }
    handler(error, req, res, next);
  };
}
