import { StoreUnavailableError } from '../../src/errors';
import { completeStore } from '../../src/store/bridge';
import type { CompleteStore, Store } from '../../src/store/types';
import { attemptSecret, putSecret, secretWrite } from '../support/secrets';
import { sleep, uniquePrefix } from '../support/servers';

/** Hooks around a private server that the suite may stop, freeze and restart. */
export interface OutageHooks {
  /** A store connected to the private server, with a short timeout. */
  create(prefix: string): Store | Promise<Store>;
  /** Kills the server abruptly; resolves when it is gone. */
  stop(): Promise<void>;
  /** Starts it again (empty) on the same address; resolves when it answers. */
  start(): Promise<void>;
  /** Freezes the server: connections stay open and nothing is answered. */
  pause(): Promise<void>;
  resume(): void;
}

export interface ConformanceFactory {
  /** A fresh store using `prefix` as its KEY_PREFIX. */
  create(prefix: string): Store | Promise<Store>;
  /** Lets `ms` pass: moves a fake clock for the memory store, sleeps for the others. */
  advance(ms: number): Promise<void>;
  /**
   * How much later than its TTL the backend may drop an entry: 0 for the memory store's exact
   * clock, a little for Redis, a second more for memcached's one-second clock.
   */
  expiryGraceMs: number;
  /** Whether the backend can enumerate its keys. */
  canScan: boolean;
  outage?: OutageHooks;
}

const RIGHT = 'hmac-of-the-right-code';
const WRONG = 'hmac-of-a-wrong-code';

/** Retries `fn` until it resolves, for up to `timeoutMs`; rethrows the last failure. */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

