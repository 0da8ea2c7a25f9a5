import type { Store } from '../../../src/store/types';
import { attemptSecret, putSecret, secretWrite } from '../../support/secrets';
import { type ConformanceContext, RIGHT, WRONG } from './context';

/**
 * Secrets: writing them, attempting them (single use, attempt limits, concurrent attempts), codes
 * joining a live verification on resend, the data they carry, bound and open lanes, and failure
 * counters. Secrets expiring is in ttl.ts; writing one through a gated admit is in admission.ts.
 */
export function secretConformance({ open }: ConformanceContext): void {
  describe('secrets', () => {
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
    });
  });
}
