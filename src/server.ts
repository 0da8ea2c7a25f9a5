import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createApp } from './app';
import { isVerifydWorker, runPrimary, workerCount, workerMetrics } from './cluster';
import { type Config, loadConfig } from './config';
import { ConfigError } from './errors';
import { isLoopbackHost } from './http/loopback';
import { answerProtocolErrorsAsJson } from './http/protocol-errors';
import { createLifecycle, type Lifecycle } from './lifecycle';
import { createLogger, type Logger, settleLogs, wantsPrettyLogs } from './logger';
import { bearerMatches, createMetrics, METRICS_CONTENT_TYPE, type Metrics } from './metrics';
import { createProviders } from './providers';
import { createStore } from './store';

export interface RunningServer {
  server: Server;
  url: string;
  /**
   * Drains and stops: readiness answers 503 at once; after `delayMs` (SHUTDOWN_DELAY_MS for a
   * SIGTERM) the listener closes and idle connections go; requests in flight get up to
   * SHUTDOWN_TIMEOUT_MS to finish before their connections are cut; then the store closes.
   */
  close(options?: { delayMs?: number }): Promise<void>;
}

export interface ServerOptions {
  lifecycle?: Lifecycle;
  metrics?: Metrics;
  /** What GET /metrics answers; a cluster worker asks the primary for every worker's sum. */
  collectMetrics?: () => Promise<string>;
  /** Listen on METRICS_PORT too (default true; a cluster's primary does it for its workers). */
  metricsListener?: boolean;
  /** Log the development warnings and the start-up line (default true; workers leave it to the primary). */
  announce?: boolean;
}

