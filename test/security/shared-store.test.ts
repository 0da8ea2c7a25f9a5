import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { buildTestApp, lastCode, lastToken, type TestApp } from '../support/app';
import { withPrivateCluster } from '../support/redis-cluster';
import {
  describeMemcached,
  describeRedis,
  SHARED_MEMCACHED,
  SHARED_REDIS_URL,
  uniquePrefix,
} from '../support/servers';
import { describePostgres, describeSqlite, sqliteTestPath, testDatabaseUrl } from '../support/sql';

const PHONE = '+15551234567';
const EMAIL = 'twice@example.com';

interface Instance {
  test: TestApp;
  server: Server;
  url: string;
}

async function twoInstances(
  env: Record<string, string>,
): Promise<{ a: Instance; b: Instance; stores: Store[] }> {
  const prefix = uniquePrefix('two-instances');
  // The race is the point here, not the deadline: on a loaded machine a 100-way burst can keep the
  // winner's reply past the default 1 s store deadline, and it would then fail closed with 503.
  env = { STORE_TIMEOUT_MS: '15000', ...env };
  const stores: Store[] = [];
  // Instances sharing a store share their secrets too; without them each would make its own.
  const shared = {
    ...env,
    OTP_SECRET: randomBytes(32).toString('hex'),
    JWT_SECRET: randomBytes(32).toString('hex'),
  };
  const start = async (): Promise<Instance> => {
    const store = await createStore(buildConfig({ ...shared, KEY_PREFIX: prefix }));
    stores.push(store);
    const test = buildTestApp({ store, env: shared });
    const server = test.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return { test, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  return { a: await start(), b: await start(), stores };
}

/** Answers counted by status, so a failure shows the whole distribution. */
const tally = (statuses: number[]) =>
  statuses.reduce<Record<number, number>>((counts, status) => {
    counts[status] = (counts[status] ?? 0) + 1;
    return counts;
  }, {});

const post = (url: string, body: object) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

function sharedStoreSuite(name: string, env: Record<string, string>) {
  describe(name, () => {
    let a: Instance;
    let b: Instance;
    let stores: Store[];

    beforeAll(async () => {
      ({ a, b, stores } = await twoInstances(env));
    });

    afterAll(async () => {
      for (const instance of [a, b]) instance?.server.close();
      await Promise.all((stores ?? []).map((store) => store.close()));
    });

    it('100 concurrent checks of the right code, split across two instances: exactly 1 succeeds', async () => {
      await post(`${a.url}/verify-phone`, { phone: PHONE });
      const code = lastCode(a.test.outbox, PHONE);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          post(`${(i % 2 ? a : b).url}/verify-phone-code`, { phone: PHONE, code }),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s >= 500)).toHaveLength(0);
    });

    it('100 concurrent uses of one email link, split across two instances: exactly 1 succeeds', async () => {
      await post(`${b.url}/verify-email`, { email: EMAIL });
      const token = lastToken(b.test.outbox, EMAIL);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          post(`${(i % 2 ? a : b).url}/verify-email-token`, { token }),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect(tally(statuses)).toEqual({ 200: 1, 400: 99 });
    });

    it('shares per-target limits between instances', async () => {
      const phone = '+15557654321';
      const first = await post(`${a.url}/verify-phone`, { phone });
      const second = await post(`${b.url}/verify-phone`, { phone });
      expect(first.status).toBe(202);
      expect(second.status).toBe(429);
    });
  });
}

describeRedis('two instances sharing Redis', () => {
  sharedStoreSuite('redis', {
    STORE: 'redis',
    REDIS_URL: SHARED_REDIS_URL,
    SEND_COOLDOWN_SECONDS: '30',
  });
});

describeRedis('two instances sharing a Redis Cluster', () => {
  // The seeds are known once the private cluster runs, before the suite's own beforeAll.
  const env: Record<string, string> = { STORE: 'redis', SEND_COOLDOWN_SECONDS: '30' };
  withPrivateCluster(env);
  sharedStoreSuite('redis cluster', env);
});

describePostgres('two instances sharing PostgreSQL', () => {
  sharedStoreSuite('postgres', {
    STORE: 'postgres',
    DATABASE_URL: testDatabaseUrl(),
    SEND_COOLDOWN_SECONDS: '30',
  });
});

describeSqlite('two instances sharing a SQLite file', () => {
  sharedStoreSuite('sqlite', {
    STORE: 'sqlite',
    SQLITE_PATH: sqliteTestPath('two-instances'),
    SEND_COOLDOWN_SECONDS: '30',
  });
});

describeMemcached('two instances sharing Memcached', () => {
  sharedStoreSuite('memcached', {
    STORE: 'memcached',
    MEMCACHED_SERVERS: SHARED_MEMCACHED,
    SEND_COOLDOWN_SECONDS: '30',
  });
});
