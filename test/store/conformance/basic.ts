import { attemptSecret, putSecret } from '../../support/secrets';
import { uniquePrefix } from '../../support/servers';
import { type ConformanceContext, collectScan, RIGHT } from './context';

/**
 * Plain values and what every store has whatever it holds: its backend name, get/set/delete,
 * setIfAbsent, the key prefix, and scan where the backend can enumerate its keys. How values
 * expire is in ttl.ts.
 */
export function basicConformance({ name, factory, open }: ConformanceContext): void {
  describe('basics', () => {
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
    });

    describe('setIfAbsent', () => {
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
  });
}
