/**
 * The storage contract. A store has two layers:
 *
 * 1. **Primitives** (`StorePrimitives`), required of every backend, including one an embedder
 *    writes: eight generic operations named for what they do to storage, in the spirit of
 *    express-rate-limit's three-method `Store` and keyv's adapters. Nothing in them knows about
 *    codes, sends or limits.
 * 2. **Capabilities** (`StoreCapabilities`), the two flow-level atomic operations verifyd needs: a
 *    send's admission (`admit`) and a code's attempt (`attempt`). A backend MAY implement them
 *    natively, in one round trip (the memory store, Redis scripts, memcached's compare-and-swap);
 *    `completeStore` (bridge.ts) fills in whatever a backend lacks with one shared stepwise
 *    implementation built from the primitives. Services only ever see the completed store.
 *
 * Conventions for every member:
 * - Keys are given WITHOUT the configured KEY_PREFIX; the backend adds it, so two deployments
 *   sharing a server never see each other's keys. Keys are built in one module (keys.ts).
 * - TTLs are whole seconds, at least 1. "Expired" means the entry behaves exactly as if it had
 *   never been written: reads return undefined, set-if-absent succeeds, counters restart.
 * - Every primitive is a single atomic step as seen by other callers, in this process or any
 *   other process sharing the backend.
 * - Errors: a backend that cannot be reached, or does not answer within its timeout, rejects with
 *   StoreUnavailableError. It never resolves as "absent" in that case, so callers fail closed.
 *   Programming errors (a TTL below 1) throw a plain Error.
 * - A StoreUnavailableError means "unknown": a write that timed out may still be applied later.
 * - Memcached counts time in whole seconds, so there an entry may outlive its TTL by up to 1 s and
 *   `resetMs` is approximate; it never expires early.
 * - Placement: a backend that spreads keys over several servers (Memcached with several servers,
 *   Redis Cluster) keeps keys whose first `{...}` holds the same text together, as Redis Cluster
 *   does with hash tags; a key without braces is placed by all of it. keys.ts puts the recipient's
 *   id or the client's key in braces, so one dead server fails the requests of its own recipients
 *   and clients, not a share of everybody's, and a flow's keys share a server where they can.
 *   Keys that one capability must treat as one step share a tag: a counter and its distinct
 *   marker, and a verification and the failure counters of its attempts. A backend that spreads
 *   keys (Redis Cluster) refuses other combinations with a plain Error.
 * - Records: a key that begins with a tag, `{tag}name`, is a part of the record named by the tag
 *   (keys.ts builds all of a recipient's state so). A part behaves exactly as a key of its own for
 *   every member. A backend MAY keep a record's parts together as one entry, which saves what an
 *   entry costs beyond its value: Redis keeps a record as one key holding every part with its own
 *   end. Other backends treat parts as plain keys. An empty tag (`{}name`) is not a record.
 */
export interface StorePrimitives {
  /** Which backend this is, as named by STORE (an embedder's store names itself). */
  readonly backend: string;

  /** The stored value, or undefined when the key is absent or expired. */
  get(key: string): Promise<string | undefined>;

  /** Writes the value, replacing any earlier value, and (re)starts its TTL. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;

  /** Writes only when the key is absent or expired. Resolves true when this call wrote it. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;

  /** Removes the key. Resolves true when this call removed something (so exactly one of many
   * concurrent deletes of one entry resolves true). */
  delete(key: string): Promise<boolean>;

  /**
   * Fixed-window counter: adds 1 and returns the new count. The first increment of a window
   * creates the counter with a TTL of `windowSeconds`; later increments do not extend it.
   * `resetMs` is the time left in the window, in milliseconds. `get` reads the count as a decimal
   * string.
   */
  increment(key: string, windowSeconds: number): Promise<CounterState>;

  /**
   * Takes 1 back from a live counter made by `increment`, never below 0, without touching its
   * TTL. Does nothing when the key is absent.
   */
  decrement(key: string): Promise<void>;

  /**
   * Resolves when the backend answers a round trip (every server of a backend that has several);
   * rejects with StoreUnavailableError.
   */
  ping(): Promise<void>;

  /** Releases connections and timers. The store is unusable afterwards. */
  close(): Promise<void>;
}

