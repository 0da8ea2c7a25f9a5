import type { RequestHandler } from 'express';
import { VerifydError } from '../src/errors';
import { bearerMatches, METRICS_CONTENT_TYPE } from '../src/metrics';

export interface MetricsRouteOptions {
  /** METRICS_TOKEN: when set, a scrape must present it as a bearer token. */
  token?: string | undefined;
  /** The exposition text: this app's metrics, or with WORKERS those of every worker. */
  collect: () => Promise<string>;
}

/** GET /metrics for Prometheus; 401 without the right bearer token when one is set. */
export function createMetricsHandler({ token, collect }: MetricsRouteOptions): RequestHandler {
  return async (req, res) => {
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      res.set('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new VerifydError('unauthorized', 'GET /metrics needs the METRICS_TOKEN bearer token.');
    }
    const text = await collect();
    res.set('Cache-Control', 'no-store').type(METRICS_CONTENT_TYPE).send(text);
  };
}
