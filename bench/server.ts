/**
 * The process under load: either verifyd (with the store named by STORE) or a bare Express app that
 * parses the same JSON, for comparison. Prints its URL on stdout and runs until killed.
 */
import express from 'express';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../src/providers/mock';
import { createStore } from '../src/store';

async function main(): Promise<void> {
  const kind = process.argv[2];
  let app: express.Express;
  if (kind === 'bare') {
    app = express();
    app.use(express.json({ limit: '10kb' }));
    app.post('/echo', (req, res) => {
      res.status(202).json({ success: true, to: (req.body as { phone?: string }).phone });
    });
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
