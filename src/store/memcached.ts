import { createHash, randomBytes } from 'node:crypto';
import memjs from 'memjs';
import { safeEqual } from '../crypto';
import { StoreUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { admitStepwise } from './bridge';
import { assertAdmissionTtls, assertFailureWindows, assertTtl } from './ttl';
import type {
  Admission,
  AdmissionOutcome,
  Attempt,
  AttemptOutcome,
  CounterState,
  FailureLimit,
  SecretWrite,
  ServerState,
  Store,
} from './types';

export interface MemcachedStoreOptions {
  /** Comma-separated host:port list, as in MEMCACHED_SERVERS. */
  servers: string;
  keyPrefix?: string;
  /** Longest wait for one round trip before it counts as unavailable (STORE_TIMEOUT_MS). */
  timeoutMs?: number;
  logger?: Logger;
}

/** Memcached reads an exptime above this many seconds as an absolute unix time, not a duration. */
export const RELATIVE_EXPTIME_LIMIT = 60 * 60 * 24 * 30;

/** Memcached refuses longer keys. */
export const MAX_KEY_BYTES = 250;

/**
 * The exptime to send for a TTL. Memcached's clock ticks once per second, so a relative exptime
 * of N can fire anywhere from N-1 to N seconds later (a TTL of 1 can vanish within milliseconds);
 * one extra second means an entry never expires before its TTL, at the cost of living up to a
 * second longer. Beyond 30 days the value must be an absolute unix time, or memcached would read
 * it as a moment in 1970 and drop the entry at once. Never 0, which would mean "never expire".
 */
export function memcachedExptime(ttlSeconds: number, nowMs: number): number {
  assertTtl(ttlSeconds);
  const padded = ttlSeconds + 1;
  if (padded <= RELATIVE_EXPTIME_LIMIT) return padded;
  return Math.ceil(nowMs / 1000) + padded;
}

/** Binary incr/decr exptime meaning "fail with NOT_FOUND instead of creating the key". */
const DO_NOT_CREATE = 0xffffffff;

/**
 * How often increment retries an incr that lost memcached's internal create race. The retry finds
 * the counter the winner created; a second loss needs that counter to vanish at once.
 */
const CREATE_RACE_RETRIES = 3;

/**
 * How often a compare-and-swap on a secret is retried after the record changed under it. A
 * record changes at most once before it is deleted or replaced (alive to dead), so two tries
 * settle every case; the bound only guards against a server that misbehaves.
 */
const CAS_RETRIES = 4;

const PLAIN_KEY = /^[\x21-\x7e]+$/;

/**
 * Maps a logical key to a memcached key. Keys that memcached cannot hold as-is (over 250 bytes,
 * spaces, control or non-ASCII characters) become the prefix plus "#" and a SHA-256 digest. Keys
 * that themselves start with "#" are hashed too, so a plain key can never collide with a digest.
 */
export function memcachedKey(prefix: string, key: string): string {
  const plain = prefix + key;
  if (PLAIN_KEY.test(key) && !key.startsWith('#') && Buffer.byteLength(plain) <= MAX_KEY_BYTES) {
    return plain;
  }
  return `${prefix}#${createHash('sha256').update(key).digest('base64url')}`;
}

/**
 * Keys derived from a logical key (a window's end, a secret's attempt counter) are joined with a
 * control character, so they always take the hashed form and cannot collide with a caller's key.
 */
const DERIVED = '\u001f';

type Client = memjs.Client<string, Buffer | null>;

interface SecretRecord {
  /** Fresh per verification: the attempt counters are keyed by it. */
  id: string;
  binding: string;
  /** The verification's codes, oldest first. */
  codes: Array<{ hash: string; data?: string }>;
  /** When the secret expires, epoch ms; lets derived keys get the same remaining lifetime. */
  expiresAt: number;
  /**
   * Written into the record itself once the open lane's attempts are used up or unknown; see
   * attemptSecret. `deadBound` is the same for the bound lane.
   */
  dead?: true;
  deadBound?: true;
}

/** The two attempt lanes of a secret (see Store.attemptSecret): counter tag and dead flag. */
const LANES = {
  open: { counter: 'n', dead: 'dead' },
  bound: { counter: 'm', dead: 'deadBound' },
} as const;
type Lane = (typeof LANES)[keyof typeof LANES];

function parseSecret(value: string): SecretRecord | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { id, codes, expiresAt, dead, deadBound, binding } = parsed as Record<string, unknown>;
    if (
      typeof id !== 'string' ||
      typeof binding !== 'string' ||
      !Array.isArray(codes) ||
      typeof expiresAt !== 'number'
    ) {
      return undefined;
    }
    return {
      id,
      binding,
      codes: codes as SecretRecord['codes'],
      expiresAt,
      ...(dead === true ? { dead } : {}),
      ...(deadBound === true ? { deadBound } : {}),
    };
  } catch {
    return undefined;
  }
}

