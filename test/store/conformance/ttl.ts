import { StoreUnavailableError } from '../../../src/errors';
import { attemptSecret, putSecret, secretWrite } from '../../support/secrets';
import { type ConformanceContext, countOf, gate, RIGHT, WRONG } from './context';

/**
 * Everything about time: values, counter windows, distinct markers and secrets expiring, TTLs
 * restarting or extending, and TTLs refused. The inner describe blocks are named after the
 * operation under test, as in the other modules. Real backends actually wait, so these are the
 * slow checks.
 */
export function ttlConformance({ factory, open, pastTtl }: ConformanceContext): void {
  describe('expiry', () => {
    describe('get, set, delete', () => {
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
    });

    describe('increment', () => {
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
    });

    describe('decrement', () => {
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
      it('reports an expired secret as missing', async () => {
        const store = await open('secret-ttl');
        await putSecret(store, 's', RIGHT, 1);
        await pastTtl(1);
        expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
      });

      it("extends the verification to the newest code's TTL", async () => {
        const store = await open('secret-join-ttl');
        await store.admit({ counters: [], secret: secretWrite('s', 'h1', 1, { keep: 2 }) });
        await store.admit({ counters: [], secret: secretWrite('s', 'h2', 3, { keep: 2 }) });
        await pastTtl(1);
        expect(await attemptSecret(store, 's', 'h1', 5)).toEqual({ status: 'match', attempts: 1 });
      });
    });

    describe('attemptSecret: failure counters, lanes and data', () => {
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

      it('opens a counter window like increment, and restarts it after', async () => {
        const store = await open('admit-window');
        const short = [{ key: '{c}c', windowSeconds: 1, max: 1 }];
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'admitted' });
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'exceeded' });
        await pastTtl(1);
        expect(await store.admit({ counters: short })).toMatchObject({ status: 'admitted' });
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
  });
}
