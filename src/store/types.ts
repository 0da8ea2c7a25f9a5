/**
 * The one storage contract every backend (memory, Redis, Memcached) implements.
 *
 * Conventions for every member:
 * - Keys are given WITHOUT the configured KEY_PREFIX; the backend adds it, so two deployments
 *   sharing a server never see each other's keys.
 * - TTLs are whole seconds, at least 1. "Expired" means the entry behaves exactly as if it had
 *   never been written: reads return undefined, set-if-absent succeeds, counters restart.
 * - Every operation is a single atomic step as seen by other callers, in this process or any
 *   other process sharing the backend.
 * - Errors: a backend that cannot be reached, or does not answer within its timeout, rejects with
 *   StoreUnavailableError. It never resolves as "absent" in that case, so callers fail closed.
 *   Programming errors (a TTL below 1, an unsupported capability) throw a plain Error.
 * - A StoreUnavailableError means "unknown": a write that timed out may still be applied later.
 * - Memcached counts time in whole seconds, so there an entry may outlive its TTL by up to 1 s and
 *   `resetMs` is approximate; it never expires early.
 * - Reading a secret written by `putSecret` with `get` is unspecified; only attemptSecret reads it.
 * - Placement: a backend that spreads keys over several servers (Memcached with more than one in
 *   MEMCACHED_SERVERS) keeps keys whose first `{...}` holds the same text on the same server, as
 *   Redis Cluster does with hash tags; a key without braces is placed by all of it. Services put
 *   the recipient's id or the client's address in braces, so one dead server fails the requests
 *   of its own recipients and clients, not a share of everybody's.
 */
export interface Store {
  /** Which backend this is, as named by STORE. */
  readonly backend: StoreBackend;

  /** The stored value, or undefined when the key is absent or expired. */
  get(key: string): Promise<string | undefined>;

  /** Writes the value, replacing any earlier value, and (re)starts its TTL. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;

  /** Writes only when the key is absent or expired. Resolves true when this call wrote it. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;

  /** Removes the key. Resolves true when something was removed. */
  delete(key: string): Promise<boolean>;

  /**
   * Fixed-window counter: adds 1 and returns the new count. The first increment of a window
   * creates the counter with a TTL of `windowSeconds`; later increments do not extend it.
   * `resetMs` is the time left in the window, in milliseconds.
   */
  increment(key: string, windowSeconds: number): Promise<CounterState>;

  /**
   * Takes 1 back from a live counter made by `increment`, never below 0, without touching its
   * TTL. Used to refund a send the provider did not deliver. Does nothing when the key is absent.
   */
  decrement(key: string): Promise<void>;

  /**
   * Checks and charges several limits as one step: a send costs one call, and no concurrent caller
   * can act between a check and its count. The steps run in this order and stop at the first
   * refusal:
   * 1. `blockers`: when any of these keys holds a value, resolves `blocked` with its index and
   *    value. Nothing is written.
   * 2. `gate`: written only when absent, as with setIfAbsent. When present, resolves `gated` with
   *    the present value and counts nothing. A gate this call wrote stays written when a counter
   *    then refuses: it is what lets exactly one of many concurrent callers through.
   * 3. `counters`: all or none. Each counts 1 in its fixed window, as `increment` does. When any
   *    count would pass its `max`, resolves `exceeded` with that counter's index and `resetMs`,
   *    and counts none of them. A counter with a `distinct` marker counts only when the marker key
   *    is absent, and then writes the marker; a present marker leaves the counter as it is.
   * 4. `secret`: stored as putSecret stores it, only once everything above allowed the call, so
   *    a refused send never replaces the code its recipient already holds.
   * Resolves `admitted` with which counters counted, so that a caller can give them back later
   * with `decrement` (and `delete` for the gate, markers and secret). Keys must be distinct.
   * Backends without transactions (Memcached), and Redis Cluster when the keys span hash slots
   * (one script per slot), run the steps as separate operations and take back what a refusal
   * counted; concurrent callers may briefly see those counts.
   */
  admit(admission: Admission): Promise<AdmissionOutcome>;

  /**
   * Stores a one-time secret (the HMAC of a code or token id, never the plain value), replacing
   * any earlier secret at that key together with its attempt counts, binding and data.
   * `extras.binding` (an HMAC, e.g. of the id of the verification that asked for the code) is what
   * an attempt must present to use the secret's bound lane (see attemptSecret); `extras.data` is
   * an opaque string handed back by the attempt that matches (the caller seals what must not be
   * readable in a dump).
   */
  putSecret(key: string, hash: string, ttlSeconds: number, extras?: SecretExtras): Promise<void>;

