/**
 * The process under load: verifyd (with the store named by STORE), a bare Express app that parses
 * the same JSON, or that bare app behind verifyd's per-IP limit alone, for comparison. Prints its
 * URL on stdout and runs until killed.
 */
import express from 'express';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { ipRateLimit } from '../src/http/rate-limit';
import { createLogger } from '../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../src/providers/mock';
import { createStore } from '../src/store';

/** The same handler for the bare app and the floor app: parse the JSON, answer 202. */
function echo(app: express.Express): void {
  app.post('/echo', (req, res) => {
    res.status(202).json({ success: true, to: (req.body as { phone?: string }).phone });
  });
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  let app: express.Express;
  if (kind === 'bare') {
    app = express();
    app.use(express.json({ limit: '10kb' }));
    echo(app);
  } else if (kind === 'limited') {
    // The floor: the bare app plus only the per-IP limit every verifyd route must pass through,
    // on the configured store. No verifyd route can be faster than this.
    const config = loadConfig();
    const store = await createStore(config, { logger: createLogger({ level: config.LOG_LEVEL }) });
    app = express();
    app.use(
      ipRateLimit({
        store,
        windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
        max: config.RATE_LIMIT_MAX,
      }),
    );
    app.use(express.json({ limit: '10kb' }));
    echo(app);
  } else {
    const config = loadConfig();
    const logger = createLogger({ level: config.LOG_LEVEL });
    const store = await createStore(config, { logger });
    const outbox = new Outbox(16);
    app = createApp({
      config,
      store,
      logger,
      sms: createMockSmsProvider(outbox),
      email: createMockEmailProvider(outbox),
    });
  }
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (typeof address === 'object' && address)
      process.stdout.write(`http://127.0.0.1:${address.port}\n`);
  });
}

void main();

// Exit normally on a signal, so `node --cpu-prof` can write its profile.
process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
