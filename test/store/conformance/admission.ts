import { attemptSecret, putSecret, secretWrite } from '../../support/secrets';
import { type ConformanceContext, countOf, gate, RIGHT, WRONG } from './context';

/**
 * admit: claiming the gate, counting all counters or none, distinct markers, writing the secret
 * only when admitted, concurrent callers, and refusals that count nothing. Windows and markers
 * expiring, and TTLs admit refuses, are in ttl.ts.
 */
export function admissionConformance({ open }: ConformanceContext): void {
  describe('admit', () => {
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

    it('counts all counters or none, and takes back the gate it claimed', async () => {
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
      // A refused send leaves no cooldown: the next caller is judged by the counters alone.
      expect(await store.get('gate')).toBeUndefined();
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

    it('leaves no gate behind when a full counter refuses every one of many concurrent callers', async () => {
      const store = await open('admit-gate-refused-race');
      const full = [{ key: '{c}full', windowSeconds: 60, max: 0 }];
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.admit({ gate: { ...gate, value: `caller-${i}` }, counters: full }),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'admitted')).toHaveLength(0);
      expect(outcomes.some((o) => o.status === 'exceeded')).toBe(true);
      expect(await store.get('gate')).toBeUndefined();
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
  });
}
