import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createApp } from './app';
import { type Config, loadConfig } from './config';
import { ConfigError } from './errors';
import { isLoopbackHost } from './http/loopback';
import { createLogger, type Logger } from './logger';
import { createProviders } from './providers';
import { createStore } from './store';

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts the standalone service from a validated config; resolves once it listens. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  warnAboutDevelopmentSettings(config, logger);
  const store = await createStore(config, { logger });
  const providers = createProviders(config, { logger });
  const app = createApp({
    config,
    store,
    logger,
    sms: providers.sms,
    email: providers.email,
    ...(providers.outbox ? { outbox: providers.outbox } : {}),
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info(
    { url, store: store.backend, sms: providers.sms.name, email: providers.email.name },
    `verifyd listening on ${url}`,
  );
  return {
    server,
    url,
    async close() {
      // The dev inbox's event streams never end on their own; the server would wait for them.
      providers.outbox?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await store.close();
    },
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
  const logger = createLogger({ level: config.LOG_LEVEL });
  const running = await startServer(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // In-flight requests get a grace period; a stuck connection must not block the exit forever.
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    running.close().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * The standalone service as `npx verifyd` and `npm start` run it (bin/verifyd.js): reads ./.env
 * and the environment, exits with one line on a bad setting or a failed start, and stops cleanly
 * on SIGTERM/SIGINT. It never rejects, so a caller has nothing to handle.
 */
export function main(): Promise<void> {
  return run().catch((error: unknown) => {
    process.stderr.write(`verifyd: failed to start: ${(error as Error).message}\n`);
    process.exit(1);
  });
}

// `npm run dev` runs this file itself through tsx.
if (require.main === module) void main();
