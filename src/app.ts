import express, { type Express } from 'express';
import { createHealthHandler } from '../routes/health';
import { createVerificationRouter, type VerificationRouterDeps } from '../routes/index';
import { countByKind } from '../services/store-stats';
import { createErrorHandler, notFound } from './http/error-handler';
import { requestLog } from './http/request-log';
import { apiSecurityHeaders } from './http/security-headers';

export type AppDeps = VerificationRouterDeps;

/** Builds the standalone app from injected parts; it does not listen, so tests drive it directly. */
export function createApp(deps: AppDeps): Express {
  const { config, logger, store } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Every answer is a one-off (a POST result, or no-store); hashing each body for an ETag that no
  // cache will ever revalidate only costs CPU.
  app.set('etag', false);
  app.set('trust proxy', config.TRUST_PROXY);
  app.use(apiSecurityHeaders);
  app.use(requestLog(logger));
  // A route on the app itself, not a mounted router, so other requests do not pass through it.
  app.get(
    '/health',
    createHealthHandler({
      store,
      describe: async () => {
        const counts = await countByKind(store);
        return {
          botProtection: { kind: config.BOT_PROTECTION, mode: config.BOT_PROTECTION_MODE },
          ...(counts ? { keys: counts } : {}),
        };
      },
    }),
  );
  app.use(createVerificationRouter(deps));
  app.use(notFound);
  app.use(createErrorHandler(logger));
  return app;
}
