import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp } from '../support/app';
import { withPrivateCluster } from '../support/redis-cluster';
import {
  describeMemcached,
  describeRedis,
  SHARED_MEMCACHED,
  SHARED_REDIS_URL,
  uniquePrefix,
} from '../support/servers';
import { describePostgres, describeSqlite, sqliteTestPath, testDatabaseUrl } from '../support/sql';

/**
 * Every per-client limit counts a client's network: its IPv4 address, or its IPv6 /56
 * (IPV6_SUBNET). The app trusts one proxy, so X-Forwarded-For is the client address each request
 * comes from, as behind a load balancer.
 */
const BEHIND_PROXY = { TRUST_PROXY: '1' };

/** A distinct fictional number per i (the mock provider takes +1 555 numbers). */
const phone = (i: number) => `+1555${String(i).padStart(7, '0')}`;

/** The i-th address of a prefix written as its first four groups (a /64), e.g. "2001:db8:1:2". */
const in64 = (prefix64: string, i: number) => `${prefix64}::${(i + 1).toString(16)}`;

function sendFrom(app: Parameters<typeof request>[0], address: string, body: object) {
  return request(app).post('/verify-phone').set('X-Forwarded-For', address).send(body);
}

const accepted = (responses: { status: number }[]) =>
  responses.filter((response) => response.status === 202).length;

async function keyCount(store: MemoryStore): Promise<number> {
  let count = 0;
  for await (const _ of store.scan()) count++;
  return count;
}