  /**
   * One attempt at a stored secret, as ONE atomic step: no concurrent caller, in this process or
   * another, acts between the checks and the counts below. The steps, stopping at the first that
   * decides:
   * 1. `options.blocker`: when a value is stored there, resolves `blocked` with it; nothing is
   *    counted, the secret is not looked at.
   * 2. No secret (never stored, expired, replaced and consumed, consumed), or `options.binding`
   *    is given and differs from the secret's binding (or the secret has none): resolves
   *    `missing`, counting nothing. A wrong binding says no more than an absent secret.
   * 3. `options.failures` (e.g. the recipient's wrong guesses per hour and per day): when any of
   *    these counters already holds its `max`, resolves `exhausted` with its index and the time
   *    left in its window; nothing is counted and the secret is not compared.
   * 4. The attempt counts in its lane: attempts presenting the binding count in the bound lane,
   *    others in the open lane. Each lane allows `maxAttempts`; past them the lane answers
   *    `locked` (right or wrong) while the other lane is unaffected, so guesses without the
   *    binding can never use up or lock the attempts of whoever holds it.
   * 5. On a match the secret is consumed (both lanes), so exactly one caller ever sees `match`,
   *    which carries the secret's `data`. The comparison of hashes is constant-time where the
   *    backend compares in this process.
   * 6. An attempt that ends `mismatch` counts 1 on every `failures` counter, in its fixed window
   *    as `increment` counts. Together with step 3 this bounds, per window, the attempts that
   *    compare a wrong hash to `max` however many arrive at once: a burst can never pass the
   *    count. An attempt at a `locked` lane compares nothing and counts nothing, so attempts at a
   *    dead secret cannot spend the counters of whoever shares them. Backends without
   *    transactions (Memcached) reserve the count before comparing and give it back unless the
   *    attempt ends `mismatch`; in a burst they may then refuse an attempt that a transaction
   *    would have let through, never the reverse.
   */
  attemptSecret(
    key: string,
    hash: string,
    maxAttempts: number,
    options?: AttemptOptions,
  ): Promise<AttemptOutcome>;

  /**
   * Resolves when the backend answers a round trip (every server of a backend that has several);
   * rejects with StoreUnavailableError.
   */
  ping(): Promise<void>;

  /**
   * Backends that spread keys over several servers: one round trip to each, saying which answered,
   * so that /health can tell a partial outage (keys on the dead servers fail, the rest work) from
   * a total one. Never rejects.
   */
  pingEach?(): Promise<ServerState[]>;

  /**
   * Lists live and expired-but-not-yet-removed entries, for maintenance. Undefined when the
   * backend cannot enumerate keys (Memcached): callers must say so instead of guessing.
   */
  readonly scan?: () => AsyncIterable<StoreEntry>;

  /**
   * Removes entries that have expired but still occupy space, returning how many. Backends with
   * native expiry (Redis, Memcached) resolve 0.
   */
  cleanup(): Promise<number>;

  /** Releases connections and timers. The store is unusable afterwards. */
  close(): Promise<void>;
}

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
  blockers?: readonly string[];
  gate?: { key: string; value: string; ttlSeconds: number };
  counters: readonly AdmissionCounter[];
  secret?: SecretWrite;
}

/** A one-time secret to store as putSecret would. */
export interface SecretWrite extends SecretExtras {
  key: string;
  hash: string;
  ttlSeconds: number;
}

/** What a secret may carry besides its hash; see putSecret. */
export interface SecretExtras {
  /** What an attempt must present to use the bound lane. */
  binding?: string;
  /** Handed back by the attempt that matches. */
  data?: string;
}

export interface AttemptOptions {
  /** A key whose stored value refuses the attempt before anything is counted. */
  blocker?: string;
  /** Attempt in the bound lane: refused as `missing` unless it equals the secret's binding. */
  binding?: string;
  /** Counters that refuse the attempt at their max and count it when it ends wrong. */
  failures?: readonly FailureLimit[];
}

/** A fixed-window counter of wrong attempts, as `increment` keeps it. */
export interface FailureLimit {
  key: string;
  windowSeconds: number;
  /** Wrong attempts the window allows. */
  max: number;
}

export interface AdmissionCounter {
  key: string;
  windowSeconds: number;
  /** The highest count the window allows. */
  max: number;
  /** Counts each marker once per the marker's TTL (e.g. one recipient per client per hour). */
  distinct?: { key: string; ttlSeconds: number };
}

export type AdmissionOutcome =
  /** Every limit allowed it; `counted[i]` says whether counters[i] counted (see `distinct`). */
  | { status: 'admitted'; counted: boolean[] }
  /** blockers[index] holds `value`. */
  | { status: 'blocked'; index: number; value: string }
  /** The gate was already there, holding `value`. */
  | { status: 'gated'; value: string }
  /** counters[index] is full until its window ends in `resetMs` milliseconds. */
  | { status: 'exceeded'; index: number; resetMs: number };

export type AttemptOutcome =
  /**
   * The hash matched; the secret is now consumed. `attempts` (this lane's) includes this one;
   * `data` is the secret's, when it has any.
   */
  | { status: 'match'; attempts: number; data?: string }
  /** The hash did not match; `remaining` attempts are left before the secret locks. */
  | { status: 'mismatch'; attempts: number; remaining: number }
  /** Too many attempts were made; the secret refuses everything until it expires. */
  | { status: 'locked' }
  /** No secret: never stored, expired, replaced and consumed, or already consumed. */
  | { status: 'missing' }
  /** The blocker key holds `value`; the secret was not looked at. */
  | { status: 'blocked'; value: string }
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