/** Starts the standalone service from a validated config; resolves once it listens. */
export async function startServer(
  config: Config,
  logger: Logger,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const announce = options.announce !== false;
  if (announce) warnAboutDevelopmentSettings(config, logger);
  const store = await createStore(config, { logger });
  const providers = createProviders(config, { logger });
  const lifecycle = options.lifecycle ?? createLifecycle();
  const metrics = options.metrics ?? createMetrics();
  const collect = options.collectMetrics ?? (() => metrics.text());
  const app = createApp({
    config,
    store,
    logger,
    sms: providers.sms,
    email: providers.email,
    ...(providers.outbox ? { outbox: providers.outbox } : {}),
    lifecycle,
    metrics,
    collectMetrics: collect,
  });
  const server = createServer(
    {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // Node enforces both timeouts only when it sweeps its connections, every 30 s by default,
      // which would let a slow client stay that much longer than the limit.
      connectionsCheckingInterval: checkingInterval(config),
    },
    app,
  );
  server.keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  answerProtocolErrorsAsJson(server);
  await listen(server, config.PORT, config.HOST);
  const metricsServer =
    config.METRICS_PORT !== undefined && options.metricsListener !== false
      ? await startMetricsListener(config, collect)
      : undefined;
  const url = urlOf(server, config);
  const setup = { store: store.backend, sms: providers.sms.name, email: providers.email.name };
  if (announce)
    announceStart(config, logger, url, { outbox: providers.outbox !== undefined, setup });
  else logger.info({ url, ...setup }, 'worker listening');
  return {
    server,
    url,
    async close({ delayMs = 0 } = {}) {
      lifecycle.drain();
      if (delayMs > 0) await sleep(delayMs);
      // The dev inbox's event streams never end on their own; the server would wait for them.
      providers.outbox?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections with no request in flight would hold the close until they time out.
      // Requests that began before the drain were answered keep-alive, so their connections are
      // closed as soon as they fall idle too; requests since carry Connection: close.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      // Requests in flight, then webhook deliveries they started, share one deadline.
      const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
      const late = await Promise.race([
        closed.then(() => false),
        sleep(config.SHUTDOWN_TIMEOUT_MS).then(() => true),
      ]);
      clearInterval(sweep);
      if (late) {
        logger.warn(
          { timeoutMs: config.SHUTDOWN_TIMEOUT_MS },
          'requests still in flight after SHUTDOWN_TIMEOUT_MS; closing their connections',
        );
        server.closeAllConnections();
        await closed;
      }
      const lost = await lifecycle.settle(Math.max(0, deadline - Date.now()));
      for (const about of lost) {
        logger.error(
          about,
          'webhook delivery unfinished after SHUTDOWN_TIMEOUT_MS: stopping without it, the event is lost',
        );
      }
      await metricsServer?.close();
      await store.close();
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function listen(server: Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function urlOf(server: Server | undefined, config: Config): string {
  const address = server?.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  return `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
}

/**
 * Where a person finds the docs and, with mock providers, the dev inbox: on this machine's name
 * when the server listens on every address, since http://0.0.0.0 is not a page anybody can open.
 */
function announceStart(
  config: Config,
  logger: Logger,
  url: string,
  { outbox, workers, setup }: { outbox: boolean; workers?: number; setup?: Record<string, string> },
): void {
  const wildcard = config.HOST === '0.0.0.0' || config.HOST === '::';
  const browsable = wildcard ? url.replace(/\/\/[^/]+:/, '//localhost:') : url;
  const devInbox = outbox && config.NODE_ENV !== 'production' ? `${browsable}/dev` : undefined;
  logger.info(
    {
      url,
      ...setup,
      docs: `${browsable}/docs`,
      ...(devInbox ? { devInbox } : {}),
      ...(workers ? { workers } : {}),
    },
    `verifyd listening on ${url}${workers ? ` with ${workers} workers` : ''}; API docs at ${browsable}/docs` +
      (devInbox ? `, dev inbox (codes and links the mock providers sent) at ${devInbox}` : ''),
  );
}

/**
 * METRICS_PORT: /metrics alone on a port of its own, e.g. one only the monitoring network reaches.
 * Plain node:http: nothing else is served there, not even the API's error handling.
 */
async function startMetricsListener(
  config: Config,
  collect: () => Promise<string>,
): Promise<{ close(): Promise<void> }> {
  const answer = (res: ServerResponse, status: number, code: string, message: string) => {
    res
      .writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify({ error: { code, message } }));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      answer(res, 404, 'not_found', `No route for ${req.method} ${path}.`);
      return;
    }
    if (
      config.METRICS_TOKEN !== undefined &&
      !bearerMatches(req.headers.authorization, config.METRICS_TOKEN)
    ) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      answer(res, 401, 'unauthorized', 'GET /metrics needs the METRICS_TOKEN bearer token.');
      return;
    }
    collect().then(
      (text) => {
        res
          .writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-store' })
          .end(text);
      },
      () => answer(res, 500, 'internal_error', 'Something went wrong on our side.'),
    );
  });
  await listen(server, config.METRICS_PORT as number, config.HOST);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * How often Node looks for connections past their header or request timeout: often enough that a
 * slow client is cut within a quarter of the shorter timeout after it, at most once a second.
 */
function checkingInterval(config: Config): number {
  const shorter = Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS);
  return Math.min(1000, Math.max(25, Math.floor(shorter / 4)));
}

/**
 * What a start without production settings must say out loud. Production refuses such settings
 * outright (src/config.ts); development runs with them, so the log is where the operator learns.
 */
function warnAboutDevelopmentSettings(config: Config, logger: Logger): void {
  if (config.devSecrets.length > 0) {
    const names = config.devSecrets.join(', ');
    logger.warn(
      { secrets: config.devSecrets },
      `${names} not set: using random secrets made at this start. Codes, links and proofs stop ` +
        'working at the next start, and instances sharing a store disagree (a code sent by one ' +
        'fails on another) until they are all given the same secrets. Set them before exposing ' +
        'this service.',
    );
  }
  if (config.NODE_ENV !== 'production' && !isLoopbackHost(config.HOST)) {
    logger.warn(
      { host: config.HOST, nodeEnv: config.NODE_ENV },
      `EXPOSED DEVELOPMENT SERVER: listening on ${config.HOST}, beyond this machine, with ` +
        `NODE_ENV=${config.NODE_ENV}. Production's checks are off: mock providers, the memory ` +
        'store and missing secrets are accepted. Set NODE_ENV=production for a real deployment, ' +
        'or HOST=127.0.0.1 to listen on this machine only.' +
        (config.DEV_ROUTES_PUBLIC
          ? ' DEV_ROUTES_PUBLIC=true: GET /dev/outbox shows the codes and links the mock ' +
            'providers sent to anybody who can reach this port.'
          : ''),
    );
  }
}

async function run(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // One line per problem, each prefixed, so every line stands alone in a log collector.
      process.stderr.write(error.problems.map((problem) => `verifyd: ${problem}\n`).join(''));
      process.exit(1);
    }
    throw error;
  }
  const worker = isVerifydWorker();
  const logger = createLogger({
    level: config.LOG_LEVEL,
    pretty: wantsPrettyLogs(config.NODE_ENV),
    // Which worker wrote a line, when several share the output.
    ...(worker ? { base: { worker: cluster.worker?.id, pid: process.pid } } : {}),
  });
  const workers = workerCount(config);
  if (!worker && workers > 1) {
    await runClusterPrimary(config, logger, workers);
    return;
  }
  const metrics = createMetrics();
  const running = await startServer(config, logger, {
    metrics,
    ...(worker
      ? { collectMetrics: workerMetrics(metrics.registry), metricsListener: false, announce: false }
      : {}),
  });
  onStopSignal(config, logger, (signal) => running.close({ delayMs: delayFor(signal, config) }));
}