describe('per-client limits count a network, not an address', () => {
  it('meets IP_MAX_TARGETS_PER_HOUR once for a burst from 60 addresses of one /64', async () => {
    const { app, outbox } = buildTestApp({
      env: { ...BEHIND_PROXY, IP_MAX_TARGETS_PER_HOUR: '20' },
    });
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        sendFrom(app, in64('2001:db8:1:2', i), { phone: phone(i) }),
      ),
    );
    // Before: 60 of 60, one new address per recipient.
    expect(accepted(responses)).toBe(20);
    expect(outbox.list()).toHaveLength(20);
    const refused = responses.find((response) => response.status === 429);
    expect(refused?.body.error.message).toMatch(/different recipients from this network/);
  });

  it('meets it once for a burst spread over every /64 of one /56, and not for the next /56', async () => {
    const { app } = buildTestApp({ env: { ...BEHIND_PROXY, IP_MAX_TARGETS_PER_HOUR: '20' } });
    // 2001:db8:1:200::/56 holds the /64s 2001:db8:1:200 to 2001:db8:1:2ff.
    const spread = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        sendFrom(app, in64(`2001:db8:1:2${(i * 4).toString(16).padStart(2, '0')}`, i), {
          phone: phone(i),
        }),
      ),
    );
    expect(accepted(spread)).toBe(20);
    const neighbour = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        sendFrom(app, in64('2001:db8:1:300', i), { phone: phone(100 + i) }),
      ),
    );
    expect(accepted(neighbour)).toBe(20);
  });

  it('counts a /48 as one client with IPV6_SUBNET=48: a burst over 200 of its networks sends 20 SMS', async () => {
    const { app, outbox } = buildTestApp({
      env: { ...BEHIND_PROXY, IPV6_SUBNET: '48', IP_MAX_TARGETS_PER_HOUR: '20' },
    });
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        sendFrom(app, in64(`2001:db8:1:${(i * 256).toString(16)}`, i), { phone: phone(i) }),
      ),
    );
    expect(accepted(responses)).toBe(20);
    expect(outbox.list()).toHaveLength(20);
  });

  it('counts the request limit per network too', async () => {
    const { app } = buildTestApp({ env: { ...BEHIND_PROXY, RATE_LIMIT_MAX: '60' } });
    const responses = await Promise.all(
      Array.from({ length: 70 }, (_, i) =>
        sendFrom(app, in64(`2001:db8:5:${(i % 256).toString(16)}`, i), { phone: phone(i) }),
      ),
    );
    expect(accepted(responses)).toBe(60);
    expect(responses.filter((response) => response.status === 429)).toHaveLength(10);
  });

  it("gives adaptive bot protection's free sends per network: 3 of 50 sends from one /64", async () => {
    const { app } = buildTestApp({
      env: {
        ...BEHIND_PROXY,
        BOT_PROTECTION: 'pow',
        BOT_PROTECTION_MODE: 'adaptive',
        BOT_PROTECTION_FREE_SENDS: '3',
      },
    });
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        sendFrom(app, in64('2001:db8:7:1', i), { phone: phone(i) }),
      ),
    );
    // Before: 50 of 50 without a challenge.
    expect(accepted(responses)).toBe(3);
    const asked = responses.filter(
      (response) => response.body.error?.code === 'challenge_required',
    );
    expect(asked).toHaveLength(47);
    // Another network still has its own free sends.
    await sendFrom(app, '2001:db8:8::1', { phone: phone(99) }).expect(202);
  });

  it('counts an IPv4-mapped address as its IPv4 address, and each IPv4 address on its own', async () => {
    const { app } = buildTestApp({ env: { ...BEHIND_PROXY, IP_MAX_TARGETS_PER_HOUR: '2' } });
    const forms = [
      '198.51.100.7',
      '::ffff:198.51.100.7',
      '::FFFF:c633:6407',
      '0:0:0:0:0:ffff:198.51.100.7',
    ];
    const responses = await Promise.all(
      forms.map((address, i) => sendFrom(app, address, { phone: phone(i) })),
    );
    expect(accepted(responses)).toBe(2);
    // Masked as IPv6, every mapped address would fall in ::/56, one key for all IPv4 clients.
    const others = await Promise.all(
      ['::ffff:198.51.100.8', '::ffff:203.0.113.9'].map((address, i) =>
        sendFrom(app, address, { phone: phone(10 + i) }),
      ),
    );
    expect(accepted(others)).toBe(2);
  });

  it('never lets a junk X-Forwarded-For grow the store: 300 junk values add no key', async () => {
    const store = new MemoryStore({ keyPrefix: 'test:' });
    const logLines: string[] = [];
    const { app } = buildTestApp({
      store,
      logLines,
      env: {
        ...BEHIND_PROXY,
        LOG_LEVEL: 'warn',
        BOT_PROTECTION: 'pow',
        BOT_PROTECTION_MODE: 'adaptive',
        BOT_PROTECTION_FREE_SENDS: '1000',
      },
    });
    const junk = (i: number) => `not-an-address-${i}-${'x'.repeat(4000)}`;
    // One send to the recipient first, so that what follows touches only client keys.
    await sendFrom(app, junk(0), { phone: phone(1) }).expect(202);
    const before = await keyCount(store);
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => sendFrom(app, junk(i + 1), { phone: phone(1) })),
    );
    expect(responses.every((response) => response.status < 500)).toBe(true);
    // Before: 4 keys per request (request, bot, recipient counts and a recipient marker), each
    // named by the 4 kB value: 1,200 for this burst.
    expect(await keyCount(store)).toBe(before);
    for await (const entry of store.scan()) expect(entry.key).not.toContain('not-an-address');
    // The operator hears once that the proxy passes on text that is no address, not the text.
    const warnings = logLines.filter((line) => line.includes('is not an IP address'));
    expect(warnings).toHaveLength(1);
    expect(logLines.join('\n')).not.toContain('not-an-address');
  });
});

