import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandParser, createClient, createCluster, defineScript, ErrorReply } from 'redis';
import { StoreUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { recordPart } from './keys';
import { slotOf } from './redis-slot';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from './ttl';
import type {
  Admission,
  AdmissionOutcome,
  Attempt,
  AttemptOutcome,
  CounterState,
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

/** The Lua scripts, one file each beside this module (see lua/*.lua for their arguments). */
const lua = (name: string) => readFileSync(join(__dirname, 'lua', `${name}.lua`), 'utf8');

/** A script that may touch records' parts: record.lua's helpers, then the script as their main(). */
const withRecords = (name: string) =>
  `${lua('record')}${lua(name)}\nend\nlocal result = main()\nflush()\nreturn result\n`;

/** An optional argument: '' when absent, '+' and the value when present, so '' stays distinct. */
const optionalArg = (value: string | undefined) => (value === undefined ? '' : `+${value}`);

/**
 * Where a key's value is in Redis: a key of its own, or, for a record's part (see Store,
 * "Records"), the part named `field` in the record (see lua/record.lua), whose key is the prefix
 * and the record's tag in braces (so a record lands in the same cluster slot as every other key
 * with that tag).
 */
interface Place {
  key: string;
  field?: string;
}

/**
 * Calls a record.lua script: the keys, the script's own arguments, then where in each key the value
 * is (last, so the script reads its own arguments where they are, without copying them).
 */
function pushScriptCall(parser: CommandParser, places: readonly Place[], args: readonly string[]) {
  parser.push(String(places.length));
  for (const place of places) parser.pushKey(place.key);
  parser.push(...args);
  for (const place of places) parser.push(optionalArg(place.field));
}

/**
 * Every multi-step operation is a Lua script so that it costs one round trip and runs atomically
 * on the server; nothing is read, decided in Node and written back. Scripts answer with a status
 * name first, mapped to the contract's outcomes in the store's methods.
 */
const scripts = {
  windowIncrement: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: lua('window-increment'),
    parseCommand(parser: CommandParser, key: string, windowSeconds: number) {
      parser.pushKey(key);
      parser.push(String(windowSeconds));
    },
    transformReply: (reply: unknown) => reply as [number, number],
  }),

  decrement: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: lua('decrement'),
    parseCommand(parser: CommandParser, key: string) {
      parser.pushKey(key);
    },
    transformReply: (reply: unknown) => reply as number,
  }),

  part: defineScript({
    SCRIPT: withRecords('part'),
    parseCommand(parser: CommandParser, place: Place, primitive: string, ...args: string[]) {
      pushScriptCall(parser, [place], [primitive, ...args]);
    },
    transformReply: (reply: unknown) => reply as string | number | null | [number, number],
  }),

  admit: defineScript({
    SCRIPT: withRecords('admit'),
    parseCommand(parser: CommandParser, admission: Admission, place: (key: string) => Place) {
      const { gate, counters, secret } = admission;
      const keys: string[] = [];
      if (gate) keys.push(gate.key);
      for (const counter of counters) keys.push(counter.key);
      for (const counter of counters) if (counter.distinct) keys.push(counter.distinct.key);
      if (secret) keys.push(secret.key);
      const args = [
        gate ? '1' : '0',
        String(counters.length),
        gate?.value ?? '',
        String(gate?.ttlSeconds ?? 0),
        secret ? '1' : '0',
        secret?.hash ?? '',
        String(secret?.ttlSeconds ?? 0),
        String(Math.max(1, secret?.keep ?? 1)),
        secret?.binding ?? '',
        optionalArg(secret?.data),
        String(secret?.maxAttempts ?? 0),
      ];
      for (const counter of counters) {
        args.push(
          String(counter.windowSeconds),
          String(counter.max),
          counter.distinct ? '1' : '0',
          String(counter.distinct?.ttlSeconds ?? 0),
        );
      }
      pushScriptCall(parser, keys.map(place), args);
    },
    transformReply: (reply: unknown) => reply as [string, ...(number | string)[]],
  }),

  attempt: defineScript({
    SCRIPT: withRecords('attempt'),
    parseCommand(parser: CommandParser, attempt: Attempt, place: (key: string) => Place) {
      const { key, hash, maxAttempts, binding, failures = [], clearOnMatch = [] } = attempt;
      const args = [hash, String(maxAttempts), optionalArg(binding), String(failures.length)];
      for (const failure of failures) args.push(String(failure.windowSeconds), String(failure.max));
      const places = [key, ...failures.map((f) => f.key), ...clearOnMatch].map(place);
      pushScriptCall(parser, places, args);
    },
    transformReply: (reply: unknown) => reply as [string, (number | string)?, (number | string)?],
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

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? '';
    this.timeoutMs = options.timeoutMs ?? 1000;
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

  /**
   * node-redis only times out commands still waiting to be written; one already on the wire to a
   * hung server would wait forever, so every call gets a deadline of its own.
   */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              'redis',
              new Error(`redis did not answer within ${this.timeoutMs} ms`),
            ),
          ),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([command(), deadline]);
    } catch (err) {
      throw err instanceof StoreUnavailableError ? err : this.translate(err);
    } finally {
      clearTimeout(timer);
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

  /** See Place. */
  private place(key: string): Place {
    const part = recordPart(key);
    if (!part) return { key: this.prefix + key };
    return { key: `${this.prefix}{${part.tag}}`, field: part.name };
  }

  /** A primitive on a record's part, as one script (lua/part.lua). */
  private onPart(place: Place, primitive: string, ...args: string[]) {
    return this.run(() => this.client.part(place, primitive, ...args));
  }

  async get(key: string): Promise<string | undefined> {
    const place = this.place(key);
    const value = await (place.field === undefined
      ? this.run(() => this.client.get(place.key))
      : this.onPart(place, 'get'));
    return value === null ? undefined : String(value);
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    assertTtl(ttlSeconds);
    const place = this.place(key);
    if (place.field !== undefined) {
      await this.onPart(place, 'set', value, String(ttlSeconds));
      return;
    }
    await this.run(() =>
      this.client.set(place.key, value, { expiration: { type: 'EX', value: ttlSeconds } }),
    );
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    const place = this.place(key);
    if (place.field !== undefined) {
      return (await this.onPart(place, 'setIfAbsent', value, String(ttlSeconds))) === 1;
    }
    const reply = await this.run(() =>
      this.client.set(place.key, value, {
        condition: 'NX',
        expiration: { type: 'EX', value: ttlSeconds },
      }),
    );
    return reply !== null;
  }

  async delete(key: string): Promise<boolean> {
    const place = this.place(key);
    if (place.field !== undefined) return (await this.onPart(place, 'delete')) === 1;
    return (await this.run(() => this.client.del(place.key))) > 0;
  }

  async increment(key: string, windowSeconds: number): Promise<CounterState> {
    assertTtl(windowSeconds);
    const place = this.place(key);
    const [count, ttl] =
      place.field === undefined
        ? await this.run(() => this.client.windowIncrement(place.key, windowSeconds))
        : ((await this.onPart(place, 'increment', String(windowSeconds))) as [number, number]);
    return { count: Number(count), resetMs: Math.max(0, Number(ttl)) };
  }

  async decrement(key: string): Promise<void> {
    const place = this.place(key);
    if (place.field !== undefined) {
      await this.onPart(place, 'decrement');
      return;
    }
    await this.run(() => this.client.decrement(place.key));
  }

  async admit(admission: Admission): Promise<AdmissionOutcome> {
    assertAdmissionTtls(admission);
    if (this.cluster && !this.inOneSlot(admission)) return this.admitAcrossSlots(admission);
    return this.admitHere(admission);
  }

  /** admit() as one script: every key of `admission` is on one server or in one slot. */
  private async admitHere(admission: Admission): Promise<AdmissionOutcome> {
    const [status, first, second, ...flags] = await this.run(() =>
      this.client.admit(admission, (key) => this.place(key)),
    );
    switch (status) {
      case 'gated':
        return { status: 'gated', value: String(first) };
      case 'exceeded':
        return { status: 'exceeded', index: Number(first), resetMs: Math.max(0, Number(second)) };
      default: {
        // One flag per counter, in order.
        const counted = flags.map((flag) => flag === 1);
        return admission.secret
          ? { status: 'admitted', counted, binding: String(first), joined: second === 1 }
          : { status: 'admitted', counted };
      }
    }
  }

  private inOneSlot({ gate, counters, secret }: Admission): boolean {
    const keys = [...(gate ? [gate.key] : []), ...(secret ? [secret.key] : [])];
    for (const counter of counters) {
      keys.push(counter.key);
      if (counter.distinct) keys.push(counter.distinct.key);
    }
    return this.sameSlot(keys);
  }

  private sameSlot(keys: readonly string[]): boolean {
    const first = keys[0];
    if (first === undefined) return true;
    const slot = slotOf(this.place(first).key);
    return keys.every((key) => slotOf(this.place(key).key) === slot);
  }

  /**
   * admit() on a cluster, where a send's keys live in several slots (the recipient's, the
   * client's, the SMS budget's) and no script may touch two. Two round trips:
   * 1. one script per slot, all at once: the gate and the counters of each slot (a counter keeps
   *    its distinct marker in its own slot, as keys.ts builds them);
   * 2. the secret, in the verification's slot, only once every step admitted the send, so a
   *    refused send never touches the codes its recipient holds.
   * A refusal in step 1 takes back what the other slots counted, and the gate this call claimed
   * (as in one script: a refused send leaves no cooldown). Each counter is still checked and
   * counted atomically on its shard, so no limit can be passed. What is lost is isolation: until
   * the take-back (one round trip, or STORE_TIMEOUT_MS when a node stops answering) other callers
   * can see the counts and the gate of a send that will be refused (at most one unit per such
   * send in flight) and may be refused because of them. Never the other way round. A step that
   * fails (a node down) fails the send, after taking back what the others counted and the gate.
   */
  private async admitAcrossSlots(admission: Admission): Promise<AdmissionOutcome> {
    const { gate, counters, secret } = admission;
    const slot = (key: string) => slotOf(this.place(key).key);
    const steps = new Map<number, number[]>();
    counters.forEach((counter, i) => {
      if (counter.distinct && slot(counter.distinct.key) !== slot(counter.key)) {
        throw new Error("a distinct marker must share its counter's hash tag");
      }
      const s = slot(counter.key);
      steps.set(s, [...(steps.get(s) ?? []), i]);
    });
    const gateSlot = gate ? slot(gate.key) : undefined;
    if (gateSlot !== undefined && !steps.has(gateSlot)) steps.set(gateSlot, []);
    const counted = new Array<boolean>(counters.length).fill(false);
    const outcomes = await Promise.allSettled(
      [...steps].map(async ([s, indices]) => {
        const outcome = await this.admitHere({
          ...(s === gateSlot && gate ? { gate } : {}),
          counters: indices.map((i) => counters[i] as Admission['counters'][number]),
        });
        if (outcome.status === 'admitted') {
          indices.forEach((i, j) => {
            counted[i] = outcome.counted[j] === true;
          });
        }
        return outcome.status === 'exceeded'
          ? { ...outcome, index: indices[outcome.index] as number }
          : outcome;
      }),
    );
    const takeBack = () =>
      Promise.all(
        counters.flatMap((counter, i) =>
          counted[i]
            ? [this.decrement(counter.key), counter.distinct && this.delete(counter.distinct.key)]
            : [],
        ),
      ).catch(() => undefined);
    const gatedByUs = outcomes.every((r) => r.status !== 'fulfilled' || r.value.status !== 'gated');
    const releaseGate = async () => {
      if (gate && gatedByUs) await this.delete(gate.key).catch(() => undefined);
    };
    const failed = outcomes.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all([takeBack(), releaseGate()]);
      throw failed.reason;
    }
    const refusals = outcomes.flatMap((r) =>
      r.status === 'fulfilled' && r.value.status !== 'admitted' ? [r.value] : [],
    );
    // As in one script: the gate refuses before counters, and the first counter in order reports.
    const refusal =
      refusals.find((outcome) => outcome.status === 'gated') ??
      refusals.sort(
        (a, b) => (a.status === 'exceeded' ? a.index : 0) - (b.status === 'exceeded' ? b.index : 0),
      )[0];
    if (refusal) {
      // A gate refusal means the gate is somebody else's: gatedByUs keeps it.
      await Promise.all([takeBack(), releaseGate()]);
      return refusal;
    }
    if (!secret) return { status: 'admitted', counted };
    try {
      const written = await this.admitHere({ counters: [], secret });
      return { ...(written as AdmissionOutcome & { status: 'admitted' }), counted };
    } catch (error) {
      await Promise.all([takeBack(), releaseGate()]);
      throw error;
    }
  }

  /**
   * One script. On a cluster every key of an attempt must share the verification's slot (keys.ts
   * puts the recipient's id in braces in all of them): an attempt split over slots could not
   * compare and count as one step.
   */
  async attempt(attempt: Attempt): Promise<AttemptOutcome> {
    const { failures = [] } = attempt;
    assertFailureWindows(failures);
    const keys = [attempt.key, ...failures.map((f) => f.key), ...(attempt.clearOnMatch ?? [])];
    if (this.cluster && !this.sameSlot(keys)) {
      throw new Error("every key of an attempt must share the verification's hash tag");
    }
    const [status, n, detail] = await this.run(() =>
      this.client.attempt(attempt, (key) => this.place(key)),
    );
    switch (status) {
      case 'exhausted':
        return { status: 'exhausted', index: Number(n), resetMs: Math.max(0, Number(detail)) };
      case 'match':
        return detail === undefined
          ? { status: 'match', attempts: Number(n) }
          : { status: 'match', attempts: Number(n), data: String(detail) };
      case 'locked':
        return { status: 'locked' };
      case 'mismatch':
        return {
          status: 'mismatch',
          attempts: Number(n),
          remaining: attempt.maxAttempts - Number(n),
        };
      default:
        return { status: 'missing' };
    }
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

  /** Every key under the prefix on one server, page by page. */
  private async *scanKeys(client: Pick<Client, 'scan'>): AsyncIterable<string[]> {
    const match = `${escapeGlob(this.prefix)}*`;
    let cursor = '0';
    do {
      const page = await this.run(() => client.scan(cursor, { MATCH: match, COUNT: 200 }));
      cursor = String(page.cursor);
      yield page.keys.map(String);
    } while (cursor !== '0');
  }

  /**
   * The tag in braces when a Redis key (with the prefix) is a record rather than a plain key: a
   * plain key never begins with a tag (see place), so a key that is the prefix and a tag alone is
   * a record.
   */
  private recordTag(full: string): string | undefined {
    const rest = full.slice(this.prefix.length);
    return recordPart(rest)?.name === '' ? rest : undefined;
  }

  /** Plain keys with their TTLs, and each record's live parts, named as callers name them. */
  readonly scan = async function* (this: RedisStore): AsyncIterable<StoreEntry> {
    for (const client of await this.scanTargets()) {
      for await (const page of this.scanKeys(client)) {
        // Issued together, node-redis pipelines these into one write. The cluster client routes
        // each record's script to the record's node by its key.
        const details = await Promise.all(
          page.map((full) =>
            this.run<unknown>(() =>
              this.recordTag(full)
                ? this.client.part({ key: full, field: '' }, 'parts')
                : client.pTTL(full),
            ),
          ),
        );
        for (const [i, full] of page.entries()) {
          const tag = this.recordTag(full);
          // {name, time left in ms, ...}, or null when the key holds no record: see lua/part.lua.
          if (tag && details[i] !== null) {
            const listed = (details[i] as string[]).map(String);
            for (let j = 0; j < listed.length; j += 2) {
              yield { key: tag + listed[j], ttlMs: Number(listed[j + 1]) };
            }
            continue;
          }
          const ttl = Number(tag ? await this.run(() => client.pTTL(full)) : details[i]);
          if (ttl === -2) continue; // expired or deleted between SCAN and PTTL
          yield {
            key: full.slice(this.prefix.length),
            ttlMs: ttl === -1 ? Number.POSITIVE_INFINITY : ttl,
          };
        }
      }
    }
  };

  /**
   * Removes every Redis key under the prefix, records whole and any key there that verifyd did not
   * write, and returns how many keys it removed (the CLI's `clear`). Refuses an empty prefix: that
   * would be the whole database.
   */
  async clear(): Promise<number> {
    if (this.prefix === '') throw new Error('refusing to clear a Redis store with no KEY_PREFIX');
    let removed = 0;
    for (const client of await this.scanTargets()) {
      for await (const page of this.scanKeys(client)) {
        // A key at a time: on a cluster one page holds keys of many slots, and the cluster
        // client routes each by its own key; issued together, they go out as one pipeline.
        const counts = await Promise.all(
          page.map((full) => this.run(() => this.client.unlink(full))),
        );
        removed += counts.reduce((sum, n) => sum + Number(n), 0);
      }
    }
    return removed;
  }

  async cleanup(): Promise<number> {
    // Keys expire by themselves, and a record drops its ended parts whenever it is written.
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
