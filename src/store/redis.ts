import { type CommandParser, createClient, createCluster, defineScript, ErrorReply } from 'redis';
import { StoreUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { slotOf } from './redis-slot';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from './ttl';
import type {
  Admission,
  AdmissionCounter,
  AdmissionOutcome,
  AttemptOptions,
  AttemptOutcome,
  CounterState,
  FailureLimit,
  SecretExtras,
  ServerState,
  Store,
  StoreEntry,
} from './types';

export interface RedisStoreOptions {
  /**
   * redis:// or rediss:// URL, as in REDIS_URL. With `clusterNodes` only its credentials and
   * scheme count, for every node of the cluster.
   */
  url: string;
  /** Redis Cluster seed nodes (host:port), as in REDIS_CLUSTER_NODES; absent for one server. */
  clusterNodes?: readonly string[];
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

/** Options every connection shares, to the one server or to each node of a cluster. */
function connectionOptions(timeoutMs: number, maxBackoffMs = 2000) {
  return {
    // Queued commands would wait for a server that may never return; callers must fail closed now.
    disableOfflineQueue: true,
    // run() gives every call a deadline that also covers commands already on the wire; the
    // client's own timeout (5 s by default) would only add an AbortSignal per command.
    commandOptions: { timeout: 0 },
    // The notifications are a Redis Enterprise feature; a plain server only costs a handshake.
    maintNotifications: 'disabled' as const,
    socket: {
      // Connecting runs in the background while calls fail fast, so it may take longer than a
      // call; a slow (TLS, remote) handshake must not be cut off on every attempt.
      connectTimeout: Math.max(timeoutMs, 5000),
      // Never give up: the process stays up answering 503 and recovers when Redis is back.
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 10), maxBackoffMs) + Math.floor(Math.random() * 100),
    },
  };
}

function buildClient(url: string, timeoutMs: number) {
  return createClient({ url, scripts, ...connectionOptions(timeoutMs) });
}

/**
 * A cluster client: it learns which node serves which slot from the seeds, routes each command
 * (and each script, by its first key) to that node, and follows MOVED and ASK redirections by
 * itself. Credentials and TLS come from REDIS_URL and apply to every node it discovers.
 */
function buildCluster(url: string, nodes: readonly string[], timeoutMs: number) {
  const parsed = new URL(url);
  const scheme = parsed.protocol === 'rediss:' ? 'rediss' : 'redis';
  const auth = parsed.username || parsed.password ? `${parsed.username}:${parsed.password}@` : '';
  // The cluster client asks for a new slot map when a node it reconnects to still does not
  // answer; retrying a dead node every half second at most is what lets a promoted replica's
  // slots come back within about that much of the promotion.
  const connection = connectionOptions(timeoutMs, 500);
  return createCluster({
    rootNodes: nodes.map((node) => ({ url: `${scheme}://${auth}${node}` })),
    defaults: {
      ...connection,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(scheme === 'rediss' ? { socket: { ...connection.socket, tls: true } } : {}),
    },
    scripts,
    // Every slot is served by its primary: a replica may lag, and a single-use secret read there
    // could be used twice.
    useReplicas: false,
    // A node that stops answering is usually a failover: ask the cluster for the new map soon,
    // instead of after the default 5 s, so its slots come back as soon as a replica is promoted.
    topologyRefreshOnReconnectionAttemptStrategy: 200,
  });
}