/** SIGTERM is a process manager asking: wait for the balancer. SIGINT is a person at a terminal. */
function delayFor(signal: NodeJS.Signals, config: Config): number {
  return signal === 'SIGTERM' ? config.SHUTDOWN_DELAY_MS : 0;
}

/**
 * Stops cleanly on SIGTERM or SIGINT, once: `stop` drains, then the process exits 0. A stop that
 * overruns its own bound by five seconds (a stuck store close) exits 1 rather than hang.
 */
function onStopSignal(
  config: Config,
  logger: Logger,
  stop: (signal: NodeJS.Signals) => Promise<void>,
): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const bound = delayFor(signal, config) + config.SHUTDOWN_TIMEOUT_MS + 5000;
    const exit = (code: number) => void settleLogs().then(() => process.exit(code));
    setTimeout(() => exit(1), bound).unref();
    stop(signal).then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * WORKERS > 1: this process forks the workers, serves METRICS_PORT with their sum, and on a stop
 * signal passes it on and waits for every worker to drain. Secrets made up for development are
 * made once, here, and handed to every worker: each making its own would make workers refuse each
 * other's codes.
 */
async function runClusterPrimary(config: Config, logger: Logger, workers: number): Promise<void> {
  warnAboutDevelopmentSettings(config, logger);
  const shared = Object.fromEntries(
    config.devSecrets.map((name) => [
      name,
      config[name as 'OTP_SECRET' | 'JWT_SECRET' | 'WEBHOOK_SECRET'],
    ]),
  );
  const primary = runPrimary(workers, logger, shared);
  const metricsServer =
    config.METRICS_PORT !== undefined
      ? await startMetricsListener(config, primary.metrics)
      : undefined;
  onStopSignal(config, logger, async (signal) => {
    await primary.stop(signal, delayFor(signal, config) + config.SHUTDOWN_TIMEOUT_MS + 2000);
    await metricsServer?.close();
  });
  await primary.ready;
  announceStart(config, logger, urlOf(undefined, config), {
    outbox: config.SMS_PROVIDER === 'mock' || config.EMAIL_PROVIDER === 'mock',
    workers,
  });
}

/**
 * The standalone service as `npx verifyd` and `npm start` run it (bin/verifyd.js): reads ./.env
 * and the environment, exits with one line on a bad setting or a failed start, and stops cleanly
 * on SIGTERM/SIGINT. It never rejects, so a caller has nothing to handle.
 */
export function main(): Promise<void> {
  return run().catch((error: unknown) => {
    process.stderr.write(`verifyd: failed to start: ${(error as Error).message}\n`);
    return settleLogs().then(() => process.exit(1));
  });
}

// `npm run dev` runs this file itself through tsx.
if (require.main === module) void main();
