/**
 * The process under load: verifyd (with the store named by STORE), a bare Express app that parses
 * the same JSON, that bare app behind verifyd's per-IP limit alone, the reference app (the least
 * work the contract asks of a send and a check), or the naive seed pattern (a code kept in Redis
 * with SETEX, read and deleted on a check), for comparison. Prints its URL on stdout and runs
 * until killed.
 *
 * The apps that send codes do so through the mock SMS provider and serve /dev/outbox, where the
 * bench reads the codes back over HTTP to check them right.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { createClient, createCluster } from 'redis';
import { createDevOutboxRouter } from '../routes/dev-outbox';
import { parsePhone } from '../services/targets';
import { createApp } from '../src/app';
import { type Config, loadConfig } from '../src/config';
import { hmac } from '../src/crypto';
import { clientOf, identifyClient } from '../src/http/client-key';
import { ipRateLimit } from '../src/http/rate-limit';
import { createLogger } from '../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../src/providers/mock';
import type { SmsProvider } from '../src/providers/types';
import { createStore } from '../src/store';
import { completeStore } from '../src/store/bridge';
import type { Store } from '../src/store/types';

/**
 * Room for every code of one send phase: the bench empties the outbox after reading it, so the
 * outbox never fills up and never pays for dropping its oldest message.
 */