type Client = ReturnType<typeof buildClient>;
type Cluster = ReturnType<typeof buildCluster>;

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
  /**
   * The commands, on one server or a cluster. Both clients take the same commands and scripts;
   * the cluster client routes each by its first key, so this type serves both.
   */
  private readonly client: Client;
  /** Set in cluster mode, for what only a cluster has: its nodes. */
  private readonly cluster: Cluster | undefined;
  /**
   * Cluster mode only: one PING to each primary, so that /health reports a cluster with one shard
   * down as degraded (its other slots still serve) rather than down. See Store.pingEach.
   */
  readonly pingEach?: () => Promise<ServerState[]>;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly connecting: Promise<void>;
  /** Only the first error of an outage is logged at warn, so a long outage does not flood logs. */
  private outageLogged = false;
  private closed = false;
  /** When the cluster's slot map was last asked for (performance.now() ms); see refreshSlotMap. */
  private lastSlotRefresh = Number.NEGATIVE_INFINITY;
  /** Calls waiting for an answer, oldest first; see run(). */
  private readonly inFlight = new Set<PendingCall>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? '';
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.sweepEveryMs = Math.max(1, Math.ceil(this.timeoutMs / 4));
    this.logger = options.logger;
    if (options.clusterNodes?.length) {
      this.cluster = buildCluster(options.url, options.clusterNodes, this.timeoutMs);
      this.client = this.cluster as unknown as Client;
      // The cluster reports each node's errors separately; they count as the store's.
      this.cluster.on('node-error', (err: unknown) => this.onError(err));
      this.cluster.on('connect', () => this.onReady());
      this.pingEach = () => this.pingPrimaries();
    } else {
      this.cluster = undefined;
      this.client = buildClient(options.url, this.timeoutMs);
    }
    // Without an 'error' listener EventEmitter would throw and take the process down.
    this.client.on('error', (err: unknown) => this.onError(err));
    this.client.on('ready', () => this.onReady());
    // Connect in the background so the store exists (and /health can answer) while Redis is down.
    this.connecting = this.cluster ? this.connectCluster(this.cluster) : this.connectOne();
  }

  private onError(err: unknown): void {
    if (this.outageLogged) {
      this.logger?.debug({ err }, 'redis store still unavailable');
    } else {
      this.outageLogged = true;
      this.logger?.warn({ err }, 'redis store unavailable; reconnecting');
    }
  }

  private onReady(): void {
    if (this.outageLogged) this.logger?.info('redis store reachable again');
    this.outageLogged = false;
  }

  private connectOne(): Promise<void> {
    return this.client.connect().then(
      () => undefined,
      (err: unknown) => {
        if (!this.closed) this.logger?.error({ err }, 'redis store stopped connecting');
      },
    );
  }

  /**
   * A single client reconnects by itself; a cluster client gives up when no seed answers or the
   * cluster has not formed yet, so it is asked again until it connects (calls fail with 503
   * meanwhile). Once connected it follows failovers and resharding on its own.
   */
  private async connectCluster(cluster: Cluster): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await cluster.connect();
        if (this.closed) await cluster.close().catch(() => undefined);
        return;
      } catch (err) {
        this.onError(err);
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(100 * 2 ** Math.min(attempt, 5), 2000)).unref(),
        );
      }
    }
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
    this.refreshSlotMap();
    return new StoreUnavailableError('redis', err);
  }

  /**
   * The cluster client only asks for a new slot map on a MOVED reply or while it reconnects to a
   * node. A cluster that was still forming when verifyd connected (no slot assigned yet) causes
   * neither, and would fail every call forever; so a call that fails for want of a node asks for
   * the map again, at most every half second. `_slots.rediscover` is node-redis's own refresh,
   * the one MOVED uses.
   */
  private refreshSlotMap(): void {
    const { cluster } = this;
    if (!cluster?.isOpen || this.closed) return;
    const now = performance.now();
    if (now - this.lastSlotRefresh < 500) return;
    this.lastSlotRefresh = now;
    cluster._slots.rediscover(undefined as never).catch((err: unknown) => this.onError(err));
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
    if (this.cluster && !this.inOneSlot(admission)) return this.admitAcrossSlots(admission);
    return this.admitHere(admission);
  }

  /** admit() as one script: every key of `admission` is on one server or in one slot. */
  private async admitHere(admission: Admission): Promise<AdmissionOutcome> {
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

  private inOneSlot({ blockers = [], gate, counters, secret }: Admission): boolean {
    const keys = [...blockers, ...(gate ? [gate.key] : []), ...(secret ? [secret.key] : [])];
    for (const counter of counters) {
      keys.push(counter.key);
      if (counter.distinct) keys.push(counter.distinct.key);
    }
    const first = keys[0];
    if (first === undefined) return true;
    const slot = slotOf(this.key(first));
    return keys.every((key) => slotOf(this.key(key)) === slot);
  }

  /**
   * admit() on a cluster, where a send's keys live in several slots (the recipient's, the
   * client's, the SMS budget's) and no script may touch two. One script per slot, in this order:
   * 1. the lead slot (the gate's: the recipient's): its blockers, the gate and its counters, so a
   *    locked or cooling-down recipient is refused before anything elsewhere is counted;
   * 2. every other slot at once: its blockers and counters;
   * 3. the secret, with putSecret, only once every step admitted the send, so a refused send
   *    never replaces the code its recipient holds.
   * A refusal in step 2 takes back what the other steps counted (the gate stays, as in one script:
   * it is what lets one of many concurrent sends through). Each counter is still checked and
   * counted atomically on its shard, so no limit can be passed. What is lost is isolation: from a
   * step until its take-back (one to two round trips, or STORE_TIMEOUT_MS when a node stops
   * answering) other callers can see the counts of a send that will be refused, at most one unit
   * per such send in flight, and may be refused because of them. Never the other way round.
   * A step that fails (a node down) fails the send, after taking back what the others counted and
   * the gate, as nothing will be sent.
   * A counter whose distinct marker is in another slot (no service key is: the marker shares the
   * counter's hash tag) claims the marker first with setIfAbsent, costing a round trip more.
   */
  private async admitAcrossSlots(admission: Admission): Promise<AdmissionOutcome> {
    const { blockers = [], gate, counters, secret } = admission;
    const slot = (key: string) => slotOf(this.key(key));
    const lead = slot(gate?.key ?? blockers[0] ?? secret?.key ?? counters[0]?.key ?? '');
    if (gate && slot(gate.key) !== lead) throw new Error('unreachable: the gate leads');
    interface Step {
      blockers: number[];
      counters: number[];
    }
    const leadStep: Step = { blockers: [], counters: [] };
    const later = new Map<number, Step>();
    const stepOf = (s: number): Step => {
      let step = later.get(s);
      if (!step) {
        step = { blockers: [], counters: [] };
        later.set(s, step);
      }
      return step;
    };
    const splitMarkers: number[] = [];
    blockers.forEach((key, i) => {
      const s = slot(key);
      (s === lead ? leadStep : stepOf(s)).blockers.push(i);
    });
    counters.forEach((counter, i) => {
      const s = slot(counter.key);
      if (counter.distinct && slot(counter.distinct.key) !== s) splitMarkers.push(i);
      else (s === lead ? leadStep : stepOf(s)).counters.push(i);
    });

    const counted = new Array<boolean>(counters.length).fill(false);
    const claimed = new Set<number>();
    /** Runs one slot's script; maps its indices back to the admission's. */
    const runStep = async (step: Step, withGate: boolean): Promise<AdmissionOutcome> => {
      const outcome = await this.admitHere({
        blockers: step.blockers.map((i) => blockers[i] as string),
        ...(withGate && gate ? { gate } : {}),
        counters: step.counters.map((i) => {
          const counter = counters[i] as AdmissionCounter;
          // A marker claimed on its own slot has done its part; the count is what is left.
          return claimed.has(i) ? { ...counter, distinct: undefined } : counter;
        }),
      });
      switch (outcome.status) {
        case 'blocked':
          return { ...outcome, index: step.blockers[outcome.index] as number };
        case 'exceeded':
          return { ...outcome, index: step.counters[outcome.index] as number };
        case 'admitted':
          step.counters.forEach((i, j) => {
            counted[i] = outcome.counted[j] === true;
          });
          return outcome;
        default:
          return outcome;
      }
    };
    const takeBack = () =>
      Promise.all([
        ...counters.flatMap((counter, i) =>
          counted[i]
            ? [this.decrement(counter.key), counter.distinct && this.delete(counter.distinct.key)]
            : [],
        ),
        ...[...claimed]
          .filter((i) => !counted[i])
          .map((i) => this.delete((counters[i] as AdmissionCounter).distinct?.key ?? '')),
      ]).catch(() => undefined);
    const releaseGate = async () => {
      if (gate) await this.delete(gate.key).catch(() => undefined);
    };
    const fail = async (error: unknown): Promise<never> => {
      await Promise.all([takeBack(), releaseGate()]);
      throw error;
    };

    const first = await runStep(leadStep, true);
    if (first.status !== 'admitted') return first;
    if (splitMarkers.length > 0) {
      const claims = await Promise.allSettled(
        splitMarkers.map(async (i) => {
          const { distinct } = counters[i] as AdmissionCounter;
          if (distinct && (await this.setIfAbsent(distinct.key, '1', distinct.ttlSeconds))) {
            claimed.add(i);
            stepOf(slot((counters[i] as AdmissionCounter).key)).counters.push(i);
          }
        }),
      );
      const failed = claims.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) await fail(failed.reason);
    }
    const rest = await Promise.allSettled([...later.values()].map((step) => runStep(step, false)));
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) await fail(failed.reason);
    const refusals = rest.flatMap((r) =>
      r.status === 'fulfilled' && r.value.status !== 'admitted' ? [r.value] : [],
    );
    // As in one script: blockers refuse before counters, and the first counter in order reports.
    const refusal =
      refusals.find((outcome) => outcome.status === 'blocked') ??
      refusals.sort(
        (a, b) => (a.status === 'exceeded' ? a.index : 0) - (b.status === 'exceeded' ? b.index : 0),
      )[0];
    if (refusal) {
      // A blocked send writes nothing in one script either; an exceeded one keeps the gate.
      await Promise.all([takeBack(), refusal.status === 'blocked' ? releaseGate() : undefined]);
      return refusal;
    }
    if (secret) {
      try {
        await this.putSecret(secret.key, secret.hash, secret.ttlSeconds, secret);
      } catch (error) {
        await fail(error);
      }
    }
    return { status: 'admitted', counted };
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
    if (this.cluster) return this.attemptAcrossSlots(key, hash, maxAttempts, options);
    return this.attemptHere(key, hash, maxAttempts, options);
  }

  /** attemptSecret() as one script: every key is on one server or in one slot. */
  private async attemptHere(
    key: string,
    hash: string,
    maxAttempts: number,
    options: AttemptOptions,
  ): Promise<AttemptOutcome> {
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

  /**
   * attemptSecret() on a cluster. The services keep the secret, the recipient's lock and its
   * failure counters under one hash tag, so this is one script there too. Keys in other slots
   * (possible for an embedder) are handled as Memcached handles them: a blocker is read first, and
   * each failure counter is reserved with increment before the comparison and given back unless
   * the attempt ends wrong, so a burst of guesses still compares at most its max.
   */
  private async attemptAcrossSlots(
    key: string,
    hash: string,
    maxAttempts: number,
    options: AttemptOptions,
  ): Promise<AttemptOutcome> {
    const here = slotOf(this.key(key));
    const elsewhere = (k: string) => slotOf(this.key(k)) !== here;
    const { blocker, failures = [] } = options;
    const remote = failures.flatMap((failure, i) => (elsewhere(failure.key) ? [i] : []));
    const foreignBlocker = blocker !== undefined && elsewhere(blocker);
    if (!foreignBlocker && remote.length === 0) {
      return this.attemptHere(key, hash, maxAttempts, options);
    }
    if (foreignBlocker) {
      const value = await this.get(blocker);
      if (value !== undefined) return { status: 'blocked', value };
    }
    const reserved = await Promise.allSettled(
      remote.map((i) => {
        const failure = failures[i] as FailureLimit;
        return this.increment(failure.key, failure.windowSeconds);
      }),
    );
    const giveBack = () =>
      Promise.all(
        remote.map((i, j) =>
          reserved[j]?.status === 'fulfilled'
            ? this.decrement((failures[i] as FailureLimit).key)
            : undefined,
        ),
      ).catch(() => undefined);
    const failed = reserved.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await giveBack();
      throw failed.reason;
    }
    const full = remote.findIndex((i, j) => {
      const state = (reserved[j] as PromiseFulfilledResult<CounterState>).value;
      return state.count > (failures[i] as FailureLimit).max;
    });
    if (full >= 0) {
      await giveBack();
      const { resetMs } = (reserved[full] as PromiseFulfilledResult<CounterState>).value;
      return { status: 'exhausted', index: remote[full] as number, resetMs };
    }
    const local = failures.flatMap((failure, i) => (elsewhere(failure.key) ? [] : [i]));
    let outcome: AttemptOutcome;
    try {
      outcome = await this.attemptHere(key, hash, maxAttempts, {
        ...options,
        blocker: foreignBlocker ? undefined : blocker,
        failures: local.map((i) => failures[i] as FailureLimit),
      });
    } catch (error) {
      await giveBack();
      throw error;
    }
    // Only a wrong attempt stays counted, as in one script.
    if (outcome.status !== 'mismatch') await giveBack();
    if (outcome.status === 'exhausted') {
      return { ...outcome, index: local[outcome.index] as number };
    }
    return outcome;
  }

  async ping(): Promise<void> {
    const { cluster } = this;
    if (!cluster) {
      await this.run(() => this.client.ping());
      return;
    }
    // Every primary: a cluster with one shard down still serves the others, but not every request.
    await this.run(async () => {
      if (!cluster.isReady) throw new Error('the redis cluster is not connected');
      await Promise.all(
        cluster.masters.map(async (node) => (await cluster.nodeClient(node)).ping()),
      );
    });
  }

  private async pingPrimaries(): Promise<ServerState[]> {
    const { cluster } = this;
    if (!cluster?.isReady) {
      const error = new StoreUnavailableError('redis', new Error('the cluster is not connected'));
      return [{ server: 'redis cluster', ok: false, error }];
    }
    return Promise.all(
      cluster.masters.map((node) =>
        this.run(async () => (await cluster.nodeClient(node)).ping()).then(
          (): ServerState => ({ server: node.address, ok: true }),
          (error: unknown): ServerState => ({ server: node.address, ok: false, error }),
        ),
      ),
    );
  }

  /** The clients to SCAN: the one server, or every primary of the cluster. */
  private async scanTargets(): Promise<Array<Pick<Client, 'scan' | 'pTTL'>>> {
    const { cluster } = this;
    if (!cluster) return [this.client];
    if (!cluster.isReady) throw new StoreUnavailableError('redis', new Error('not connected'));
    return Promise.all(
      cluster.masters.map((node) =>
        this.run(() => cluster.nodeClient(node) as unknown as Promise<Client>),
      ),
    );
  }

  readonly scan = async function* (this: RedisStore): AsyncIterable<StoreEntry> {
    const match = `${escapeGlob(this.prefix)}*`;
    for (const client of await this.scanTargets()) {
      let cursor = '0';
      do {
        const page = await this.run(() => client.scan(cursor, { MATCH: match, COUNT: 200 }));
        cursor = String(page.cursor);
        // Issued together, node-redis pipelines these PTTLs into one write.
        const ttls = await Promise.all(
          page.keys.map((full) => this.run(() => client.pTTL(String(full)))),
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
    }
  };

  async cleanup(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    // A cluster still connecting stops retrying (closed is set) and closes once connected.
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