async function collectScan(store: Store) {
  const entries = [];
  for await (const entry of store.scan?.() ?? []) entries.push(entry);
  return entries.sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * The Store contract as executable checks, run unchanged against every backend (in the spirit of
 * keyv's shared test suite). TTLs are 1-3 s so real backends can be tested by actually waiting.
 */
export function runStoreConformance(name: string, factory: ConformanceFactory): void {
  describe(`${name} store: conformance`, () => {
    const opened: Store[] = [];
    // Whatever the backend lacks, the bridge supplies: the suite holds both to the contract.
    const open = async (label: string, prefix = uniquePrefix(label)): Promise<CompleteStore> => {
      const store = await factory.create(prefix);
      opened.push(store);
      return completeStore(store);
    };
    const pastTtl = (seconds: number) => factory.advance(seconds * 1000 + factory.expiryGraceMs);

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    it('names its backend', async () => {
      const store = await open('backend');
      expect(store.backend).toBe(name);
    });

    describe('get, set, delete', () => {
      it('reads back what was written, replaces it, and deletes it', async () => {
        const store = await open('basic');
        expect(await store.get('k')).toBeUndefined();
        await store.set('k', 'one', 60);
        expect(await store.get('k')).toBe('one');
        await store.set('k', 'two', 60);
        expect(await store.get('k')).toBe('two');
        expect(await store.delete('k')).toBe(true);
        expect(await store.get('k')).toBeUndefined();
        expect(await store.delete('k')).toBe(false);
      });

      it('keeps values byte for byte', async () => {
        const store = await open('bytes');
        const value = 'ünïcødé ✓ "quoted" {json} \n second line';
        await store.set('k', value, 60);
        expect(await store.get('k')).toBe(value);
      });

      it('drops a value once its TTL has passed', async () => {
        const store = await open('ttl');
        await store.set('k', 'v', 1);
        expect(await store.get('k')).toBe('v');
        await pastTtl(1);
        expect(await store.get('k')).toBeUndefined();
      });

      it('restarts the TTL when a value is replaced', async () => {
        const store = await open('ttl-restart');
        await store.set('k', 'first', 1);
        await factory.advance(500);
        await store.set('k', 'second', 3);
        // Past the first TTL (plus grace), well inside the second one.
        await factory.advance(500 + factory.expiryGraceMs);
        expect(await store.get('k')).toBe('second');
      });

      it('refuses TTLs that are not whole seconds of at least 1, writing nothing', async () => {
        const store = await open('bad-ttl');
        for (const ttl of [0, -1, 1.5, Number.NaN]) {
          for (const call of [
            () => store.set('k', 'v', ttl),
            () => store.setIfAbsent('k', 'v', ttl),
            () => store.increment('c', ttl),
            () => putSecret(store, 's', RIGHT, ttl),
          ]) {
            const error = await call().then(
              () => undefined,
              (err: unknown) => err,
            );
            expect(error).toBeInstanceOf(Error);
            expect(error).not.toBeInstanceOf(StoreUnavailableError);
          }
        }
        expect(await store.get('k')).toBeUndefined();
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
        expect((await store.increment('c', 60)).count).toBe(1);
      });
    });

    describe('setIfAbsent', () => {
      it('writes only the first time, and again once the value expired', async () => {
        const store = await open('nx');
        expect(await store.setIfAbsent('k', 'first', 1)).toBe(true);
        expect(await store.setIfAbsent('k', 'second', 1)).toBe(false);
        expect(await store.get('k')).toBe('first');
        await pastTtl(1);
        expect(await store.setIfAbsent('k', 'third', 60)).toBe(true);
        expect(await store.get('k')).toBe('third');
      });

      it('lets exactly one of many concurrent callers win', async () => {
        const store = await open('nx-race');
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.setIfAbsent('k', `caller-${i}`, 60)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect(await store.get('k')).toBe(`caller-${winner}`);
      });
    });

    describe('increment', () => {
      it('counts from 1 and reports a shrinking time left in the window', async () => {
        const store = await open('count');
        const first = await store.increment('c', 2);
        expect(first.count).toBe(1);
        expect(first.resetMs).toBeGreaterThan(0);
        expect(first.resetMs).toBeLessThanOrEqual(2000);
        await factory.advance(300);
        const second = await store.increment('c', 2);
        expect(second.count).toBe(2);
        expect(second.resetMs).toBeGreaterThan(0);
        expect(second.resetMs).toBeLessThan(first.resetMs);
        expect((await store.increment('c', 2)).count).toBe(3);
      });

      it('sets the window on the first increment only, then restarts after it', async () => {
        const store = await open('window');
        expect((await store.increment('c', 3)).count).toBe(1);
        await factory.advance(2000);
        const later = await store.increment('c', 3);
        expect(later.count).toBe(2);
        // Had this increment restarted the window, the counter would live until 5 s.
        expect(later.resetMs).toBeLessThanOrEqual(1000);
        await factory.advance(1000 + factory.expiryGraceMs);
        const fresh = await store.increment('c', 3);
        expect(fresh.count).toBe(1);
        expect(fresh.resetMs).toBeGreaterThan(2000);
      });

      it('counts 200 concurrent increments exactly once each', async () => {
        const store = await open('count-race');
        const results = await Promise.all(
          Array.from({ length: 200 }, () => store.increment('c', 60)),
        );
        const counts = results.map((r) => r.count).sort((a, b) => a - b);
        expect(counts).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect((await store.increment('c', 60)).count).toBe(201);
      });

      it('keeps separate counters per key', async () => {
        const store = await open('count-keys');
        await store.increment('a', 60);
        await store.increment('a', 60);
        expect((await store.increment('b', 60)).count).toBe(1);
        expect((await store.increment('a', 60)).count).toBe(3);
      });
    });

    describe('decrement', () => {
      it('takes one back, never below 0', async () => {
        const store = await open('decr');
        await store.increment('c', 60);
        await store.increment('c', 60);
        await store.decrement('c');
        expect((await store.increment('c', 60)).count).toBe(2);
        await store.decrement('c');
        await store.decrement('c');
        await store.decrement('c');
        expect((await store.increment('c', 60)).count).toBe(1);
      });

      it('does not create an absent counter', async () => {
        const store = await open('decr-absent');
        await store.decrement('c');
        expect(await store.get('c')).toBeUndefined();
        expect((await store.increment('c', 60)).count).toBe(1);
      });

      it('leaves the window unchanged', async () => {
        const store = await open('decr-ttl');
        await store.increment('c', 1);
        await store.increment('c', 1);
        await store.decrement('c');
        await pastTtl(1);
        expect((await store.increment('c', 1)).count).toBe(1);
      });
    });

    describe('putSecret / attemptSecret', () => {
      it('matches once and then reports the secret missing', async () => {
        const store = await open('secret-match');
        await putSecret(store, 's', RIGHT, 60);
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'match', attempts: 1 });
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
        expect(await attemptSecret(store, 's', WRONG, 5)).toEqual({ status: 'missing' });
      });

      it('reports mismatches with the attempts left, and counts them towards a match', async () => {
        const store = await open('secret-miss');
        await putSecret(store, 's', RIGHT, 60);
        expect(await attemptSecret(store, 's', WRONG, 5)).toEqual({
          status: 'mismatch',
          attempts: 1,
          remaining: 4,
        });
        expect(await attemptSecret(store, 's', WRONG, 5)).toEqual({
          status: 'mismatch',
          attempts: 2,
          remaining: 3,
        });
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'match', attempts: 3 });
      });

      it('locks after maxAttempts, even for the right hash, and stays locked', async () => {
        const store = await open('secret-lock');
        await putSecret(store, 's', RIGHT, 60);
        for (const remaining of [2, 1, 0]) {
          const outcome = await attemptSecret(store, 's', WRONG, 3);
          expect(outcome).toMatchObject({ status: 'mismatch', remaining });
        }
        expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'locked' });
        expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'locked' });
      });

      it('replaces the secret and its attempt count on putSecret', async () => {
        const store = await open('secret-replace');
        await putSecret(store, 's', 'old-hash', 60);
        await attemptSecret(store, 's', WRONG, 2);
        await attemptSecret(store, 's', WRONG, 2);
        expect(await attemptSecret(store, 's', 'old-hash', 2)).toEqual({ status: 'locked' });
        await putSecret(store, 's', RIGHT, 60);
        expect(await attemptSecret(store, 's', 'old-hash', 2)).toEqual({
          status: 'mismatch',
          attempts: 1,
          remaining: 1,
        });
        expect(await attemptSecret(store, 's', RIGHT, 2)).toEqual({ status: 'match', attempts: 2 });
      });

      it('reports a secret that was never stored, or is a plain value, as missing', async () => {
        const store = await open('secret-none');
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
        await store.set('plain', RIGHT, 60);
        expect(await attemptSecret(store, 'plain', RIGHT, 5)).toEqual({ status: 'missing' });
      });

      it('stores a secret over a plain value, with putSecret and with admit', async () => {
        const store = await open('secret-over-plain');
        await store.set('a', 'plain', 60);
        await putSecret(store, 'a', RIGHT, 60);
        expect(await attemptSecret(store, 'a', RIGHT, 5)).toEqual({ status: 'match', attempts: 1 });
        await store.set('b', 'plain', 60);
        await store.admit({ counters: [], secret: secretWrite('b', RIGHT, 60) });
        expect(await attemptSecret(store, 'b', RIGHT, 5)).toEqual({ status: 'match', attempts: 1 });
      });

      it('reports an expired secret as missing', async () => {
        const store = await open('secret-ttl');
        await putSecret(store, 's', RIGHT, 1);
        await pastTtl(1);
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
      });

      it('adds a code to the live verification: any of its newest `keep` codes matches once', async () => {
        const store = await open('secret-join');
        const write = (hash: string) =>
          store.admit({
            counters: [],
            secret: secretWrite('s', hash, 60, { keep: 2, binding: `b-${hash}` }),
          });
        expect(await write('h1')).toMatchObject({ binding: 'b-h1', joined: false });
        expect(await write('h2')).toMatchObject({ binding: 'b-h1', joined: true });
        expect(await write('h3')).toMatchObject({ binding: 'b-h1', joined: true });
        // h1 dropped out; h2 and h3 are one verification with one binding and one attempt count.
        expect(await attemptSecret(store, 's', 'h1', 5)).toEqual({
          status: 'mismatch',
          attempts: 1,
          remaining: 4,
        });
        expect(await attemptSecret(store, 's', 'h2', 5, { binding: 'b-h2' })).toEqual({
          status: 'missing',
        });
        expect(await attemptSecret(store, 's', 'h2', 5)).toEqual({ status: 'match', attempts: 2 });
        // A success consumes every code; the next write starts afresh with its own binding.
        expect(await attemptSecret(store, 's', 'h3', 5)).toEqual({ status: 'missing' });
        expect(await write('h4')).toMatchObject({ binding: 'b-h4', joined: false });
        expect(await attemptSecret(store, 's', 'h4', 5, { binding: 'b-h4' })).toEqual({
          status: 'match',
          attempts: 1,
        });
      });

      it('hands back the data of the code that matched', async () => {
        const store = await open('secret-join-data');
        for (const [hash, data] of [
          ['h1', 'user-1'],
          ['h2', 'user-2'],
        ] as const) {
          await store.admit({
            counters: [],
            secret: secretWrite('s', hash, 60, { keep: 2, data }),
          });
        }
        expect(await attemptSecret(store, 's', 'h1', 5)).toEqual({
          status: 'match',
          attempts: 1,
          data: 'user-1',
        });
      });

      it('starts a new verification instead of joining one whose lane is used up', async () => {
        const store = await open('secret-join-locked');
        const write = (hash: string, binding: string) =>
          store.admit({
            counters: [],
            secret: secretWrite('s', hash, 60, { keep: 3, maxAttempts: 2, binding }),
          });
        await write('h1', 'first');
        await attemptSecret(store, 's', WRONG, 2);
        await attemptSecret(store, 's', WRONG, 2);
        expect(await attemptSecret(store, 's', 'h1', 2)).toEqual({ status: 'locked' });
        expect(await write('h2', 'second')).toMatchObject({ binding: 'second', joined: false });
        expect(await attemptSecret(store, 's', 'h1', 2)).toMatchObject({ status: 'mismatch' });
        expect(await attemptSecret(store, 's', 'h2', 2)).toEqual({ status: 'match', attempts: 2 });
      });

      it("extends the verification to the newest code's TTL", async () => {
        const store = await open('secret-join-ttl');
        await store.admit({ counters: [], secret: secretWrite('s', 'h1', 1, { keep: 2 }) });
        await store.admit({ counters: [], secret: secretWrite('s', 'h2', 3, { keep: 2 }) });
        await pastTtl(1);
        expect(await attemptSecret(store, 's', 'h1', 5)).toEqual({ status: 'match', attempts: 1 });
      });

      it('lets exactly one of 100 concurrent right attempts match', async () => {
        const store = await open('secret-race');
        await putSecret(store, 's', RIGHT, 60);
        const outcomes = await Promise.all(
          Array.from({ length: 100 }, () => attemptSecret(store, 's', RIGHT, 1000)),
        );
        expect(outcomes.filter((o) => o.status === 'match')).toHaveLength(1);
        expect(outcomes.filter((o) => o.status === 'missing')).toHaveLength(99);
      });

      it('locks after concurrent misses beyond the limit, then refuses the right hash', async () => {
        const store = await open('secret-flood');
        await putSecret(store, 's', RIGHT, 60);
        const outcomes = await Promise.all(
          Array.from({ length: 15 }, () => attemptSecret(store, 's', WRONG, 5)),
        );
        const mismatches = outcomes.filter((o) => o.status === 'mismatch');
        expect(mismatches.map((o) => o.attempts).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
        expect(outcomes.filter((o) => o.status === 'locked')).toHaveLength(10);
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'locked' });
      });
    });

    describe('attemptSecret: failure counters, lanes and data', () => {
      const hour = { key: '{r}fail-hour', windowSeconds: 60, max: 2 };
      const day = { key: '{r}fail-day', windowSeconds: 600, max: 3 };
      const count = async (store: Store, key: string) => Number((await store.get(key)) ?? 0);

      it('counts a wrong attempt on every failure counter, and refuses at a full one uncompared', async () => {
        const store = await open('failures');
        await putSecret(store, '{r}s', RIGHT, 60);
        const failures = [hour, day];
        expect(await attemptSecret(store, '{r}s', WRONG, 5, { failures })).toMatchObject({
          status: 'mismatch',
          attempts: 1,
        });
        expect(await attemptSecret(store, '{r}s', WRONG, 5, { failures })).toMatchObject({
          status: 'mismatch',
          attempts: 2,
        });
        expect([await count(store, hour.key), await count(store, day.key)]).toEqual([2, 2]);
        // hour is full: even the right hash is refused, and neither it nor the counters count.
        const refused = await attemptSecret(store, '{r}s', RIGHT, 5, { failures });
        expect(refused).toMatchObject({ status: 'exhausted', index: 0 });
        expect((refused as { resetMs: number }).resetMs).toBeGreaterThan(0);
        expect((refused as { resetMs: number }).resetMs).toBeLessThanOrEqual(60_000);
        expect([await count(store, hour.key), await count(store, day.key)]).toEqual([2, 2]);
        // Without the full counter the secret is as it was: two attempts used, the third matches.
        expect(await attemptSecret(store, '{r}s', RIGHT, 5, { failures: [day] })).toEqual({
          status: 'match',
          attempts: 3,
        });
        expect(await count(store, day.key)).toBe(2);
      });

      it('counts no failure for an attempt at a locked lane or a missing secret', async () => {
        const store = await open('failures-locked');
        await putSecret(store, '{r}s', RIGHT, 60);
        const failures = [day];
        await attemptSecret(store, '{r}s', WRONG, 1, { failures });
        for (let i = 0; i < 5; i++) {
          expect(await attemptSecret(store, '{r}s', WRONG, 1, { failures })).toEqual({
            status: 'locked',
          });
        }
        expect(await attemptSecret(store, '{r}none', WRONG, 1, { failures })).toEqual({
          status: 'missing',
        });
        expect(await count(store, day.key)).toBe(1);
      });

      it('compares at most max wrong attempts in a burst over many secrets sharing a counter', async () => {
        const store = await open('failures-burst');
        const keys = Array.from({ length: 9 }, (_, i) => `{r}s${i}`);
        await Promise.all(keys.map((key) => putSecret(store, key, RIGHT, 60)));
        const failures = [{ key: '{r}fail', windowSeconds: 60, max: 10 }];
        const outcomes = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            attemptSecret(store, keys[i % keys.length] as string, WRONG, 5, { failures }),
          ),
        );
        const compared = outcomes.filter((o) => o.status === 'mismatch' || o.status === 'locked');
        expect(compared).toHaveLength(10);
        expect(outcomes.filter((o) => o.status === 'exhausted')).toHaveLength(190);
        expect(await count(store, '{r}fail')).toBe(10);
        // The right hash now gets nowhere either.
        expect(await attemptSecret(store, '{r}s0', RIGHT, 5, { failures })).toMatchObject({
          status: 'exhausted',
        });
      });

      it('keeps the bound lane apart: guesses without the binding never use it up', async () => {
        const store = await open('lanes');
        await putSecret(store, '{r}s', RIGHT, 60, { binding: 'verification-a' });
        // The open lane dies after two attempts...
        await attemptSecret(store, '{r}s', WRONG, 2);
        await attemptSecret(store, '{r}s', WRONG, 2);
        expect(await attemptSecret(store, '{r}s', RIGHT, 2)).toEqual({ status: 'locked' });
        // ...a wrong binding reads as no secret and counts nothing, on any counter...
        for (const binding of ['verification-b', '']) {
          expect(
            await attemptSecret(store, '{r}s', WRONG, 2, { binding, failures: [day] }),
          ).toEqual({
            status: 'missing',
          });
        }
        expect(await count(store, day.key)).toBe(0);
        // ...and the bound lane still has both of its attempts.
        expect(await attemptSecret(store, '{r}s', WRONG, 2, { binding: 'verification-a' })).toEqual(
          {
            status: 'mismatch',
            attempts: 1,
            remaining: 1,
          },
        );
        expect(await attemptSecret(store, '{r}s', RIGHT, 2, { binding: 'verification-a' })).toEqual(
          {
            status: 'match',
            attempts: 2,
          },
        );
        // A match in one lane consumes the secret for both.
        expect(await attemptSecret(store, '{r}s', RIGHT, 2)).toEqual({ status: 'missing' });
      });

      it('refuses a binding when the secret has none', async () => {
        const store = await open('lanes-unbound');
        await putSecret(store, '{r}s', RIGHT, 60);
        expect(await attemptSecret(store, '{r}s', RIGHT, 2, { binding: 'anything' })).toEqual({
          status: 'missing',
        });
        expect(await attemptSecret(store, '{r}s', RIGHT, 2)).toEqual({
          status: 'match',
          attempts: 1,
        });
      });

      it('hands back the data on a match, from putSecret and from admit, and replaces it', async () => {
        const store = await open('secret-data');
        await putSecret(store, '{r}a', RIGHT, 60, { data: 'sealed-user' });
        expect(await attemptSecret(store, '{r}a', RIGHT, 5)).toEqual({
          status: 'match',
          attempts: 1,
          data: 'sealed-user',
        });
        const secret = secretWrite('{r}b', RIGHT, 60, { binding: 'v', data: 'x' });
        await store.admit({ counters: [], secret });
        await putSecret(store, '{r}c', RIGHT, 60, { data: 'old' });
        await putSecret(store, '{r}c', RIGHT, 60);
        expect(await attemptSecret(store, '{r}b', RIGHT, 5, { binding: 'v' })).toEqual({
          status: 'match',
          attempts: 1,
          data: 'x',
        });
        expect(await attemptSecret(store, '{r}c', RIGHT, 5)).toEqual({
          status: 'match',
          attempts: 1,
        });
      });

      it('deletes the clearOnMatch keys with a match, and only then', async () => {
        const store = await open('clear-on-match');
        await putSecret(store, '{r}s', RIGHT, 60);
        await store.increment('{r}window', 60);
        const attempt = (hash: string) =>
          store.attempt({ key: '{r}s', hash, maxAttempts: 5, clearOnMatch: ['{r}window'] });
        expect(await attempt(WRONG)).toMatchObject({ status: 'mismatch' });
        expect(await store.get('{r}window')).toBe('1');
        expect(await attempt(RIGHT)).toMatchObject({ status: 'match' });
        expect(await store.get('{r}window')).toBeUndefined();
      });

      it('restarts a failure window after it ends', async () => {
        const store = await open('failures-window');
        await putSecret(store, '{r}s', RIGHT, 60);
        const short = { key: '{r}f', windowSeconds: 1, max: 1 };
        await attemptSecret(store, '{r}s', WRONG, 5, { failures: [short] });
        expect(await attemptSecret(store, '{r}s', RIGHT, 5, { failures: [short] })).toMatchObject({
          status: 'exhausted',
        });
        await pastTtl(1);
        expect(await attemptSecret(store, '{r}s', RIGHT, 5, { failures: [short] })).toEqual({
          status: 'match',
          attempts: 2,
        });
      });
    });

    describe('admit', () => {
      /** The count a counter holds now: one more increment, minus that increment. */
      const countOf = async (store: Store, key: string) => {
        const { count } = await store.increment(key, 60);
        await store.decrement(key);
        return count - 1;
      };
      const gate = { key: 'gate', value: 'ends-at-123', ttlSeconds: 60 };
      const counters = [
        { key: 'per-target', windowSeconds: 60, max: 3 },
        {
          key: '{ip}per-ip',
          windowSeconds: 60,
          max: 10,
          distinct: { key: '{ip}seen', ttlSeconds: 60 },
        },
      ];

      it('claims the gate and counts every counter once', async () => {
        const store = await open('admit');
        expect(await store.admit({ gate, counters })).toEqual({
          status: 'admitted',
          counted: [true, true],
        });
        expect(await store.get('gate')).toBe('ends-at-123');
        expect(await store.get('{ip}seen')).toBeDefined();
        expect(await countOf(store, 'per-target')).toBe(1);
        expect(await countOf(store, '{ip}per-ip')).toBe(1);
      });

      it('refuses a present gate with its value, counting nothing', async () => {
        const store = await open('admit-gated');
        await store.set('gate', 'earlier', 60);
        expect(await store.admit({ gate, counters })).toEqual({
          status: 'gated',
          value: 'earlier',
        });
        expect(await countOf(store, 'per-target')).toBe(0);
        expect(await store.get('{ip}seen')).toBeUndefined();
      });

      it('counts all counters or none, keeping the gate it claimed', async () => {
        const store = await open('admit-full');
        for (let i = 0; i < 3; i++) await store.increment('per-target', 2);
        const outcome = await store.admit({ gate, counters });
        expect(outcome).toMatchObject({ status: 'exceeded', index: 0 });
        const { resetMs } = outcome as { resetMs: number };
        expect(resetMs).toBeGreaterThan(0);
        expect(resetMs).toBeLessThanOrEqual(2000);
        expect(await countOf(store, 'per-target')).toBe(3);
        expect(await countOf(store, '{ip}per-ip')).toBe(0);
        expect(await store.get('{ip}seen')).toBeUndefined();
        expect(await store.get('gate')).toBe('ends-at-123');
      });

      it('takes back the counters and markers before a full one, and counts again later', async () => {
        const store = await open('admit-full-last');
        await store.increment('{ip}per-ip', 60);
        await store.increment('budget', 60);
        const withBudget = [...counters, { key: 'budget', windowSeconds: 60, max: 1 }];
        expect(await store.admit({ counters: withBudget })).toEqual({
          status: 'exceeded',
          index: 2,
          resetMs: expect.any(Number),
        });
        expect(await countOf(store, 'per-target')).toBe(0);
        expect(await countOf(store, '{ip}per-ip')).toBe(1);
        expect(await countOf(store, 'budget')).toBe(1);
        expect(await store.get('{ip}seen')).toBeUndefined();
        // Nothing of the refused call is left to count against the next one.
        expect(await store.admit({ counters })).toEqual({
          status: 'admitted',
          counted: [true, true],
        });
        expect(await countOf(store, 'per-target')).toBe(1);
        expect(await countOf(store, '{ip}per-ip')).toBe(2);
      });

      it('counts a distinct marker once until the marker expires', async () => {
        const store = await open('admit-distinct');
        const once = [
          { key: '{c}c', windowSeconds: 60, max: 5, distinct: { key: '{c}m', ttlSeconds: 1 } },
        ];
        expect(await store.admit({ counters: once })).toEqual({
          status: 'admitted',
          counted: [true],
        });
        expect(await store.admit({ counters: once })).toEqual({
          status: 'admitted',
          counted: [false],
        });
        expect(await countOf(store, '{c}c')).toBe(1);
        await pastTtl(1);
        expect(await store.admit({ counters: once })).toEqual({
          status: 'admitted',
          counted: [true],
        });
        expect(await countOf(store, '{c}c')).toBe(2);
      });

      it('admits a marker already counted even when its counter is full', async () => {
        const store = await open('admit-distinct-full');
        const once = [
          { key: '{c}c', windowSeconds: 60, max: 1, distinct: { key: '{c}m', ttlSeconds: 60 } },
        ];
        await store.admit({ counters: once });
        expect(await store.admit({ counters: once })).toEqual({
          status: 'admitted',
          counted: [false],
        });
        const other = [{ ...once[0]!, distinct: { key: '{c}m2', ttlSeconds: 60 } }];
        expect(await store.admit({ counters: other })).toMatchObject({
          status: 'exceeded',
          index: 0,
        });
        expect(await store.get('{c}m2')).toBeUndefined();
      });

      it('opens a counter window like increment, and restarts it after', async () => {
        const store = await open('admit-window');
        const short = [{ key: '{c}c', windowSeconds: 1, max: 1 }];
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'admitted' });
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'exceeded' });
        await pastTtl(1);
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'admitted' });
      });

      it('stores the secret only when admitted, joining the live verification', async () => {
        const store = await open('admit-secret');
        await putSecret(store, 's', 'old-hash', 60, { keep: 2 });
        await attemptSecret(store, 's', WRONG, 3);
        const secret = secretWrite('s', RIGHT, 60, { keep: 2, binding: 'new-binding' });
        await store.set('gate', 'earlier', 60);
        expect(await store.admit({ gate, counters, secret })).toMatchObject({ status: 'gated' });
        const full = [{ key: 'full', windowSeconds: 60, max: 0 }];
        expect(await store.admit({ counters: full, secret })).toMatchObject({ status: 'exceeded' });
        // Neither refusal wrote the new code.
        expect(await attemptSecret(store, 's', RIGHT, 3)).toMatchObject({ status: 'mismatch' });
        // An admitted one joins: the verification keeps its binding and its attempt count.
        expect(await store.admit({ counters, secret })).toEqual({
          status: 'admitted',
          counted: [true, true],
          binding: 'binding',
          joined: true,
        });
        expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'match', attempts: 3 });
      });

      it('lets exactly one of many concurrent callers past one gate', async () => {
        const store = await open('admit-gate-race');
        const outcomes = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.admit({ gate: { ...gate, value: `caller-${i}` }, counters }),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'admitted')).toHaveLength(1);
        expect(outcomes.filter((o) => o.status === 'gated')).toHaveLength(49);
        expect(await countOf(store, 'per-target')).toBe(1);
      });

      it('admits exactly max of many concurrent callers, and keeps exactly max counted', async () => {
        const store = await open('admit-count-race');
        const outcomes = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            store.admit({
              counters: [
                { key: '{c}c', windowSeconds: 60, max: 10 },
                {
                  key: '{c}d',
                  windowSeconds: 60,
                  max: 100,
                  distinct: { key: `{c}m${i}`, ttlSeconds: 60 },
                },
              ],
            }),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'admitted')).toHaveLength(10);
        expect(outcomes.filter((o) => o.status === 'exceeded')).toHaveLength(50);
        expect(await countOf(store, '{c}c')).toBe(10);
        expect(await countOf(store, '{c}d')).toBe(10);
      });

      it('refuses TTLs that are not whole seconds of at least 1, writing nothing', async () => {
        const store = await open('admit-ttl');
        await expect(
          store.admit({ gate, counters: [{ key: '{c}c', windowSeconds: 0.5, max: 1 }] }),
        ).rejects.toThrow(/TTL/);
        await expect(
          store.admit({ gate, counters: [], secret: secretWrite('s', RIGHT, 0) }),
        ).rejects.toThrow(/TTL/);
        await expect(
          store.admit({
            counters: [
              { key: '{c}c', windowSeconds: 60, max: 1, distinct: { key: '{c}m', ttlSeconds: 0 } },
            ],
          }),
        ).rejects.toThrow(/TTL/);
        expect(await store.get('gate')).toBeUndefined();
        expect(await countOf(store, '{c}c')).toBe(0);
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
      });
    });

    describe('key prefix', () => {
      it('keeps stores with different prefixes apart', async () => {
        const a = await open('prefix-a');
        const b = await open('prefix-b');
        await a.set('k', 'from a', 60);
        expect(await b.get('k')).toBeUndefined();
        expect(await b.setIfAbsent('k', 'from b', 60)).toBe(true);
        expect(await a.get('k')).toBe('from a');
        expect(await b.delete('k')).toBe(true);
        expect(await a.get('k')).toBe('from a');

        await a.increment('c', 60);
        expect((await b.increment('c', 60)).count).toBe(1);

        await putSecret(a, 's', RIGHT, 60);
        expect(await attemptSecret(b, 's', RIGHT, 5)).toEqual({ status: 'missing' });
        expect(await attemptSecret(a, 's', RIGHT, 5)).toMatchObject({ status: 'match' });
      });
    });

    describe('scan', () => {
      it(`is ${factory.canScan ? 'available' : 'absent'} on this backend`, async () => {
        const store = await open('scan-shape');
        expect(typeof store.scan).toBe(factory.canScan ? 'function' : 'undefined');
      });

      if (factory.canScan) {
        it('lists this prefix’s keys, without the prefix, with their time left', async () => {
          const store = await open('scan');
          const other = await open('scan-other');
          await store.set('plain', 'v', 60);
          await store.increment('counter', 30);
          await putSecret(store, 'secret', RIGHT, 90);
          await other.set('foreign', 'v', 60);

          const entries = await collectScan(store);
          expect(entries.map((e) => e.key)).toEqual(['counter', 'plain', 'secret']);
          const limits: Record<string, number> = { counter: 30_000, plain: 60_000, secret: 90_000 };
          for (const entry of entries) {
            expect(entry.ttlMs).toBeGreaterThan(0);
            expect(entry.ttlMs).toBeLessThanOrEqual(limits[entry.key] ?? 0);
          }
        });

        it('treats glob characters in the prefix literally', async () => {
          const base = uniquePrefix('glob');
          const store = await open('glob', `${base}[*?]`);
          // Read as a glob, "[*?]" would also match this sibling's "?".
          const sibling = await open('glob-sibling', `${base}?`);
          await store.set('k', 'v', 60);
          await sibling.set('k', 'v', 60);
          expect((await collectScan(store)).map((e) => e.key)).toEqual(['k']);
        });
      }
    });

    const outage = factory.outage;
    if (outage) {
      describe('when the server goes away', () => {
        const everyOperation = (store: CompleteStore) => ({
          get: () => store.get('k'),
          set: () => store.set('refused', 'v', 60),
          setIfAbsent: () => store.setIfAbsent('n', 'v', 60),
          delete: () => store.delete('k'),
          increment: () => store.increment('c', 60),
          decrement: () => store.decrement('c'),
          writeSecret: () => store.admit({ counters: [], secret: secretWrite('s', RIGHT, 60) }),
          attemptSecret: () => attemptSecret(store, 's', RIGHT, 5),
          admit: () =>
            store.admit({
              gate: { key: 'g', value: 'v', ttlSeconds: 60 },
              counters: [{ key: 'c', windowSeconds: 60, max: 5 }],
            }),
          ping: () => store.ping(),
        });

        const expectAllUnavailable = async (store: CompleteStore) => {
          for (const [op, call] of Object.entries(everyOperation(store))) {
            const error = await (call as () => Promise<unknown>)().then(
              (value) => ({ resolved: value }),
              (err: unknown) => err,
            );
            // Named, so a failure says which operation answered instead of failing closed.
            expect({ op, unavailable: error instanceof StoreUnavailableError }).toEqual({
              op,
              unavailable: true,
            });
          }
        };

        // Keys the operations above never touch: a write that timed out while the server was
        // frozen may still be applied after it thaws, which is why a timeout means "unknown".
        const expectWorking = async (store: CompleteStore) => {
          await store.set('after', 'back', 60);
          expect(await store.get('after')).toBe('back');
          expect((await store.increment('fresh-counter', 60)).count).toBe(1);
          await putSecret(store, 'fresh-secret', RIGHT, 60);
          expect(await attemptSecret(store, 'fresh-secret', RIGHT, 5)).toMatchObject({
            status: 'match',
          });
        };

        it('rejects every operation with StoreUnavailableError, then recovers by itself', async () => {
          const store = completeStore(await outage.create(uniquePrefix('outage')));
          opened.push(store);
          await store.set('k', 'v', 60);
          await outage.stop();
          try {
            await expectAllUnavailable(store);
          } finally {
            await outage.start();
          }
          await eventually(() => store.ping());
          // The set refused during the outage must not be replayed once the server is back.
          expect(await store.get('refused')).toBeUndefined();
          await expectWorking(store);
        });

        it('times out against a frozen server, then recovers when it thaws', async () => {
          const store = completeStore(await outage.create(uniquePrefix('frozen')));
          opened.push(store);
          await store.ping();
          await outage.pause();
          try {
            await expectAllUnavailable(store);
          } finally {
            outage.resume();
          }
          await eventually(() => store.ping());
          await expectWorking(store);
        });

        it('can be created while the server is down and works once it is up', async () => {
          await outage.stop();
          const created = (async () => {
            const store = await outage.create(uniquePrefix('late'));
            opened.push(store);
            await expectAllUnavailable(completeStore(store));
            return store;
          })();
          const store = completeStore(await created.finally(() => outage.start()));
          await eventually(() => store.ping());
          expect(await store.get('refused')).toBeUndefined();
          await expectWorking(store);
        });
      });
    }
  });
}
