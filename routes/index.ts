import { Router } from 'express';
import { createBotProtection } from '../services/bot-protection';
import { createCaptchaService } from '../services/captcha';
import { createPowChallengeService } from '../services/pow-challenge';
import { type Clock, cryptoRandom, type RandomSource, systemClock } from '../services/runtime';
import { createVerificationService } from '../services/verification';
import type { Config } from '../src/config';
import { createErrorHandler } from '../src/http/error-handler';
import { ipRateLimit } from '../src/http/rate-limit';
import type { Logger } from '../src/logger';
import type { Outbox } from '../src/providers/mock';
import type { EmailProvider, SmsProvider } from '../src/providers/types';
import type { Store } from '../src/store/types';
import { createChallengeRouter } from './challenges';
import { createDevOutboxRouter } from './dev-outbox';
import { addVerificationRoutes } from './verification';

export interface VerificationRouterDeps {
  config: Config;
  store: Store;
  sms: SmsProvider;
  email: EmailProvider;
  logger: Logger;
  /** The mock providers' outbox; when given outside production, /dev/outbox is mounted. */
  outbox?: Outbox;
  clock?: Clock;
  random?: RandomSource;
  /**
   * Absolute URL of this router's GET /verify-email-token, used for email links when
   * EMAIL_LINK_BASE_URL is unset. Defaults to http://HOST:PORT/verify-email-token.
   */
  confirmPageUrl?: string;
}

/**
 * Everything verifyd serves, as one Express router an existing app can mount under any path:
 * per-IP limits, bot challenges, the five verification routes, the dev outbox, and its own error
 * handler so errors keep the documented JSON shape inside a host app too.
 */
export function createVerificationRouter(deps: VerificationRouterDeps): Router {
  const { config, store, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? cryptoRandom;
  const now = () => clock.now();

  const verification = createVerificationService({
    config,
    store,
    sms: deps.sms,
    email: deps.email,
    logger,
    clock,
    random,
    defaultLinkBase:
      deps.confirmPageUrl ?? `http://${config.HOST}:${config.PORT}/verify-email-token`,
  });
  const captcha =
    config.BOT_PROTECTION === 'captcha'
      ? createCaptchaService({ store, config, secret: config.OTP_SECRET, now })
      : undefined;
  const pow =
    config.BOT_PROTECTION === 'pow'
      ? createPowChallengeService({ store, config, secret: config.OTP_SECRET, now })
      : undefined;
  const botProtection = createBotProtection({
    mode: config.BOT_PROTECTION,
    policy: config.BOT_PROTECTION_MODE,
    freeSends: config.BOT_PROTECTION_FREE_SENDS,
    store,
    ...(captcha ? { captcha } : {}),
    ...(pow ? { pow } : {}),
  });

  const errorHandler = createErrorHandler(logger);
  const router = Router();
  router.use(
    ipRateLimit({
      store,
      windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
      max: config.RATE_LIMIT_MAX,
    }),
  );
  // With bot protection off there is nothing to serve, and every request would still walk
  // through the challenge routes on its way to the verification routes.
  if (config.BOT_PROTECTION !== 'off') {
    router.use(
      createChallengeRouter({
        botProtection,
        ...(captcha ? { captcha } : {}),
        ...(pow ? { pow } : {}),
      }),
    );
  }
  addVerificationRoutes(router, {
    config,
    verification,
    ...(config.BOT_PROTECTION === 'off' ? {} : { botProtection }),
    errorHandler,
  });
  if (deps.outbox && config.NODE_ENV !== 'production')
    router.use(createDevOutboxRouter(deps.outbox));
  router.use(errorHandler);
  return router;
}
