/**
 * /health/live and /health/ready through the assembled app: liveness never touches the store;
 * readiness asks it once and gives up after STORE_TIMEOUT_MS even when a store never answers.
 */
import request from 'supertest';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp } from '../support/app';

function recordingStore(hangPing: boolean): { store: Store; calls: string[]; inner: MemoryStore } {
  const inner = new MemoryStore({ keyPrefix: 'probes:' });
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        if (hangPing && property === 'ping') return new Promise(() => undefined);
        return value.apply(target, args);
      };
    },
  }) as Store;
  return { store, calls, inner };
}

describe('health probes', () => {
  it('answers /health/live without a store call, and /health/ready with one ping', async () => {
    const { store, calls, inner } = recordingStore(false);
    const { app } = buildTestApp({ store });
    const live = await request(app).get('/health/live').expect(200);
    expect(live.body).toEqual({ status: 'ok' });
    expect(live.headers['cache-control']).toBe('no-store');
    expect(calls).toEqual([]);
    const ready = await request(app).get('/health/ready').expect(200);
    expect(ready.body).toEqual({ status: 'ok', store: { backend: 'memory', ok: true } });
    expect(calls).toEqual(['ping']);
    await inner.close();
  });

  it('answers /health/ready and /health 503 once a ping outlasts STORE_TIMEOUT_MS', async () => {
    const { store, inner } = recordingStore(true);
    const { app } = buildTestApp({ store, env: { STORE_TIMEOUT_MS: '100' } });
    const ready = await request(app).get('/health/ready').expect(503);
    expect(ready.body).toEqual({ status: 'unavailable', store: { backend: 'memory', ok: false } });
    await request(app).get('/health').expect(503);
    await request(app).get('/health/live').expect(200);
    await inner.close();
  });

  it('leaves the probes outside the per-client limit', async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_MAX: '1' } });
    for (let i = 0; i < 5; i++) {
      await request(app).get('/health/live').expect(200);
      await request(app).get('/health/ready').expect(200);
    }
  });
});
