import { StoreUnavailableError } from '../../../src/errors';
import { completeStore } from '../../../src/store/bridge';
import type { CompleteStore } from '../../../src/store/types';
import { attemptSecret, putSecret, secretWrite } from '../../support/secrets';
import { uniquePrefix } from '../../support/servers';
import { type ConformanceContext, eventually, RIGHT } from './context';

/**
 * The server going away, through the factory's outage hooks: stopped and started again, frozen
 * and thawed, or down when the store is created. Registers nothing for a backend without hooks.
 */
export function outageConformance({ factory, opened }: ConformanceContext): void {
  const outage = factory.outage;
  if (!outage) return;

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
