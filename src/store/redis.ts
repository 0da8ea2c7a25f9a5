import { type CommandParser, createClient, defineScript, ErrorReply } from 'redis';
import { StoreUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from './ttl';
import type {
  Admission,
  AdmissionOutcome,
  AttemptOptions,
  AttemptOutcome,
  CounterState,
  SecretExtras,
  Store,
  StoreEntry,
} from './types';

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL, as in REDIS_URL. */
  url: string;
  keyPrefix?: string;
  /** Longest wait for one command before it counts as unavailable (STORE_TIMEOUT_MS). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Lua shared by putSecret and admit. The hash holds h (the secret's hash), n and m (attempts in
 * the open and the bound lane), and b and d (binding and data) when given. Binding and data
 * arrive as '' when absent and as '+' and the value when present, so an empty value stays
 * distinct from none. The DEL drops an earlier secret's fields along with anything else there.
 */
const WRITE_SECRET = `
local function writeSecret(key, hash, ttl, binding, data)
  redis.call('DEL', key)
  redis.call('HSET', key, 'h', hash, 'n', 0, 'm', 0)
  if binding ~= '' then redis.call('HSET', key, 'b', string.sub(binding, 2)) end
  if data ~= '' then redis.call('HSET', key, 'd', string.sub(data, 2)) end
  redis.call('EXPIRE', key, ttl)
end`;

/** An optional extra as WRITE_SECRET and attemptSecret receive it. */
const optionalArg = (value: string | undefined) => (value === undefined ? '' : `+${value}`);

/**
 * Every multi-step operation is a Lua script so that it costs one round trip and runs atomically
 * on the server; nothing is read, decided in Node and written back.
 */
const scripts = {
  /**
   * Fixed-window counter. The EXPIRE also runs when the key somehow has no TTL (-1), so a counter
   * can never become permanent and lock a caller out forever.
   */
  windowIncrement: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: `
local count = redis.call('INCR', KEYS[1])
local ttl = -1
if count > 1 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = ARGV[1] * 1000
end
return {count, ttl}`,
    parseCommand(parser: CommandParser, key: string, windowSeconds: number) {
      parser.pushKey(key);
      parser.push(String(windowSeconds));
    },
    transformReply: (reply: unknown) => reply as [number, number],
  }),

  /**
   * Refund for a counter: DECR keeps the TTL, but on an absent key it would create a permanent -1,
   * hence the checks. Anything other than a positive integer string is left alone.
   */
  decrement: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: `
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < 1 then return 0 end
return redis.call('DECR', KEYS[1])`,
    parseCommand(parser: CommandParser, key: string) {
      parser.pushKey(key);
    },
    transformReply: (reply: unknown) => reply as number,
  }),

  /**
   * admit() in one script. KEYS: the blockers, then the gate (when there is one), then the
   * counters, then the markers of the counters that have one, in counter order, then the secret
   * (when there is one). ARGV: blocker count, gate flag, counter count, gate value, gate TTL,
   * secret flag, secret hash, secret TTL, secret binding, secret data, then per counter its
   * window, max, marker flag and marker TTL. Replies {0, counted...}, {1, index, value} blocked, {2, 0, value} gated, or
   * {3, index, pttl} exceeded.
   * Counters are counted first and taken back when one of them is full: the script runs alone,
   * so nobody sees the counts in between, and an admitted send (the usual case) reads no counter
   * before counting it. A counter this call opened is deleted rather than left at 0.
   */
  admit: defineScript({
    SCRIPT: `
${WRITE_SECRET}
local blockers, hasGate, counters = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, blockers do
  local value = redis.call('GET', KEYS[i])
  if value then return {1, i - 1, value} end
end
if hasGate == 1 then
  local gate = KEYS[blockers + 1]
  if not redis.call('SET', gate, ARGV[4], 'NX', 'EX', ARGV[5]) then
    return {2, 0, redis.call('GET', gate) or ''}
  end
end
local first = blockers + hasGate
local nextMarker = first + counters + 1
local counts, opened, markers = {}, {}, {}
for i = 1, counters do
  local arg = 10 + (i - 1) * 4
  local key = KEYS[first + i]
  counts[i] = 1
  if ARGV[arg + 3] == '1' then
    local marker = KEYS[nextMarker]
    nextMarker = nextMarker + 1
    if redis.call('SET', marker, '1', 'NX', 'EX', ARGV[arg + 4]) then
      markers[i] = marker
    else
      counts[i] = 0
    end
  end
  if counts[i] == 1 then
    local count = redis.call('INCR', key)
    opened[i] = count == 1
    if count > tonumber(ARGV[arg + 2]) then
      for j = 1, i do
        if counts[j] == 1 then
          local counted = KEYS[first + j]
          if opened[j] then redis.call('DEL', counted) else redis.call('DECR', counted) end
          if markers[j] then redis.call('DEL', markers[j]) end
        end
      end
      local ttl = redis.call('PTTL', key)
      if ttl == -1 then
        redis.call('EXPIRE', key, ARGV[arg + 1])
        ttl = ARGV[arg + 1] * 1000
      end
      return {3, i - 1, ttl}
    end
    if opened[i] or redis.call('PTTL', key) < 0 then
      redis.call('EXPIRE', key, ARGV[arg + 1])
    end
  end
end
if ARGV[6] == '1' then writeSecret(KEYS[nextMarker], ARGV[7], ARGV[8], ARGV[9], ARGV[10]) end
return {0, unpack(counts)}`,
    parseCommand(parser: CommandParser, admission: Admission, key: (key: string) => string) {
      const { blockers = [], gate, counters, secret } = admission;
      const keys = [...blockers];
      if (gate) keys.push(gate.key);
      for (const counter of counters) keys.push(counter.key);
      for (const counter of counters) if (counter.distinct) keys.push(counter.distinct.key);
      if (secret) keys.push(secret.key);
      parser.push(String(keys.length));
      for (const k of keys) parser.pushKey(key(k));
      parser.push(
        String(blockers.length),
        gate ? '1' : '0',
        String(counters.length),
        gate?.value ?? '',
        String(gate?.ttlSeconds ?? 0),
        secret ? '1' : '0',
        secret?.hash ?? '',
        String(secret?.ttlSeconds ?? 0),
        optionalArg(secret?.binding),
        optionalArg(secret?.data),
      );
      for (const counter of counters) {
        parser.push(
          String(counter.windowSeconds),
          String(counter.max),
          counter.distinct ? '1' : '0',
          String(counter.distinct?.ttlSeconds ?? 0),
        );
      }
    },
    transformReply: (reply: unknown) => reply as [number, ...(number | string)[]],
  }),

  /** Replaces any earlier secret together with its attempt counts, binding and data. */
  putSecret: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: `
${WRITE_SECRET}
writeSecret(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1`,
    parseCommand(
      parser: CommandParser,
      key: string,
      hash: string,
      ttlSeconds: number,
      extras: SecretExtras,
    ) {
      parser.pushKey(key);
      parser.push(hash, String(ttlSeconds), optionalArg(extras.binding), optionalArg(extras.data));
    },
    transformReply: (reply: unknown) => reply as number,
  }),

  /**
   * Store.attemptSecret, steps and all, in one script. KEYS: the secret, the blocker when there is
   * one, then the failure counters. ARGV: hash, maxAttempts, blocker flag, binding ('' or '+'
   * and the binding), then per failure counter its window and max. Returns {0} missing,
   * {1, n[, data]} match, {2, n} locked, {3, n} mismatch, {4, 0, value} blocked, or
   * {5, index, pttl} exhausted. A locked secret is kept (not deleted) so that every later attempt
   * in its lane stays locked until the TTL ends. Anything at the key that is not a secret hash
   * counts as missing, as in the memory store.
   */
  attemptSecret: defineScript({
    SCRIPT: `
local hasBlocker = ARGV[3] == '1'
if hasBlocker then
  local value = redis.call('GET', KEYS[2])
  if value then return {4, 0, value} end
end
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {0} end
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then return {0} end
local lane = 'n'
if ARGV[4] ~= '' then
  if redis.call('HGET', KEYS[1], 'b') ~= string.sub(ARGV[4], 2) then return {0} end
  lane = 'm'
end
local first = 2
if hasBlocker then first = 3 end
local failures = #KEYS - first + 1
for i = 1, failures do
  local key = KEYS[first + i - 1]
  local count = tonumber(redis.call('GET', key))
  if count and count >= tonumber(ARGV[4 + i * 2]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, ARGV[3 + i * 2])
      ttl = ARGV[3 + i * 2] * 1000
    end
    return {5, i - 1, ttl}
  end
end
local function wrong()
  for i = 1, failures do
    local key = KEYS[first + i - 1]
    local count = redis.call('INCR', key)
    if count == 1 or redis.call('PTTL', key) < 0 then
      redis.call('EXPIRE', key, ARGV[3 + i * 2])
    end
  end
end
local n = redis.call('HINCRBY', KEYS[1], lane, 1)
if n > tonumber(ARGV[2]) then return {2, n} end
if stored == ARGV[1] then
  local data = redis.call('HGET', KEYS[1], 'd')
  redis.call('DEL', KEYS[1])
  if data then return {1, n, data} end
  return {1, n}
end
wrong()
return {3, n}`,
    parseCommand(
      parser: CommandParser,
      key: string,
      hash: string,
      maxAttempts: number,
      options: AttemptOptions,
      prefixed: (key: string) => string,
    ) {
      const { blocker, binding, failures = [] } = options;
      const keys = [key];
      if (blocker !== undefined) keys.push(blocker);
      for (const failure of failures) keys.push(failure.key);
      parser.push(String(keys.length));
      for (const k of keys) parser.pushKey(prefixed(k));
      parser.push(
        hash,
        String(maxAttempts),
        blocker === undefined ? '0' : '1',
        optionalArg(binding),
      );
      for (const failure of failures)
        parser.push(String(failure.windowSeconds), String(failure.max));
    },
    transformReply: (reply: unknown) => reply as [number, number?, (string | number)?],
  }),
};