/** The two bursts again on the shared servers, each test under a key prefix of its own. */
function sharedStoreSuite(describeIf: typeof describeRedis, env: Record<string, string>) {
  describeIf('on a shared store', () => {
    const stores: Store[] = [];
    const storeFor = async (label: string) => {
      const store = await createStore(buildConfig({ ...env, KEY_PREFIX: uniquePrefix(label) }));
      stores.push(store);
      return store;
    };
    afterAll(async () => {
      await Promise.all(stores.map((store) => store.close()));
    });

    it('meets IP_MAX_TARGETS_PER_HOUR once for a burst from 60 addresses of one /64', async () => {
      const { app, outbox } = buildTestApp({
        store: await storeFor('net-targets'),
        env: { ...env, ...BEHIND_PROXY, IP_MAX_TARGETS_PER_HOUR: '20' },
      });
      const responses = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          sendFrom(app, in64('2001:db8:1:2', i), { phone: phone(i) }),
        ),
      );
      expect(accepted(responses)).toBe(20);
      expect(outbox.list()).toHaveLength(20);
    });

    it('leaves no cooldown on numbers a client past its recipient cap was refused for', async () => {
      const { app, outbox } = buildTestApp({
        store: await storeFor('net-no-cooldown'),
        env: { ...env, ...BEHIND_PROXY, IP_MAX_TARGETS_PER_HOUR: '1', SEND_COOLDOWN_SECONDS: '60' },
      });
      await sendFrom(app, '198.51.100.1', { phone: phone(0) }).expect(202);
      // Past its cap, this client tries 10 other numbers at once: refused, and nothing sent.
      const refused = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          sendFrom(app, '198.51.100.1', { phone: phone(1 + i) }),
        ),
      );
      expect(refused.map((r) => r.body.error?.message)).toEqual(
        Array(10).fill('Too many different recipients from this network; try again later.'),
      );
      // Their owners, from another network, are not told to wait for a code nobody sent.
      const owners = await Promise.all(
        Array.from({ length: 10 }, (_, i) => sendFrom(app, '203.0.113.1', { phone: phone(1 + i) })),
      );
      expect(accepted(owners)).toBe(1); // the owners' network has its own cap of 1
      expect(owners.map((r) => r.body.error?.message)).not.toContain(
        'Wait before requesting another code.',
      );
      expect(outbox.list()).toHaveLength(2);
    });

    it('gives 3 free sends to 50 addresses of one /64', async () => {
      const { app } = buildTestApp({
        store: await storeFor('net-bot'),
        env: { ...env, ...BEHIND_PROXY, BOT_PROTECTION: 'pow', BOT_PROTECTION_FREE_SENDS: '3' },
      });
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          sendFrom(app, in64('2001:db8:7:1', i), { phone: phone(i) }),
        ),
      );
      expect(accepted(responses)).toBe(3);
    });
  });
}

describe('Redis', () => {
  sharedStoreSuite(describeRedis, { STORE: 'redis', REDIS_URL: SHARED_REDIS_URL });
});

describeRedis('Redis Cluster', () => {
  // The seeds are known once the private cluster runs, before the suite's first test.
  const env: Record<string, string> = { STORE: 'redis' };
  withPrivateCluster(env);
  sharedStoreSuite(describeRedis, env);
});

describe('Memcached', () => {
  sharedStoreSuite(describeMemcached, { STORE: 'memcached', MEMCACHED_SERVERS: SHARED_MEMCACHED });
});

describe('PostgreSQL', () => {
  // Each burst queues 60 calls for a pool of 10: the deadline is generous, the counts are the point.
  sharedStoreSuite(describePostgres, {
    STORE: 'postgres',
    DATABASE_URL: testDatabaseUrl(),
    STORE_TIMEOUT_MS: '10000',
  });
});

describe('SQLite', () => {
  sharedStoreSuite(describeSqlite, {
    STORE: 'sqlite',
    SQLITE_PATH: sqliteTestPath('client-networks'),
    STORE_TIMEOUT_MS: '10000',
  });
});

describe('TRUST_PROXY=true', () => {
  // What a real proxy forwards: whatever the client wrote, then the address it saw.
  const forwarded = (i: number) => `198.51.100.${i % 250}, 203.0.113.5`;

  async function burst(trustProxy: string) {
    const { app } = buildTestApp({ env: { TRUST_PROXY: trustProxy, RATE_LIMIT_MAX: '60' } });
    const responses = await Promise.all(
      Array.from({ length: 70 }, (_, i) =>
        request(app)
          .post('/verify-phone')
          .set('X-Forwarded-For', forwarded(i))
          .send({ phone: phone(i) }),
      ),
    );
    return accepted(responses);
  }

  it('lets a client behind a real proxy choose its address and pass the limits (why production refuses it)', async () => {
    // The client's own leftmost entry is believed: 70 of 70 past RATE_LIMIT_MAX=60.
    expect(await burst('true')).toBe(70);
    // A hop count believes only the proxy's entry: one client, 60 requests.
    expect(await burst('1')).toBe(60);
  });
});