/** A value with the CAS version memcached gave it; any later write changes the version. */
interface Versioned {
  value: Buffer;
  cas: Buffer;
}

/** What a compare-and-swap write found: done, the item gone, or the item changed since. */
type SwapResult = 'done' | 'gone' | 'changed';

/** Binary-protocol opcodes and statuses of the compare-and-swap commands memjs does not wrap. */
const OPCODE = { get: 0x00, set: 0x01, delete: 0x04 } as const;
const STATUS_OK = 0x0000;
const STATUS_NOT_FOUND = 0x0001;
const STATUS_EXISTS = 0x0002;
/** Other statuses, worded as memjs words them so that translate() sorts them alike. */
const STATUS_TEXT: Record<number, string> = {
  3: 'Value too large',
  4: 'Invalid arguments',
  5: 'Item not stored',
  129: 'Unknown command',
  130: 'Out of memory',
  132: 'Internal error',
  133: 'Busy',
  134: 'Temporary failure',
};

/**
 * One binary-protocol command with an optional CAS version, through memjs's public low-level
 * `perform` (memjs 1.x builds no CAS requests itself; its typings declare perform, incrSeq and
 * Utils). Resolves with memcached's status, the value and the item's version.
 */
function command(
  client: Client,
  name: string,
  opcode: number,
  key: string,
  options: { extras?: Buffer; value?: string; cas?: Buffer } = {},
): Promise<{ status: number; value: Buffer; cas: Buffer }> {
  client.incrSeq();
  const seq = client.seq;
  const request = memjs.Utils.makeRequestBuffer(
    opcode,
    key,
    options.extras ?? Buffer.alloc(0),
    options.value ?? '',
    seq,
  );
  // The header's last 8 bytes are the CAS field; makeRequestBuffer leaves it 0 ("any version").
  options.cas?.copy(request, 16);
  return new Promise((resolve, reject) => {
    client.perform(key, request, seq, (err: Error | null, response?: memjs.Response) => {
      if (err || !response) {
        reject(err ?? new Error(`MemJS ${name}: no response`));
        return;
      }
      const { status, cas } = response.header;
      if (status === STATUS_OK || status === STATUS_NOT_FOUND || status === STATUS_EXISTS) {
        resolve({ status, value: response.val, cas });
        return;
      }
      reject(new Error(`MemJS ${name}: ${STATUS_TEXT[status] ?? `status ${status}`}`));
    });
  });
}

/** memcached's refusal when an incr lost the race to create its counter (see increment). */
function isNotStored(err: unknown): boolean {
  return err instanceof Error && err.message.endsWith('Item not stored');
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.message.endsWith('Key not found');
}

/** Binary-protocol statuses that mean the server cannot serve now, as opposed to a bad request. */
const TRANSIENT_STATUS = /^MemJS \w+: (Out of memory|Busy|Temporary failure|Internal error)/;

/**
 * The part of a logical key that decides its server: the text between the first "{" and the next
 * "}" when that is not empty, else the whole key (the hash-tag rule of Redis Cluster). Services
 * put the recipient's id or the client's address in braces, so that every key of one recipient
 * lives on one server and a dead server takes out its own recipients, not a share of everybody's
 * request.
 */
export function placementTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/**
 * Which of `count` servers holds a logical key. Modulo hashing, as memjs does: a dead server is
 * never replaced by another (see MemcachedStore), so the list only changes when an operator
 * changes MEMCACHED_SERVERS, and any key that moves then loses its state whichever hashing moved
 * it. The prefix is not hashed, so two deployments sharing the servers place a tag alike.
 */