function buildClient(url: string, timeoutMs: number) {
  return createClient({
    url,
    scripts,
    // Queued commands would wait for a server that may never return; callers must fail closed now.
    disableOfflineQueue: true,
    // run() gives every call a deadline that also covers commands already on the wire; the
    // client's own timeout (5 s by default) would only add an AbortSignal per command.
    commandOptions: { timeout: 0 },
    // The notifications are a Redis Enterprise feature; a plain server only costs a handshake.
    maintNotifications: 'disabled',
    socket: {
      // Connecting runs in the background while calls fail fast, so it may take longer than a
      // call; a slow (TLS, remote) handshake must not be cut off on every attempt.
      connectTimeout: Math.max(timeoutMs, 5000),
      // Never give up: the process stays up answering 503 and recovers when Redis is back.
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 10), 2000) + Math.floor(Math.random() * 100),
    },
  });
}

type Client = ReturnType<typeof buildClient>;

/** A store call waiting for Redis: when it must have answered (performance.now() ms), and how to fail it. */
interface PendingCall {
  deadline: number;
  reject(error: unknown): void;
}

/** Server replies that mean "cannot serve right now" rather than "this command is wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|OOM)\b/;

/** Glob metacharacters must not turn a KEY_PREFIX into a wider SCAN pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export class RedisStore implements Store {
  readonly backend = 'redis' as const;
  private readonly client: Client;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly connecting: Promise<void>;
  /** Only the first error of an outage is logged at warn, so a long outage does not flood logs. */
  private outageLogged = false;
  private closed = false;
  /** Calls waiting for an answer, oldest first; see run(). */
  private readonly inFlight = new Set<PendingCall>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? '';
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.sweepEveryMs = Math.max(1, Math.ceil(this.timeoutMs / 4));
    this.logger = options.logger;
    this.client = buildClient(options.url, this.timeoutMs);
    // Without an 'error' listener EventEmitter would throw and take the process down.
    this.client.on('error', (err: unknown) => {
      if (this.outageLogged) {
        this.logger?.debug({ err }, 'redis store still unavailable');
      } else {
        this.outageLogged = true;
        this.logger?.warn({ err }, 'redis store unavailable; reconnecting');
      }
    });
    this.client.on('ready', () => {
      if (this.outageLogged) this.logger?.info('redis store reachable again');
      this.outageLogged = false;
    });
    // Connect in the background so the store exists (and /health can answer) while Redis is down.
    this.connecting = this.client.connect().then(
      () => undefined,
      (err: unknown) => {
        if (!this.closed) this.logger?.error({ err }, 'redis store stopped connecting');
      },
    );
  }

  /**
   * Resolves true once connected, or false after `ms`; never rejects. Lets start-up give a healthy
   * server a moment so the first requests do not fail while the socket is still opening.
   */
  async waitUntilReady(ms: number): Promise<boolean> {
    if (this.client.isReady) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const ready = this.connecting.then(() => this.client.isReady);
    try {
      return await Promise.race([ready, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private key(key: string): string {
    return this.prefix + key;
  }

  /**
   * node-redis only times out commands still waiting to be written; one already on the wire to a
   * hung server would wait forever, so every call gets a deadline. The deadlines share one
   * interval timer instead of a timer and a race per call, which showed in the benchmark; a call
   * therefore fails between timeoutMs and a quarter more after it started.
   */
  private run<T>(command: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = { deadline: performance.now() + this.timeoutMs, reject };
      this.inFlight.add(call);
      this.sweeper ??= setInterval(() => this.expireCalls(), this.sweepEveryMs).unref();
      // A call the sweeper already failed is no longer in the set; its late answer is dropped.
      const settle = (outcome: () => void) => {
        if (this.inFlight.delete(call)) outcome();
      };
      try {
        command().then(
          (value) => settle(() => resolve(value)),
          (err: unknown) => settle(() => reject(this.translate(err))),
        );
      } catch (err) {
        settle(() => reject(this.translate(err)));
      }
    });
  }

  /** Fails the calls past their deadline. The set is in start order, so deadlines only grow. */
  private expireCalls(): void {
    const now = performance.now();
    for (const call of this.inFlight) {
      if (call.deadline > now) return;
      this.inFlight.delete(call);
      call.reject(
        new StoreUnavailableError(
          'redis',
          new Error(`redis did not answer within ${this.timeoutMs} ms`),
        ),
      );
    }
  }

  private translate(err: unknown): unknown {
    if (err instanceof ErrorReply && !TRANSIENT_REPLY.test(err.message)) return err;
    return new StoreUnavailableError('redis', err);
  }

  async get(key: string): Promise<string | undefined> {
    const value = await this.run(() => this.client.get(this.key(key)));
    return value ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    assertTtl(ttlSeconds);
    await this.run(() =>
      this.client.set(this.key(key), value, { expiration: { type: 'EX', value: ttlSeconds } }),
    );
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    const reply = await this.run(() =>
      this.client.set(this.key(key), value, {
        condition: 'NX',
        expiration: { type: 'EX', value: ttlSeconds },
      }),
    );
    return reply !== null;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.run(() => this.client.del(this.key(key)))) > 0;
  }

  async increment(key: string, windowSeconds: number): Promise<CounterState> {
    assertTtl(windowSeconds);
    const [count, ttl] = await this.run(() =>
      this.client.windowIncrement(this.key(key), windowSeconds),
    );
    return { count: Number(count), resetMs: Math.max(0, Number(ttl)) };
  }

  async decrement(key: string): Promise<void> {
    await this.run(() => this.client.decrement(this.key(key)));
  }

  async admit(admission: Admission): Promise<AdmissionOutcome> {
    assertAdmissionTtls(admission);
    const [status, ...fields] = await this.run(() =>
      this.client.admit(admission, (key) => this.key(key)),
    );
    const [index, detail] = fields;
    switch (Number(status)) {
      case 1:
        return { status: 'blocked', index: Number(index), value: String(detail) };
      case 2:
        return { status: 'gated', value: String(detail) };
      case 3:
        return { status: 'exceeded', index: Number(index), resetMs: Math.max(0, Number(detail)) };
      default:
        // One flag per counter, in order.
        return { status: 'admitted', counted: fields.map((flag) => flag === 1) };
    }
  }

  async putSecret(
    key: string,
    hash: string,
    ttlSeconds: number,
    extras: SecretExtras = {},
  ): Promise<void> {
    assertTtl(ttlSeconds);
    await this.run(() => this.client.putSecret(this.key(key), hash, ttlSeconds, extras));
  }

  async attemptSecret(
    key: string,
    hash: string,
    maxAttempts: number,
    options: AttemptOptions = {},
  ): Promise<AttemptOutcome> {
    assertFailureWindows(options.failures ?? []);
    const [status, n, detail] = await this.run(() =>
      this.client.attemptSecret(key, hash, maxAttempts, options, (k) => this.key(k)),
    );
    const attempts = Number(n);
    switch (Number(status)) {
      case 4:
        return { status: 'blocked', value: String(detail) };
      case 5:
        return { status: 'exhausted', index: attempts, resetMs: Math.max(0, Number(detail)) };
      case 1:
        return detail === undefined
          ? { status: 'match', attempts }
          : { status: 'match', attempts, data: String(detail) };
      case 2:
        return { status: 'locked' };
      case 3:
        return { status: 'mismatch', attempts, remaining: maxAttempts - attempts };
      default:
        return { status: 'missing' };
    }
  }

  async ping(): Promise<void> {
    await this.run(() => this.client.ping());
  }

  readonly scan = async function* (this: RedisStore): AsyncIterable<StoreEntry> {
    const match = `${escapeGlob(this.prefix)}*`;
    let cursor = '0';
    do {
      const page = await this.run(() => this.client.scan(cursor, { MATCH: match, COUNT: 200 }));
      cursor = String(page.cursor);
      // Issued together, node-redis pipelines these PTTLs into one write.
      const ttls = await Promise.all(
        page.keys.map((full) => this.run(() => this.client.pTTL(String(full)))),
      );
      for (const [i, full] of page.keys.entries()) {
        const ttl = Number(ttls[i]);
        if (ttl === -2) continue; // expired or deleted between SCAN and PTTL
        yield {
          key: String(full).slice(this.prefix.length),
          ttlMs: ttl === -1 ? Number.POSITIVE_INFINITY : ttl,
        };
      }
    } while (cursor !== '0');
  };

  async cleanup(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    if (!this.client.isOpen) return;
    // close() waits for in-flight replies, which a hung server never sends; destroy after a bound.
    let timer: NodeJS.Timeout | undefined;
    const graceful = this.client.close().catch(() => undefined);
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.timeoutMs);
    });
    await Promise.race([graceful, bounded]);
    clearTimeout(timer);
    if (this.client.isOpen) this.client.destroy();
  }
}