/** Optional housekeeping and maintenance members. */
export interface StoreHousekeeping {
  /**
   * Backends that spread keys over several servers: one round trip to each, saying which answered,
   * so that /health can tell a partial outage from a total one. Never rejects.
   */
  pingEach?(): Promise<ServerState[]>;

  /**
   * Lists live and expired-but-not-yet-removed entries, for maintenance. Absent when the backend
   * cannot enumerate keys (Memcached): callers must say so instead of guessing.
   */
  readonly scan?: () => AsyncIterable<StoreEntry>;

  /**
   * Removes entries that have expired but still occupy space, returning how many. A store that
   * needs this done regularly schedules it itself (the memory store sweeps on a timer); backends
   * with native expiry leave it out. The CLI's `clean` calls it once.
   */
  cleanup?(): Promise<number>;
}

/**
 * The flow-level operations, each ONE atomic step as seen by other callers where a backend
 * implements it natively. The stepwise bridge keeps every limit exact under concurrency but not
 * isolation: see bridge.ts for what concurrent callers may briefly see.
 */
export interface StoreCapabilities {
  /**
   * Checks and charges a send's limits and stores its secret, as one step. In order, stopping at
   * the first refusal:
   * 1. `gate`: written only when absent, as with setIfAbsent. When present, resolves `gated` with
   *    the present value and counts nothing. A gate this call wrote is removed again when a counter
   *    then refuses: a refused send leaves no cooldown behind, or a client past its own limits
   *    could keep any recipient in cooldown without a message ever being sent. Exactly one of many
   *    concurrent callers still gets through: the others find the gate while its claimer holds it
   *    (and may be refused by a claim that a counter then refuses).
   * 2. `counters`: all or none. Each counts 1 in its fixed window, as `increment` does. When any
   *    count would pass its `max`, resolves `exceeded` with that counter's index and `resetMs`,
   *    and counts none of them. A counter with a `distinct` marker counts only when the marker key
   *    is absent, and then writes the marker; a present marker leaves the counter as it is.
   * 3. `secret`: written only once everything above allowed the call, so a refused send never
   *    touches the codes its recipient already holds. See SecretWrite for how a new code joins a
   *    live verification.
   * Resolves `admitted` with which counters counted (so the caller can give them back with
   * `decrement`, and `delete` the gate and markers) and the binding of the verification the
   * secret joined. Keys must be distinct.
   */
  admit(admission: Admission): Promise<AdmissionOutcome>;

  /**
   * One attempt at a verification's secrets, as ONE step. In order, stopping at the first that
   * decides:
   * 1. No live verification at `key` (never written, expired, consumed), or `binding` is given and
   *    differs from the verification's: resolves `missing`, counting nothing. A wrong binding says
   *    no more than an absent verification.
   * 2. `failures` (e.g. the recipient's wrong guesses per hour and per day): when any already holds
   *    its `max`, resolves `exhausted` with its index and the time left in its window; nothing is
   *    counted and nothing compared.
   * 3. The attempt counts in its lane: attempts presenting the binding count in the bound lane,
   *    others in the open lane. Each lane allows `maxAttempts` over all the verification's codes;
   *    past them the lane answers `locked` (right or wrong) while the other is unaffected, so
   *    guesses without the binding can never use up the attempts of whoever holds it.
   * 4. `hash` is compared with every code the verification holds (constant-time where the backend
   *    compares in this process). On a match the verification is consumed, all its codes and both
   *    lanes, so exactly one caller ever sees `match`, carrying the matching code's `data`.
   * 5. A `mismatch` counts 1 on every `failures` counter. Together with step 2 this bounds the
   *    wrong hashes compared per window to `max`, however many attempts arrive at once. An attempt
   *    at a `locked` lane compares nothing and counts nothing.
   * Backends without transactions reserve the failure count before comparing and give it back
   * unless the attempt ends `mismatch`: in a burst they may refuse an attempt that a transaction
   * would have let through, never the reverse.
   */
  attempt(attempt: Attempt): Promise<AttemptOutcome>;
}

/** What a backend offers: the primitives, and whatever else it implements natively. */
export type Store = StorePrimitives & StoreHousekeeping & Partial<StoreCapabilities>;

/** A store with every capability, native or bridged: what services use (see completeStore). */
export type CompleteStore = StorePrimitives & StoreHousekeeping & StoreCapabilities;