export function serverIndex(key: string, count: number): number {
  if (count <= 1) return 0;
  return createHash('sha256').update(placementTag(key)).digest().readUInt32BE(0) % count;
}

/** One listed server and the memjs client that talks to it alone. */
interface Shard {
  /** The entry as listed in MEMCACHED_SERVERS, credentials included; what memjs connects to. */
  readonly entry: string;
  /** host:port only, for logs. */
  readonly name: string;
  client: Client;
  /** Only the first failure of an outage is logged at warn, so a long outage does not flood logs. */
  down: boolean;
}

/** A listed server as logs may show it: without the user:password@ memjs accepts in front. */
function serverName(entry: string): string {
  return entry.slice(entry.lastIndexOf('@') + 1);
}

/**
 * Memcached has no transactions, so atomicity comes from the operations memcached itself performs
 * atomically: add (create only if absent), incr (binary incr creates the counter with an initial
 * value when absent), delete, and compare-and-swap (a set or delete that applies only while the
 * item still has the version a get returned; memjs has no call for it, see `command`).
 *
 * - setIfAbsent is add.
 * - increment is incr with initial 1; the caller that gets 1 opened the window and records its
 *   end time in a companion key, which later callers read to report resetMs. memcached creates
 *   an absent counter with an internal add, so of two connections racing to create it one is
 *   refused (NOT_STORED); that caller simply increments again the counter the other created.
 *   decrement is decr, which memcached itself stops at 0.
 * - putSecret writes an attempt counter at 0 per lane under a fresh id, then {id, hash,
 *   expiresAt, binding, data}, on one connection, which memcached serves in order: a caller that
 *   finds the record finds its counters, unless memcached dropped one since. A new secret starts
 *   from zero without touching the old counters.
 * - attemptSecret reads the blocker (when given) and the record with its version together,
 *   reserves one count on each failure counter (incr: only a caller whose count stays within
 *   max goes on, the others give theirs back and are refused, so no burst can compare more than
 *   max wrong guesses; the reservation is given back unless the attempt was wrong), counts the
 *   attempt in its lane with an incr that never creates the counter, and compares in this
 *   process with safeEqual. A match consumes the secret by deleting the record with that
 *   version: memcached deletes an item once, so exactly one caller gets "match", and a secret
 *   that a concurrent putSecret replaced is never deleted in its stead. A secret whose attempts
 *   are used up in a lane is marked dead for that lane in the record itself, with
 *   compare-and-swap.
 *   Memcached may drop any item at any time (eviction under memory pressure, a restart), so no
 *   secret relies on another item to stay unusable: a consumed secret is gone, a dead one says
 *   so itself, and one whose counter was dropped gets no fresh attempts: it is marked dead
 *   (fail closed; its recipient requests a new code). Losing the record itself only loses the
 *   secret.
 *
 * Several servers: each logical key lives on the server serverIndex picks from its placement
 * tag, and the keys derived from it (window end, attempt counter) live with it.
 * Each server has a memjs client of its own, so a dead server fails only the calls that touch a
 * key it holds: those reject with StoreUnavailableError (503 store_unavailable), every other
 * call goes on as before, and the dead server's keys are served again as soon as it answers,
 * since its client is replaced after every failure (see discard). A restarted server comes back
 * empty: its recipients' codes are gone and their counters restart.
 * There is no failover to another server: the moved key would start from nothing there (a new
 * counter, no code) and, once the server is back, the two copies would disagree, letting limits
 * be counted twice over or a code used on one server be used again on the other.
 *
 * Memcached cannot list keys, so `scan` is absent. Expiry is native, so cleanup() is 0.
 */
export class MemcachedStore implements Store {
  readonly backend = 'memcached' as const;
  readonly scan = undefined;
  private readonly shards: Shard[];
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private closed = false;

  constructor(options: MemcachedStoreOptions) {
    this.prefix = options.keyPrefix ?? '';
    if (!/^[\x21-\x7e]*$/.test(this.prefix) || this.prefix.length > 100) {
      throw new Error('Memcached key prefix must be at most 100 printable ASCII characters');
    }
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.logger = options.logger;
    this.shards = options.servers.split(',').map((entry) => ({
      entry,
      name: serverName(entry),
      client: this.connect(entry),
      down: false,
    }));
  }

