import { type RequestHandler, Router } from 'express';
import { countRouteRefusals } from '../services/observed-verification';
import type { PumpingSignal } from '../services/pumping';
import { type Clock, cryptoRandom, type RandomSource, systemClock } from '../services/runtime';
import type { Config } from '../src/config';
import { parseBodies } from '../src/http/body';
import { identifyClient } from '../src/http/client-key';
import { createErrorHandler } from '../src/http/error-handler';
import { ipRateLimit } from '../src/http/rate-limit';
import { requestLog } from '../src/http/request-log';
import { apiSecurityHeaders } from '../src/http/security-headers';
import type { Lifecycle } from '../src/lifecycle';
import type { Logger } from '../src/logger';
import type { VerificationEvents } from '../src/metrics';
import type { ApiRegistry } from '../src/openapi';
import type { Outbox } from '../src/providers/mock';
import type { EmailProvider, SmsProvider } from '../src/providers/types';
import type { Store } from '../src/store/types';
import { wireServices } from '../src/wiring';
import {
  challengeDocs,
  devInboxDocs,
  devOutboxDocs,
  healthDocs,
  TWILIO_BASIC_AUTH,
  twilioCompatDocs,
  verificationDocs,
} from './api-docs';
import { createChallengeRouter } from './challenges';
import { createDevOutboxRouter } from './dev-outbox';
import { createHealthHandler, createReadyHandler, liveHandler } from './health';
import { createTwilioCompatRouter } from './twilio-compat';
import { createVerificationRoutes, FORM_PATHS } from './verification';

export interface VerificationRouterDeps {
  config: Config;
  store: Store;
  sms: SmsProvider;
  email: EmailProvider;
  logger: Logger;
  /**
   * The mock providers' outbox; when given outside production, /dev/outbox is mounted, for
   * clients on this machine only unless DEV_ROUTES_PUBLIC is set.
   */
  outbox?: Outbox;
  clock?: Clock;
  random?: RandomSource;
  /**
   * The public URL this router is reached at, e.g. https://app.example.com/verify when an app
   * mounts it under /verify. Email links open its /verify-email-token unless EMAIL_LINK_BASE_URL
   * is set. Defaults to PUBLIC_URL, then (development only) http://HOST:PORT.
   */
  publicUrl?: string;
  /** Serve GET /health, /health/live and /health/ready from this router too (default true). */
  health?: boolean;
  /**
   * While it drains (after SIGTERM), the health routes answer 503; with `track`, webhook
   * deliveries are handed to it, so that a stop can wait for them.
   */
  lifecycle?: Pick<Lifecycle, 'draining'> & Partial<Pick<Lifecycle, 'track'>>;
  /** Told of every send, check and approval, e.g. to count them (src/metrics.ts). */
  events?: VerificationEvents;
  /** Where the routes mounted here are described, for the OpenAPI document. */
  api?: ApiRegistry;
  /** Called for every SMS pumping signal (country, signal, action), e.g. to count it in metrics. */
  onPumpingSignal?: (event: PumpingSignal) => void;
}

/** The base URL links are built on: what the router is told, else where it listens. */
function publicBase(config: Config, publicUrl: string | undefined): string {
  const given = publicUrl ?? config.PUBLIC_URL;
  if (given !== undefined) return given;
  // A wildcard address is where the server listens, not an address anybody can open.
  const wildcard = config.HOST === '0.0.0.0' || config.HOST === '::';
  const host = wildcard
    ? 'localhost'
    : config.HOST.includes(':')
      ? `[${config.HOST}]`
      : config.HOST;
  return `http://${host}:${config.PORT}`;
}

