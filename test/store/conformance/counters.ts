import type { ConformanceContext } from './context';

/**
 * Counters: increment and decrement, concurrent callers included. How a counter's window ends is
 * in ttl.ts; counting through admit is in admission.ts.
 */
export function counterConformance({ factory, open }: ConformanceContext): void {
  describe('counters', () => {
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
    });
  });
}