export type StoreBackend = 'memory' | 'redis' | 'memcached' | 'postgres' | 'sqlite';

export interface ServerState {
  /** host:port, without credentials. */
  server: string;
  ok: boolean;
  /** Why it did not answer (a StoreUnavailableError). */
  error?: unknown;
}

export interface CounterState {
  /** The count after this increment, starting at 1 in a new window. */
  count: number;
  /** Milliseconds until the window ends and the count restarts. */
  resetMs: number;
}

export interface Admission {
  gate?: { key: string; value: string; ttlSeconds: number };
  counters: readonly AdmissionCounter[];
  secret?: SecretWrite;
}

export interface AdmissionCounter {
  key: string;
  windowSeconds: number;
  /** The highest count the window allows. */
  max: number;
  /** Counts each marker once per the marker's TTL (e.g. one recipient per client per hour). */
  distinct?: { key: string; ttlSeconds: number };
}

/**
 * A code (its HMAC, never the plain value) for the verification at `key`.
 * - When no live verification is there, a new one starts: it holds this code, the given
 *   `binding`, fresh attempt lanes, and lives `ttlSeconds`.
 * - When one is there (a resend), the code joins it: the verification keeps its binding and its
 *   attempt counts, holds its newest `keep` codes (older ones drop out), and lives `ttlSeconds`
 *   from now. So a person who types the first code after asking for another still succeeds.
 * - A verification with a lane that has used up its `maxAttempts` is not joined: the write starts a
 *   new one, or the person who locked it could never verify until it expired.
 */
export interface SecretWrite {
  key: string;
  hash: string;
  ttlSeconds: number;
  /** How many of the verification's newest codes stay usable, at least 1. */
  keep: number;
  /** The attempts each lane allows, as the attempts will be told (see above). */
  maxAttempts: number;
  /** What an attempt must present to use the bound lane, for a verification this write starts. */
  binding: string;
  /** Handed back by the attempt that matches this code (the caller seals what must not be read). */
  data?: string;
}

export interface Attempt {
  key: string;
  hash: string;
  maxAttempts: number;
  /** Attempt in the bound lane: refused as `missing` unless it equals the verification's binding. */
  binding?: string;
  /** Counters that refuse the attempt at their max and count it when it ends wrong. */
  failures?: readonly FailureLimit[];
  /**
   * Keys deleted when a code matches (e.g. a failure window that a success starts over), sharing
   * the verification's placement tag; one step with the match where the backend is native.
   */
  clearOnMatch?: readonly string[];
}

/** A fixed-window counter of wrong attempts, as `increment` keeps it. */
export interface FailureLimit {
  key: string;
  windowSeconds: number;
  /** Wrong attempts the window allows. */
  max: number;
}

export type AdmissionOutcome =
  /**
   * Every limit allowed it; `counted[i]` says whether counters[i] counted (see `distinct`).
   * With a secret: `binding` is the verification's (the given one when this write started it),
   * and `joined` says whether the code joined a live verification.
   */
  | { status: 'admitted'; counted: boolean[]; binding?: string; joined?: boolean }
  /** The gate was already there, holding `value`. */
  | { status: 'gated'; value: string }
  /** counters[index] is full until its window ends in `resetMs` milliseconds. */
  | { status: 'exceeded'; index: number; resetMs: number };

export type AttemptOutcome =
  /** A code matched; the verification is consumed. `attempts`: this lane's, including this one. */
  | { status: 'match'; attempts: number; data?: string }
  /** No code matched; `remaining` attempts are left in this lane. */
  | { status: 'mismatch'; attempts: number; remaining: number }
  /** This lane's attempts are used up; it refuses everything until the verification expires. */
  | { status: 'locked' }
  /** No live verification (or a wrong binding). */
  | { status: 'missing' }
  /** failures[index] is full for `resetMs` more milliseconds; nothing was compared or counted. */
  | { status: 'exhausted'; index: number; resetMs: number };

export interface StoreEntry {
  /** The key without KEY_PREFIX. */
  key: string;
  /** Milliseconds left before expiry; 0 or less when expired but not yet removed. */
  ttlMs: number;
  /** Milliseconds since the entry was written, when the backend knows it. */
  ageMs?: number;
}
