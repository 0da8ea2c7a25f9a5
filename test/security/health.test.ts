/**
 * /health is public and outside the per-IP limit, so whatever one probe costs, anybody can make
 * the service pay it in a loop. It used to count every key by kind (a SCAN of the whole key space:
 * 4.7 s per probe at 1M keys on Redis) and showed how many codes were pending. A probe now costs
 * one store round trip and shows no counts; the counts are `npm run cli -- stats`.
 */
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp } from '../support/app';
import {
  describeMemcached,
  describeRedis,
  SHARED_MEMCACHED,
  SHARED_REDIS_URL,
  uniquePrefix,
} from '../support/servers';
import { describePostgres, describeSqlite, sqliteTestPath, testDatabaseUrl } from '../support/sql';

/** `inner`, with the name of every store method called on it, in order. */
function countingStore(inner: Store): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return value.apply(target, args);
      };
    },
  });
  return { store, calls };
}

const PENDING = 30;
const PROBES = 200;
/** The test counts round trips, not speed: a busy machine must not turn a slow answer into a 503. */
const SLOW_MACHINE_MS = '5000';

function healthSuite(open: () => Promise<Store>) {
  let inner: Store;

  beforeAll(async () => {
    inner = await open();
  });

  afterAll(async () => {
    await inner?.close();
  });

  it('costs one store round trip per probe and shows no counts, even with codes pending', async () => {
    const { store, calls } = countingStore(inner);
    const { app } = buildTestApp({ store });
    const sends = await Promise.all(
      Array.from({ length: PENDING }, (_, i) =>
        request(app)
          .post('/verify-phone')
          .send({ phone: `+1555010${String(1000 + i)}` }),
      ),
    );
    expect(sends.map((res) => res.status)).toEqual(Array(PENDING).fill(202));

    calls.length = 0;
    const res = await request(app).get('/health');
    expect(res.status).toBe(200);
    // Memcached asks each of its servers once, at the same time, to tell a partial outage.
    expect(calls).toEqual([store.pingEach ? 'pingEach' : 'ping']);
    expect(res.body).toEqual({
      status: 'ok',
      store: { backend: store.backend, ok: true },
      botProtection: { kind: 'off', mode: 'adaptive' },
    });
    expect(JSON.stringify(res.body)).not.toContain(String(PENDING));
  });

  it(`answers a burst of ${PROBES} concurrent probes with ${PROBES} round trips and no scan`, async () => {
    const { store, calls } = countingStore(inner);
    const { app } = buildTestApp({ store });
    // One listening server for the whole burst, so the probes arrive together.
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    try {
      const probes = await Promise.all(Array.from({ length: PROBES }, () => fetch(url)));
      expect(probes.map((res) => res.status)).toEqual(Array(PROBES).fill(200));
    } finally {
      server.close();
    }
    expect(calls).toHaveLength(PROBES);
    expect(calls.filter((name) => name === 'scan')).toEqual([]);
  });
}

describe('GET /health is not an amplifier', () => {
  describe('memory store', () => {
    healthSuite(async () => new MemoryStore({ keyPrefix: uniquePrefix('health') }));
  });

  describeRedis('Redis store', () => {
    healthSuite(() =>
      createStore(
        buildConfig({
          STORE: 'redis',
          REDIS_URL: SHARED_REDIS_URL,
          KEY_PREFIX: uniquePrefix('health'),
          STORE_TIMEOUT_MS: SLOW_MACHINE_MS,
        }),
      ),
    );
  });

  describePostgres('postgres store', () => {
    healthSuite(() =>
      createStore(
        buildConfig({
          STORE: 'postgres',
          DATABASE_URL: testDatabaseUrl(),
          KEY_PREFIX: uniquePrefix('health'),
          STORE_TIMEOUT_MS: SLOW_MACHINE_MS,
        }),
      ),
    );
  });

  describeSqlite('sqlite store', () => {
    healthSuite(() =>
      createStore(
        buildConfig({
          STORE: 'sqlite',
          SQLITE_PATH: sqliteTestPath('health'),
          KEY_PREFIX: uniquePrefix('health'),
          STORE_TIMEOUT_MS: SLOW_MACHINE_MS,
        }),
      ),
    );
  });

  describeMemcached('memcached store', () => {
    healthSuite(() =>
      createStore(
        buildConfig({
          STORE: 'memcached',
          MEMCACHED_SERVERS: SHARED_MEMCACHED,
          KEY_PREFIX: uniquePrefix('health'),
          STORE_TIMEOUT_MS: SLOW_MACHINE_MS,
        }),
      ),
    );
  });
});