const OUTBOX_CAPACITY = 1_000_000;

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
 * HMAC, counted; and a send hands the code to the SMS provider (the mock, as verifyd's). No
 * recipient limits, lock, security headers or log: it is not a usable service, only the ceiling
 * that verifyd's routes can be held against.
 */
function reference(app: express.Express, given: Store, config: Config, sms: SmsProvider): void {
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
    // A send sends: the same mock provider as verifyd's, so the bench can read the code back.
    await sms.send({ to, body: `Your code is ${code}` });
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

/**
 * The record layout of bench/record-study (not verifyd's store) behind the same front as the
 * reference app: every piece of a recipient's send and check state in one packed string, so a send
 * to a new number creates one key and a wrong code none. It is the least Redis work measured for
 * what verifyd must keep (cooldown, sends per window, the client's distinct recipients, the SMS
 * budget, failure windows, attempt lanes, a truncated code HMAC), with one pending code, one
 * purpose and one client marker: a floor for the store, not a service. Single Redis only (a send's
 * script spans the recipient's, the client's and the budget's keys).
 */
async function recordFloor(app: express.Express, config: Config, sms: SmsProvider): Promise<void> {
  const redis = createClient({ url: process.env.REDIS_URL });
  await redis.connect();
  const study = (name: string) =>
    readFileSync(path.join(__dirname, '..', '..', 'bench', 'record-study', `${name}.lua`), 'utf8');
  const [sendSha, checkSha] = await Promise.all(
    ['send', 'attempt'].map((name) =>
      redis.scriptLoad([study('record'), study('store-key'), study(name)].join('\n')),
    ),
  );
  const policy = { allowUnassigned: true };
  const prefix = config.KEY_PREFIX;
  const recordKey = (to: string) =>
    `${prefix}recipient:sms:{${hmac(config.OTP_SECRET, 'recipient', to).slice(0, 22)}}`;
  const codeHash = (to: string, code: string) => hmac(config.OTP_SECRET, to, code).slice(0, 10);
  const seconds = () => Math.floor(Date.now() / 1000);
  app.post('/verify-phone', async (req, res) => {
    const { to } = parsePhone((req.body as { phone: string }).phone, policy);
    const code = String(randomInt(0, 10 ** config.OTP_LENGTH)).padStart(config.OTP_LENGTH, '0');
    const client = clientOf(req);
    const reply = (await redis.evalSha(sendSha as string, {
      keys: [recordKey(to), `${prefix}limit:ip-targets:{${client}}`, `${prefix}limit:sms-budget`],
      arguments: [
        String(seconds()),
        String(config.SEND_COOLDOWN_SECONDS),
        String(config.SEND_TARGET_WINDOW_SECONDS),
        String(config.SEND_MAX_PER_TARGET),
        hmac(config.OTP_SECRET, 'client', client).slice(0, 4),
        randomBytes(6).toString('base64url'),
        codeHash(to, code),
        String(config.OTP_TTL_SECONDS),
        '3600',
        String(config.IP_MAX_TARGETS_PER_HOUR),
        '3600',
        String(config.SMS_HOURLY_BUDGET),
      ],
    })) as string[];
    if (reply[0] !== 'admitted') {
      res.status(429).json({ error: { code: 'rate_limited', message: 'Wait.' } });
      return;
    }
    await sms.send({ to, body: `Your code is ${code}` });
    const expiresAt = new Date(Date.now() + config.OTP_TTL_SECONDS * 1000).toISOString();
    res.status(202).json({ success: true, status: 'pending', channel: 'sms', to, expiresAt });
  });
  app.post('/verify-phone-code', async (req, res) => {
    const body = req.body as { phone: string; code: string };
    const { to } = parsePhone(body.phone, policy);
    const reply = (await redis.evalSha(checkSha as string, {
      keys: [recordKey(to)],
      arguments: [
        String(seconds()),
        codeHash(to, body.code),
        String(config.OTP_MAX_ATTEMPTS),
        String(config.TARGET_FAILURE_WINDOW_SECONDS),
        String(config.TARGET_MAX_FAILURES),
        String(config.TARGET_MAX_DAILY_FAILURES),
      ],
    })) as string[];
    if (reply[0] === 'match') res.json({ verified: true, phone: to });
    else res.status(400).json({ error: { code: reply[0], message: 'No match.' } });
  });
}

/**
 * The naive pattern verifyd's design notes started from: the code itself in Redis under the
 * number, SETEX on a send, GET on a check and DEL when it matches. No parsing, limits, hashing,
 * attempt counting or atomicity: it is not safe to run, only the least Redis and Node work a code
 * check can be done with, the reference row the bench holds verifyd's CPU against.
 */
async function seed(app: express.Express, sms: SmsProvider): Promise<void> {
  const nodes = process.env.REDIS_CLUSTER_NODES;
  const redis = nodes
    ? createCluster({ rootNodes: nodes.split(',').map((node) => ({ url: `redis://${node}` })) })
    : createClient({ url: process.env.REDIS_URL });
  await redis.connect();
  const key = (phone: string) => `otp:phone:${phone}`;
  app.post('/verify-phone', async (req, res) => {
    const { phone } = req.body as { phone: string };
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await redis.setEx(key(phone), 600, code);
    await sms.send({ to: phone, body: `Code: ${code}` });
    res.json({ success: true });
  });
  app.post('/verify-phone-code', async (req, res) => {
    const { phone, code } = req.body as { phone: string; code: string };
    const stored = await redis.get(key(phone));
    if (stored === null) {
      res.status(400).json({ error: 'OTP expired' });
    } else if (stored !== code) {
      res.status(400).json({ error: 'Invalid code' });
    } else {
      await redis.del(key(phone));
      res.json({ verified: true });
    }
  });
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  let app: express.Express;
  if (kind === 'bare') {
    app = express();
    app.use(express.json({ limit: '10kb' }));
    echo(app);
  } else if (kind === 'seed') {
    const outbox = new Outbox(OUTBOX_CAPACITY);
    app = express();
    app.use(express.json({ limit: '10kb' }));
    await seed(app, createMockSmsProvider(outbox));
    app.use(createDevOutboxRouter(outbox));
  } else if (kind === 'limited' || kind === 'reference' || kind === 'record') {
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
    if (kind === 'reference' || kind === 'record') {
      const outbox = new Outbox(OUTBOX_CAPACITY);
      if (kind === 'reference') reference(app, store, config, createMockSmsProvider(outbox));
      else await recordFloor(app, config, createMockSmsProvider(outbox));
      app.use(createDevOutboxRouter(outbox));
    } else {
      echo(app);
    }
  } else {
    const config = loadConfig();
    const logger = createLogger({ level: config.LOG_LEVEL });
    const store = await createStore(config, { logger });
    const outbox = new Outbox(OUTBOX_CAPACITY);
    // With the outbox, verifyd serves /dev/outbox itself (NODE_ENV is not production here).
    app = createApp({
      config,
      store,
      logger,
      sms: createMockSmsProvider(outbox),
      email: createMockEmailProvider(outbox),
      outbox,
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