  /** The listed servers (host:port), in MEMCACHED_SERVERS order. */
  get servers(): string[] {
    return this.shards.map((shard) => shard.name);
  }

  /** The server (host:port) that holds a logical key. */
  serverFor(key: string): string {
    return this.shardFor(key).name;
  }

  private shardFor(key: string): Shard {
    return this.shards[serverIndex(key, this.shards.length)] as Shard;
  }

  private connect(entry: string): Client {
    const seconds = this.timeoutMs / 1000;
    return memjs.Client.create<string, Buffer | null>(entry, {
      // One attempt per call: a retried incr or add whose reply was lost would count twice or
      // report "exists" for the caller's own write.
      retries: 1,
      timeout: seconds,
      conntimeout: seconds,
      // Detects a peer that vanished without closing the socket.
      keepAlive: true,
      keepAliveDelay: 10,
      // Each client has one server, so there is nothing to fail over to; stated anyway, since
      // failing over would split counters and secrets across servers (see the class comment).
      failover: false,
      logger: { log: (...args: unknown[]) => this.logger?.debug({ memjs: args.join(' ') }) },
    });
  }

  /**
   * memjs keeps one "current socket" and one response buffer per server. A socket it abandoned
   * after a timeout still delivers the thawed server's late replies into that buffer, and its
   * late 'close' clears the current-socket field, so a request on a connection still opening is
   * never written and hangs. After any connection failure the server's client is therefore
   * replaced; the next call to that server starts from a fresh socket, which is also how a
   * restarted server is picked up without a reconnect loop. Other servers' clients are left alone.
   */
  private discard(shard: Shard, failed: Client): void {
    if (this.closed || shard.client !== failed) return;
    shard.client = this.connect(shard.entry);
    // Half-closes: calls still in flight on the old socket get their replies if the server is up.
    failed.close();
  }

  private key(key: string): string {
    return memcachedKey(this.prefix, key);
  }

  private derived(key: string, tag: string): string {
    return memcachedKey(this.prefix, `${key}${DERIVED}${tag}`);
  }

  /**
   * Runs one command on the server that holds `key` (a logical key). memjs's own timeout relies
   * on socket idle events; this deadline holds in every case.
   */
  private run<T>(key: string, command: (client: Client) => Promise<T>): Promise<T> {
    return this.runOn(this.shardFor(key), command);
  }