/** `path` under `base`, keeping any path the base already has (https://x.example/verify/…). */
export function underBase(base: string, path: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path}`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

/**
 * Everything verifyd serves, as one Express router an existing app can mount under any path:
 * security headers, the request log, /health, per-client limits, bot challenges, the five
 * verification routes, the dev outbox, and its own error handler so errors keep the documented
 * JSON shape inside a host app too. The standalone server is this router on a bare app, so an
 * embedding app gets everything the server has.
 */
export function createVerificationRouter(deps: VerificationRouterDeps): Router {
  const { config, store, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? cryptoRandom;
  const base = publicBase(config, deps.publicUrl);
  const services = wireServices({
    config,
    store,
    sms: deps.sms,
    email: deps.email,
    logger,
    clock,
    random,
    defaultLinkBase: underBase(base, 'verify-email-token'),
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.onPumpingSignal ? { onPumpingSignal: deps.onPumpingSignal } : {}),
    ...(deps.lifecycle?.track ? { track: deps.lifecycle.track } : {}),
  });
  // Sends the per-client request limit refuses never reach the service: counted here.
  const errorHandler = deps.events
    ? countRouteRefusals(createErrorHandler(logger), deps.events)
    : createErrorHandler(logger);
  const router = Router();
  router.use(apiSecurityHeaders, requestLog(logger), warnOnUntrustedProxy(config, logger));
  // Before the per-client limit: an orchestrator's probes must not use up a client's allowance.
  // That makes the probe free for anybody, so it must stay cheap: one store round trip, and nothing
  // about the store's contents (counts of keys scan the whole store; they are `cli stats`).
  if (deps.health !== false) {
    const botProtection = { kind: config.BOT_PROTECTION, mode: config.BOT_PROTECTION_MODE };
    const probe = {
      store,
      timeoutMs: config.STORE_TIMEOUT_MS,
      ...(deps.lifecycle ? { lifecycle: deps.lifecycle } : {}),
    };
    router.get('/health', createHealthHandler({ ...probe, describe: () => ({ botProtection }) }));
    router.get('/health/live', liveHandler);
    router.get('/health/ready', createReadyHandler(probe));
    deps.api?.add(...healthDocs());
  }
  // The client key every per-client limit counts, worked out once; /health above needs none.
  router.use(
    identifyClient(config.IPV6_SUBNET, () =>
      // The text itself is not logged: it is whatever a client or proxy chose to send.
      logger.warn(
        'A client address is not an IP address (check TRUST_PROXY and what the proxy writes into X-Forwarded-For); every such client shares one set of limits',
      ),
    ),
  );
  const requestLimit = ipRateLimit({
    store,
    windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
    max: config.RATE_LIMIT_MAX,
  });
  // Before the per-client request limit: its callers are authenticated app servers, which all
  // share one address (the per-client limits of its sends key on the DeviceIp they pass). Only
  // requests that fail authentication count against their client's limit, so that nobody
  // guesses credentials at full speed.
  if (services.twilio) {
    router.use(
      '/v2',
      createTwilioCompatRouter({
        twilio: services.twilio,
        authToken: config.TWILIO_COMPAT_AUTH_TOKEN ?? '',
        ipv6Subnet: config.IPV6_SUBNET,
        urlOf: (path) => underBase(base, `v2/${path}`),
        logger,
        limitUnauthenticated: requestLimit,
      }),
    );
    deps.api
      ?.addSecurityScheme(TWILIO_BASIC_AUTH, {
        type: 'http',
        scheme: 'basic',
        description:
          'TWILIO_COMPAT_ACCOUNT_SID as the user, TWILIO_COMPAT_AUTH_TOKEN as the password',
      })
      .add(...twilioCompatDocs());
  }
  router.use(requestLimit);
  // After the per-client limit, so a client over its limit costs no parsing.
  router.use(parseBodies(FORM_PATHS));
  // With bot protection off there is nothing to serve, and every request would still walk
  // through the challenge routes on its way to the verification routes.
  if (services.pow) {
    router.use(createChallengeRouter({ pow: services.pow }));
    deps.api?.add(...challengeDocs());
  }
  router.use(
    createVerificationRoutes({ verification: services.verification, purposes: config.PURPOSES }),
  );
  deps.api?.add(...verificationDocs({ botProtection: config.BOT_PROTECTION !== 'off' }));
  if (deps.outbox && config.NODE_ENV !== 'production') {
    router.use(createDevOutboxRouter(deps.outbox, { public: config.DEV_ROUTES_PUBLIC }));
    deps.api?.add(...devOutboxDocs(), ...devInboxDocs());
  }
  router.use(errorHandler);
  return router;
}

/**
 * "trust proxy" is a setting of the host app, which a router cannot set. With TRUST_PROXY set
 * and the host app not trusting any proxy, every client behind the proxy would share the proxy's
 * address and one per-client limit, so say so once, at the first request.
 */
function warnOnUntrustedProxy(config: Config, logger: Logger): RequestHandler {
  let checked = config.TRUST_PROXY === false;
  return (req, _res, next) => {
    if (!checked) {
      checked = true;
      if (!req.app.get('trust proxy')) {
        logger.warn(
          'TRUST_PROXY is set but the app this router is mounted in does not trust any proxy: ' +
            "call app.set('trust proxy', config.TRUST_PROXY) so per-client limits see client addresses",
        );
      }
    }
    next();
  };
}
