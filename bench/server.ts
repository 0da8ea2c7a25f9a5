/**
 * The process under load: verifyd (with the store named by STORE), a bare Express app that parses
 * the same JSON, that bare app behind verifyd's per-IP limit alone, or the reference app (the least
 * work the contract asks of a send and a check), for comparison. Prints its URL on stdout and runs
 * until killed.
 */

import { randomInt } from 'node:crypto';
import express from 'express';
import { parsePhone } from '../services/targets';
import { createApp } from '../src/app';
import { type Config, loadConfig } from '../src/config';
import { hmac } from '../src/crypto';
import { identifyClient } from '../src/http/client-key';
import { ipRateLimit } from '../src/http/rate-limit';
import { createLogger } from '../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../src/providers/mock';
import { createStore } from '../src/store';
import { completeStore } from '../src/store/bridge';
import type { Store } from '../src/store/types';

/** The same handler for the bare app and the floor app: parse the JSON, answer 202. */
function echo(app: express.Express): void {
  app.post('/echo', (req, res) => {
    res.status(202).json({ success: true, to: (req.body as { phone?: string }).phone });
  });
}

/**
 * What any implementation of the contract must do for a first send and a check, and nothing more:
 * the per-IP limit on the shared store, E.164 parsing with libphonenumber-js, and one store call
 * each: the send cooldown started and one HMAC of the code stored together, or one attempt at the
 * HMAC, counted. No recipient limits, lock, security headers or log: it is not a usable service,
 * only the ceiling that verifyd's routes can be held against.
 */
function reference(app: express.Express, given: Store, config: Config): void {
  const store = completeStore(given);
  const policy = { allowUnassigned: true };
  const codeKey = (phone: string) => `reference:code:${phone}`;
  const codeHash = (phone: string, code: string) => hmac(config.OTP_SECRET, phone, code);
  app.post('/verify-phone', async (req, res) => {
    const { to } = parsePhone((req.body as { phone: string }).phone, policy);
    const code = String(randomInt(0, 10 ** config.OTP_LENGTH)).padStart(config.OTP_LENGTH, '0');
    const now = Date.now();
    const outcome = await store.admit({
      gate: {
        key: `reference:cooldown:${to}`,
        value: String(now + config.SEND_COOLDOWN_SECONDS * 1000),
        ttlSeconds: config.SEND_COOLDOWN_SECONDS,
      },
      counters: [],
      secret: {
        key: codeKey(to),
        hash: codeHash(to, code),
        ttlSeconds: config.OTP_TTL_SECONDS,
        keep: 1,
        maxAttempts: config.OTP_MAX_ATTEMPTS,
        binding: 'reference',
      },
    });
    if (outcome.status !== 'admitted') {
      res.status(429).json({ error: { code: 'rate_limited', message: 'Wait.' } });
      return;
    }
    const expiresAt = new Date(now + config.OTP_TTL_SECONDS * 1000).toISOString();
    res.status(202).json({ success: true, status: 'pending', channel: 'sms', to, expiresAt });
  });
  app.post('/verify-phone-code', async (req, res) => {
    const body = req.body as { phone: string; code: string };
    const { to } = parsePhone(body.phone, policy);
    const outcome = await store.attempt({
      key: codeKey(to),
      hash: codeHash(to, body.code),
      maxAttempts: config.OTP_MAX_ATTEMPTS,
    });
    if (outcome.status === 'match') res.json({ verified: true, phone: to });
    else res.status(400).json({ error: { code: outcome.status, message: 'No match.' } });
  });
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  let app: express.Express;
  if (kind === 'bare') {
    app = express();
    app.use(express.json({ limit: '10kb' }));
    echo(app);
  } else if (kind === 'limited' || kind === 'reference') {
    // The floor: the bare app plus only the per-IP limit every verifyd route must pass through,
    // on the configured store. No verifyd route can be faster than this.
    const config = loadConfig();
    const store = await createStore(config, { logger: createLogger({ level: config.LOG_LEVEL }) });
    app = express();
    // The per-client limit keys on what identifyClient derived, as in verifyd's own router.
    app.use(identifyClient(config.IPV6_SUBNET));
    app.use(
      ipRateLimit({
        store,
        windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
        max: config.RATE_LIMIT_MAX,
      }),
    );
    app.use(express.json({ limit: '10kb' }));
    if (kind === 'reference') reference(app, store, config);
    else echo(app);
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