  private async runOn<T>(shard: Shard, command: (client: Client) => Promise<T>): Promise<T> {
    // memjs would silently reconnect a closed client; the contract says a closed store is done.
    if (this.closed) throw new StoreUnavailableError('memcached', new Error('store is closed'));
    const client = shard.client;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`memcached did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      const pending = command(client);
      // The losing promise may still reject later; that must not become an unhandled rejection.
      pending.catch(() => undefined);
      const result = await Promise.race([pending, deadline]);
      if (shard.down) {
        shard.down = false;
        this.logger?.info({ server: shard.name }, 'memcached server reachable again');
      }
      return result;
    } catch (err) {
      const translated = this.translate(shard, err);
      if (translated instanceof StoreUnavailableError) this.discard(shard, client);
      throw translated;
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(shard: Shard, err: unknown): unknown {
    const message = err instanceof Error ? err.message : String(err);
    // Protocol refusals ("Incr/Decr on non-numeric value", "Value too large") and argument errors
    // thrown inside memjs are caller bugs, not outages.
    const refusal = message.startsWith('MemJS ') && !TRANSIENT_STATUS.test(message);
    if (refusal || err instanceof RangeError || err instanceof TypeError) return err;
    if (!shard.down) {
      shard.down = true;
      this.logger?.warn({ err, server: shard.name }, 'memcached server unavailable');
    }
    return new StoreUnavailableError('memcached', err);
  }

  private exptime(ttlSeconds: number): number {
    return memcachedExptime(ttlSeconds, Date.now());
  }

  async get(key: string): Promise<string | undefined> {
    const { value } = await this.run(key, (c) => c.get(this.key(key)));
    return value === null ? undefined : value.toString();
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    const expires = this.exptime(ttlSeconds);
    await this.run(key, (c) => c.set(this.key(key), value, { expires }));
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const expires = this.exptime(ttlSeconds);
    return this.run(key, (c) => c.add(this.key(key), value, { expires }));
  }

  async delete(key: string): Promise<boolean> {
    return this.run(key, (c) => c.delete(this.key(key)));
  }

  async increment(key: string, windowSeconds: number): Promise<CounterState> {
    const expires = this.exptime(windowSeconds);
    const windowMs = windowSeconds * 1000;
    const count = await this.count(key, expires);
    const endKey = this.derived(key, 'end');
    if (count === 1) {
      const end = Date.now() + windowMs;
      await this.run(key, (c) => c.set(endKey, String(end), { expires }));
      return { count, resetMs: windowMs };
    }
    const stored = (await this.run(key, (c) => c.get(endKey))).value;
    const end = stored === null ? Number.NaN : Number(stored.toString());
    // Unknown end (the opener has not written it yet, or it was evicted): report the whole window,
    // which is never too short.
    if (!Number.isFinite(end)) return { count, resetMs: windowMs };
    const left = end - Date.now();
    // Past the recorded end the counter can survive up to one more tick of memcached's clock.
    return { count, resetMs: Math.min(windowMs, left > 0 ? left : 1000) };
  }

  /**
   * incr with initial 1. memcached creates an absent counter with an internal add; when another
   * connection's incr created it first, that add fails and this incr answers NOT_STORED. The
   * counter then exists, so incrementing again counts this call exactly once.
   */
  private async count(key: string, expires: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { value } = await this.run(key, (c) =>
          c.increment(this.key(key), 1, { initial: 1, expires }),
        );
        return Number(value);
      } catch (err) {
        if (!isNotStored(err) || attempt >= CREATE_RACE_RETRIES) throw err;
      }
    }
  }

  async decrement(key: string): Promise<void> {
    try {
      // Binary decr stops at 0 by itself and leaves the TTL alone. Without the "do not create"
      // exptime memjs would create an absent key as a permanent 0.
      await this.run(key, (c) =>
        c.decrement(this.key(key), 1, { initial: 0, expires: DO_NOT_CREATE }),
      );
    } catch (err) {
      if (err instanceof Error && err.message.endsWith('Key not found')) return;
      throw err;
    }
  }

  /**
   * Memcached has no transactions, so the limits run stepwise (see admitStepwise for what that
   * costs); the secret is written with this store's own compare-and-swap, so that joining a
   * verification never loses its lanes' dead marks.
   */
  async admit(admission: Admission): Promise<AdmissionOutcome> {
    assertAdmissionTtls(admission);
    return admitStepwise(this, admission, (secret) => this.writeSecret(secret));
  }

  /**
   * Starts a verification or adds the code to the live one (see SecretWrite). A join replaces the
   * record only at the version it read, so a concurrent attempt that consumed it or marked a lane
   * dead is never undone; a lost race is read again.
   */
  private async writeSecret(secret: SecretWrite): Promise<{ binding: string; joined: boolean }> {
    const code =
      secret.data === undefined ? { hash: secret.hash } : { hash: secret.hash, data: secret.data };
    const expires = this.exptime(secret.ttlSeconds);
    const expiresAt = Date.now() + secret.ttlSeconds * 1000;
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const found = await this.getVersioned(secret.key);
      const live = found && parseSecret(found.value.toString());
      // A lane marked dead has used up its attempts: the new code starts a new verification.
      if (!found || !live || live.expiresAt <= Date.now() || live.dead || live.deadBound) break;
      const joined: SecretRecord = {
        ...live,
        codes: [...live.codes, code].slice(-Math.max(1, secret.keep)),
        expiresAt: Math.max(live.expiresAt, expiresAt),
      };
      const result = await this.setVersion(secret.key, JSON.stringify(joined), expires, found.cas);
      if (result === 'done') {
        // The lane counters must live as long as the record they count for.
        await this.run(secret.key, (c) =>
          Promise.all(
            Object.values(LANES).map((lane) =>
              c.touch(this.derived(secret.key, `${lane.counter}:${live.id}`), expires),
            ),
          ),
        );
        return { binding: live.binding, joined: true };
      }
    }
    const record: SecretRecord = {
      id: randomBytes(12).toString('base64url'),
      binding: secret.binding,
      codes: [code],
      expiresAt,
    };
    const counters = Object.values(LANES).map((lane) =>
      this.derived(secret.key, `${lane.counter}:${record.id}`),
    );
    // All on the one connection to the key's server, counters first: memcached applies them in
    // that order, so the record is never readable before its counters exist.
    await this.run(secret.key, (c) =>
      Promise.all([
        ...counters.map((counter) => c.set(counter, '0', { expires })),
        c.set(this.key(secret.key), JSON.stringify(record), { expires }),
      ]),
    );
    return { binding: record.binding, joined: false };
  }

  /** The record at a logical key with its CAS version, or undefined when absent. */
  private async getVersioned(key: string): Promise<Versioned | undefined> {
    const { status, value, cas } = await this.run(key, (c) =>
      command(c, 'GETS', OPCODE.get, this.key(key)),
    );
    return status === STATUS_OK ? { value, cas } : undefined;
  }

  /** Deletes the record only while it still has version `cas`. */
  private async deleteVersion(key: string, cas: Buffer): Promise<SwapResult> {
    const { status } = await this.run(key, (c) =>
      command(c, 'DELETECAS', OPCODE.delete, this.key(key), { cas }),
    );
    return swapResult(status);
  }

  /** Replaces the record only while it still has version `cas`. */
  private async setVersion(
    key: string,
    value: string,
    expires: number,
    cas: Buffer,
  ): Promise<SwapResult> {
    // Set's extras: 4 bytes of flags (none), then the exptime.
    const extras = Buffer.alloc(8);
    extras.writeUInt32BE(expires, 4);
    const { status } = await this.run(key, (c) =>
      command(c, 'SETCAS', OPCODE.set, this.key(key), { extras, value, cas }),
    );
    return swapResult(status);
  }

  /**
   * The record again, when it still holds the same secret (same id) after a compare-and-swap
   * found it changed; undefined when that secret is gone (consumed, replaced or expired).
   */
  private async reread(
    key: string,
    id: string,
  ): Promise<{ record: SecretRecord; cas: Buffer } | undefined> {
    const found = await this.getVersioned(key);
    const record = found && parseSecret(found.value.toString());
    return found && record?.id === id ? { record, cas: found.cas } : undefined;
  }

  /**
   * Consumes the secret read at version `cas`: true for the one caller whose delete removed it.
   * A record changed since the read still holds this secret only when it was marked dead after
   * this caller's attempt was counted within the limit, so the delete is tried again on it.
   */
  private async consume(key: string, id: string, cas: Buffer): Promise<boolean> {
    let version = cas;
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const result = await this.deleteVersion(key, version);
      if (result !== 'changed') return result === 'done';
      const current = await this.reread(key, id);
      if (!current) return false;
      version = current.cas;
    }
    // Unreachable with a correct server; refusing is the safe answer.
    return false;
  }

  /**
   * Marks the secret read at version `cas` dead in its own record. Resolves 'dead' when this or
   * another caller did, 'gone' when the secret was consumed, replaced or expired meanwhile.
   */
  private async kill(
    key: string,
    record: SecretRecord,
    cas: Buffer,
    lane: Lane,
  ): Promise<'dead' | 'gone'> {
    const ttl = Math.max(1, Math.ceil((record.expiresAt - Date.now()) / 1000));
    let latest = record;
    let version = cas;
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      // Written from the latest read, so a code that joined meanwhile stays in the record.
      const dead = JSON.stringify({ ...latest, [lane.dead]: true } satisfies SecretRecord);
      const result = await this.setVersion(key, dead, this.exptime(ttl), version);
      if (result === 'done') return 'dead';
      if (result === 'gone') return 'gone';
      const current = await this.reread(key, record.id);
      if (!current) return 'gone';
      if (current.record[lane.dead]) return 'dead';
      latest = current.record;
      version = current.cas;
    }
    return 'dead';
  }

  async attempt({
    key,
    hash,
    maxAttempts,
    binding,
    failures = [],
    clearOnMatch = [],
  }: Attempt): Promise<AttemptOutcome> {
    assertFailureWindows(failures);
    const found = await this.getVersioned(key);
    const record = found && parseSecret(found.value.toString());
    // The record itself may outlive expiresAt by up to a second (see memcachedExptime).
    if (!found || !record || record.expiresAt <= Date.now()) return { status: 'missing' };
    if (binding !== undefined && !safeEqual(record.binding, binding)) return { status: 'missing' };
    const lane = binding === undefined ? LANES.open : LANES.bound;
    // A dead lane compares nothing, so it is refused before anything is reserved or counted.
    if (record[lane.dead]) return { status: 'locked' };

    // Reserve the failure before comparing: incr is the one atomic step that decides who may
    // compare, so concurrent guesses can never pass a counter's max.
    const reserved = await Promise.all(
      failures.map((failure) => this.increment(failure.key, failure.windowSeconds)),
    );
    const giveBack = () =>
      Promise.all(failures.map((failure) => this.decrement(failure.key))).then(() => undefined);
    const full = reserved.findIndex((state, i) => state.count > (failures[i] as FailureLimit).max);
    if (full >= 0) {
      await giveBack();
      return {
        status: 'exhausted',
        index: full,
        resetMs: (reserved[full] as CounterState).resetMs,
      };
    }

    let attempts: number;
    try {
      // Never creates the counter: putSecret did. A fresh one would hand out fresh attempts.
      const counted = await this.run(key, (c) =>
        c.increment(this.derived(key, `${lane.counter}:${record.id}`), 1, {
          initial: 0,
          expires: DO_NOT_CREATE,
        }),
      );
      attempts = Number(counted.value);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // The counter was dropped (evicted, or its server restarted) while the record stayed: how
      // many attempts were made is unknown, so none are left.
      // Nothing was compared, so nothing is charged either way.
      await giveBack();
      return (await this.kill(key, record, found.cas, lane)) === 'dead'
        ? { status: 'locked' }
        : { status: 'missing' };
    }

    // Every code is compared, so the time taken does not tell which one matched.
    let matched: SecretRecord['codes'][number] | undefined;
    if (attempts <= maxAttempts) {
      for (const code of record.codes) if (safeEqual(code.hash, hash)) matched = code;
    }
    if (matched) {
      const won = await this.consume(key, record.id, found.cas);
      await Promise.all([giveBack(), ...(won ? clearOnMatch.map((k) => this.delete(k)) : [])]);
      if (!won) return { status: 'missing' };
      return matched.data === undefined
        ? { status: 'match', attempts }
        : { status: 'match', attempts, data: matched.data };
    }
    if (attempts > maxAttempts) {
      // Normally the caller of the last allowed miss has marked it dead already; this one may
      // have overtaken it. A secret consumed or replaced meanwhile reads as missing.
      // Nothing was compared, so nothing is charged either way.
      await giveBack();
      return (await this.kill(key, record, found.cas, lane)) === 'dead'
        ? { status: 'locked' }
        : { status: 'missing' };
    }
    // The last allowed miss kills the lane in its own record, so that it stays dead even if
    // memcached drops the counter.
    if (attempts === maxAttempts) await this.kill(key, record, found.cas, lane);
    return { status: 'mismatch', attempts, remaining: maxAttempts - attempts };
  }

  /** A stats round trip to every server, since any one of them may hold a given key. */
  async ping(): Promise<void> {
    const states = await this.pingEach();
    const failed = states.find((state) => state.error !== undefined);
    if (failed) throw failed.error;
  }

  /** One stats round trip to each server at once; see Store.pingEach. */
  async pingEach(): Promise<ServerState[]> {
    return Promise.all(
      this.shards.map((shard) =>
        this.runOn(
          shard,
          (c) =>
            new Promise<void>((resolve, reject) => {
              // One server per client, so the callback runs once.
              c.stats((err) => (err ? reject(err) : resolve()));
            }),
        ).then(
          (): ServerState => ({ server: shard.name, ok: true }),
          (error: unknown): ServerState => ({ server: shard.name, ok: false, error }),
        ),
      ),
    );
  }

  async cleanup(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const shard of this.shards) shard.client.close();
  }
}

function swapResult(status: number): SwapResult {
  if (status === STATUS_OK) return 'done';
  return status === STATUS_NOT_FOUND ? 'gone' : 'changed';
}
