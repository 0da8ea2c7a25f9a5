import express, { type Express } from 'express';
import { createVerificationRouter, type VerificationRouterDeps } from '../routes/index';
import { createErrorHandler, notFound } from './http/error-handler';

export type AppDeps = VerificationRouterDeps;

/**
 * The standalone app: the verification router, which brings its own headers, request log and
 * /health, on a bare Express app with the settings only an app can hold. It does not listen, so
 * tests drive the same composition the server runs.
 */
export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Every answer is a one-off (a POST result, or no-store); hashing each body for an ETag that no
  // cache will ever revalidate only costs CPU.
  app.set('etag', false);
  app.set('trust proxy', config.TRUST_PROXY);
  app.use(createVerificationRouter(deps));
  app.use(notFound);
  app.use(createErrorHandler(logger));
  return app;
}
