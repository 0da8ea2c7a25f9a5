import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type Express, type RequestHandler } from 'express';
import { documentationDocs, metricsDocs } from '../routes/api-docs';
import { createDocsRouter } from '../routes/docs';
import { createVerificationRouter, type VerificationRouterDeps } from '../routes/index';
import { createMetricsHandler } from '../routes/metrics';
import { cors } from './http/cors';
import { createErrorHandler, notFound } from './http/error-handler';
import type { Lifecycle } from './lifecycle';
import { createMetrics, type Metrics } from './metrics';
import { ApiRegistry, type JsonSchema } from './openapi';

export interface AppDeps extends VerificationRouterDeps {
  /**
   * After SIGTERM: readiness fails and every answer closes its connection; webhook deliveries
   * are tracked for the stop to wait for.
   */
  lifecycle?: VerificationRouterDeps['lifecycle'];
  /** This app's metrics; a new registry by default, so apps in one process never share counts. */
  metrics?: Metrics;
  /**
   * What GET /metrics answers with; by default this app's metrics. A worker of a cluster asks the
   * primary for the sum over every worker instead (src/cluster.ts).
   */
  collectMetrics?: () => Promise<string>;
}

export const VERSION = packageVersion();

/**
 * The standalone app: the verification router, which brings its own headers, request log and
 * /health, on a bare Express app with the settings only an app can hold, plus what a deployment
 * runs around it: CORS, metrics, the OpenAPI document and its docs page. It does not listen, so
 * tests drive the same composition the server runs.
 */
export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const api = new ApiRegistry();
  const app = express();
  app.disable('x-powered-by');
  // Every answer is a one-off (a POST result, or no-store); hashing each body for an ETag that no
  // cache will ever revalidate only costs CPU.
  app.set('etag', false);
  app.set('trust proxy', config.TRUST_PROXY);
  app.use(metrics.http);
  if (deps.lifecycle) app.use(closeWhileDraining(deps.lifecycle));
  app.use(cors(config.CORS_ORIGINS));

  // On PORT only in development or behind a token; METRICS_PORT serves it apart (src/server.ts).
  const metricsHere =
    config.METRICS_PORT === undefined &&
    (config.NODE_ENV === 'development' || config.METRICS_TOKEN !== undefined);
  if (metricsHere) {
    // Before the per-client limit: a scrape every few seconds must not use up an allowance.
    app.get(
      '/metrics',
      createMetricsHandler({
        token: config.METRICS_TOKEN,
        collect: deps.collectMetrics ?? (() => metrics.text()),
      }),
    );
    api.add(...metricsDocs({ token: config.METRICS_TOKEN !== undefined }));
    if (config.METRICS_TOKEN !== undefined) {
      api.addSecurityScheme('metricsToken', {
        type: 'http',
        scheme: 'bearer',
        description: 'METRICS_TOKEN',
      });
    }
  }

  let document: JsonSchema | undefined;
  app.use(createDocsRouter(() => document as JsonSchema));
  api.add(...documentationDocs());

  app.use(
    createVerificationRouter({
      ...deps,
      store: metrics.observeStore(deps.store),
      sms: metrics.observeSms(deps.sms),
      email: metrics.observeEmail(deps.email),
      events: deps.events ?? metrics.events,
      onPumpingSignal: deps.onPumpingSignal ?? metrics.pumpingSignal,
      api,
    }),
  );
  app.use(notFound);
  app.use(createErrorHandler(logger));

  document = api.document({
    title: 'verifyd',
    version: VERSION,
    tags: ['Phone', 'Email', 'Bot protection', 'Development', 'Operations'],
    description:
      'Phone and email verification: one-time codes by SMS and signed, single-use email links. Every error answers {"error":{"code","message",...}}; see the README for limits and settings.',
  });
  // The contract tests read it from here, to check every answer against what is served.
  app.locals.openapi = document;
  return app;
}

/**
 * While the process drains, every answer asks its client to close the connection, so keep-alive
 * clients reconnect to another instance instead of finding this one's socket closed under them.
 */
function closeWhileDraining(lifecycle: Pick<Lifecycle, 'draining'>): RequestHandler {
  return (_req, res, next) => {
    if (lifecycle.draining) res.set('Connection', 'close');
    next();
  };
}

function packageVersion(): string {
  // src/app.ts runs from the source (tests, tsx) and from dist/src/app.js.
  for (const up of ['..', path.join('..', '..')]) {
    try {
      const file = path.join(__dirname, up, 'package.json');
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'verifyd' && parsed.version) return parsed.version;
    } catch {
      // Not at this level.
    }
  }
  return '0.0.0';
}
