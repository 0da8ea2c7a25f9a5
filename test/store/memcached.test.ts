import net from 'node:net';
import memjs from 'memjs';
import { buildConfig } from '../../src/config';
import { StoreUnavailableError } from '../../src/errors';
import { createStore } from '../../src/store';
import {
  MAX_KEY_BYTES,
  MemcachedStore,
  memcachedExptime,
  memcachedKey,
  RELATIVE_EXPTIME_LIMIT,
} from '../../src/store/memcached';
import { attemptSecret, putSecret } from '../support/secrets';
import {
  describeMemcached,
  freePort,
  type PrivateServer,
  SHARED_MEMCACHED,
  sleep,
  startPrivateMemcached,
  stopPrivateServers,
  uniquePrefix,
} from '../support/servers';
import { runStoreConformance } from './conformance';

const DAY = 86_400;

function openStore(servers: string, keyPrefix: string, timeoutMs: number): MemcachedStore {
  return new MemcachedStore({ servers, keyPrefix, timeoutMs });
}

/** A bare memjs client, to look at what the adapter stored and at memcached's own behaviour. */
function rawClient(servers = SHARED_MEMCACHED) {
  return memjs.Client.create(servers, { retries: 1, timeout: 1, logger: { log: () => undefined } });
}

/**
 * A proxy in front of memcached that makes every client lose memcached's create race once: the
 * first incr that would create an absent key is answered NOT_STORED, after the proxy created that
 * counter itself. That is exactly what a client sees when another connection's incr created the
 * counter a moment earlier, which otherwise happens only now and then.
 */
async function createRaceLosingProxy(target: string) {
  const [host = '127.0.0.1', port = '11211'] = target.split(':');
  const competitor = rawClient(target);
  const raced = new Set<string>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port: Number(port) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk) => client.write(chunk));
    const forward = async (message: Buffer) => {
      const extrasLength = message.readUInt8(4);
      const keyStart = 24 + extrasLength;
      const key = message.subarray(keyStart, keyStart + message.readUInt16BE(2)).toString();
      // incr (opcode 5) with an exptime other than "do not create" creates an absent counter.
      const creates =
        message.readUInt8(1) === 0x05 &&
        extrasLength === 20 &&
        message.readUInt32BE(24 + 16) !== 0xffffffff;
      if (creates && !raced.has(key) && (await competitor.get(key)).value === null) {
        raced.add(key);
        const initial = String(message.readBigUInt64BE(24 + 8));
        await competitor.add(key, initial, { expires: message.readUInt32BE(24 + 16) });
        const reply = Buffer.alloc(24);
        reply.writeUInt8(0x81, 0);
        reply.writeUInt8(0x05, 1);
        reply.writeUInt16BE(0x0005, 6); // NOT_STORED
        message.copy(reply, 12, 12, 16); // the opaque, which pairs the reply with its request
        client.write(reply);
        return;
      }
      upstream.write(message);
    };
    let pending = Buffer.alloc(0);
    client.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32BE(8)) {
        const message = pending.subarray(0, 24 + pending.readUInt32BE(8));
        pending = pending.subarray(message.length);
        void forward(message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${proxyPort}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      competitor.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('memcached expiry and key mapping (pure)', () => {
  const now = Date.UTC(2026, 10, 21, 12, 0, 0);

  it('pads relative TTLs by one second, never sending 0', () => {
    expect(memcachedExptime(1, now)).toBe(2);
    expect(memcachedExptime(60, now)).toBe(61);
    expect(memcachedExptime(RELATIVE_EXPTIME_LIMIT - 1, now)).toBe(RELATIVE_EXPTIME_LIMIT);
  });

  it('switches to an absolute unix time beyond 30 days', () => {
    expect(memcachedExptime(RELATIVE_EXPTIME_LIMIT, now)).toBe(
      now / 1000 + RELATIVE_EXPTIME_LIMIT + 1,
    );
    expect(memcachedExptime(31 * DAY, now + 1)).toBe(Math.ceil((now + 1) / 1000) + 31 * DAY + 1);
  });

  it('refuses TTLs below 1 second or fractional, as every backend does', () => {
    for (const ttl of [0, -1, 0.5, 1.5]) expect(() => memcachedExptime(ttl, now)).toThrow(/TTL/);
  });

  it('keeps short printable keys readable', () => {
    expect(memcachedKey('p:', 'code:+15551234567')).toBe('p:code:+15551234567');
  });

  it('hashes keys memcached cannot hold, keeping the prefix and staying within 250 bytes', () => {
    const long = `email:${'a'.repeat(300)}@example.com`;
    const odd = ['has space', 'line\nbreak', 'ünïcode', '', '#looks-hashed', long];
    const mapped = odd.map((key) => memcachedKey('p:', key));
    for (const key of mapped) {
      expect(key).toMatch(/^p:#[A-Za-z0-9_-]{43}$/);
      expect(Buffer.byteLength(key)).toBeLessThanOrEqual(MAX_KEY_BYTES);
    }
    expect(new Set(mapped).size).toBe(odd.length);
    expect(memcachedKey('p:', long)).toBe(mapped[5]);
  });

  it('hashes a key that fits alone but not behind the prefix', () => {
    const key = 'k'.repeat(MAX_KEY_BYTES - 2);
    expect(memcachedKey('', key)).toBe(key);
    expect(memcachedKey('pre:', key)).toMatch(/^pre:#/);
  });
});

describeMemcached('memcached', () => {
  let server: PrivateServer | undefined;
  const privateServer = (): PrivateServer => {
    if (!server) throw new Error('private memcached not started');
    return server;
  };

  beforeAll(async () => {
    server = await startPrivateMemcached();
  });
  afterAll(() => stopPrivateServers([server]));

  runStoreConformance('memcached', {
    create: (prefix) => openStore(SHARED_MEMCACHED, prefix, 2000),
    advance: sleep,
    // Memcached's clock ticks once a second and TTLs are padded by one (see memcachedExptime).
    expiryGraceMs: 1250,
    canScan: false,
    outage: {
      create: (prefix) => openStore(privateServer().address, prefix, 300),
      stop: () => privateServer().stop(),
      start: () => privateServer().start(),
      pause: () => privateServer().pause(),
      resume: () => privateServer().resume(),
    },
  });

  describe('memcached store: quirks', () => {
    const stores: MemcachedStore[] = [];
    const open = (label: string) => {
      const store = openStore(SHARED_MEMCACHED, uniquePrefix(label), 2000);
      stores.push(store);
      return store;
    };
    const raw = rawClient();
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
    });
    afterAll(() => raw.close());

    it('memcached itself drops an entry sent with a relative exptime above 30 days', async () => {
      const key = `${uniquePrefix('raw-31d')}k`;
      await raw.set(key, 'v', { expires: 31 * DAY });
      expect((await raw.get(key)).value).toBeNull();
    });

    it('keeps entries with TTLs beyond 30 days', async () => {
      const store = open('31d');
      const ttl = 31 * DAY;
      await store.set('plain', 'v', ttl);
      expect(await store.get('plain')).toBe('v');
      expect(await store.setIfAbsent('nx', 'v', ttl)).toBe(true);
      expect(await store.get('nx')).toBe('v');
      await store.increment('counter', ttl);
      expect((await store.increment('counter', ttl)).count).toBe(2);
      await putSecret(store, 'secret', 'h', ttl);
      expect(await attemptSecret(store, 'secret', 'h', 3)).toEqual({
        status: 'match',
        attempts: 1,
      });
    });

    it('never expires a 1-second entry early, wherever the set falls within memcached’s second', async () => {
      const store = open('tick');
      // Unpadded, an entry set just before memcached's clock ticks is gone a moment later;
      // staggering the writes across a whole second hits every phase of that tick.
      const checks = Array.from({ length: 10 }, async (_, i) => {
        await sleep(i * 100);
        await store.set(`k${i}`, 'v', 1);
        await sleep(600);
        return store.get(`k${i}`);
      });
      expect(await Promise.all(checks)).toEqual(Array(10).fill('v'));
    });

    it('stores over-long and unusual keys under distinct hashed names', async () => {
      const store = open('keys');
      const shared = 'x'.repeat(260);
      const keys = [
        `${shared}-one`,
        `${shared}-two`,
        'with space',
        'with_space',
        'ünïcode',
        '#k',
        'k',
      ];
      for (const [i, key] of keys.entries()) await store.set(key, `value-${i}`, 60);
      for (const [i, key] of keys.entries()) expect(await store.get(key)).toBe(`value-${i}`);
    });

    it('writes plain keys under the prefix, readable by other memcached clients', async () => {
      const prefix = uniquePrefix('visible');
      const store = openStore(SHARED_MEMCACHED, prefix, 2000);
      stores.push(store);
      await store.set('code:+15551234567', 'v', 60);
      expect((await raw.get(`${prefix}code:+15551234567`)).value?.toString()).toBe('v');
    });

    it('reports a refused command as a plain error, not as an outage', async () => {
      const store = open('refused');
      await store.set('text', 'not a number', 60);
      const error = await store.increment('text', 60).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(StoreUnavailableError);
    });

    describe('first counts from several clients at once', () => {
      // memcached creates a counter for an incr on an absent key with an internal add; when two
      // connections race, the loser's incr answers NOT_STORED. One client is one connection,
      // which memcached serves in order, so the race needs several.
      const ROUNDS = 200;
      const BURST = 8;
      const clients = (label: string) => {
        const prefix = uniquePrefix(label);
        const opened = Array.from({ length: BURST }, () =>
          openStore(SHARED_MEMCACHED, prefix, 2000),
        );
        stores.push(...opened);
        return (i: number) => opened[i % opened.length] as MemcachedStore;
      };
      const failed = (results: PromiseSettledResult<unknown>[]) =>
        results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));

      it('counts an increment that lost the race to create its counter, instead of failing', async () => {
        const proxy = await createRaceLosingProxy(SHARED_MEMCACHED);
        try {
          const store = openStore(proxy.address, uniquePrefix('lost-create'), 2000);
          stores.push(store);
          // The competitor counted 1; this call is the second.
          expect(await store.increment('fresh', 60)).toMatchObject({ count: 2 });
          expect(await store.increment('fresh', 60)).toMatchObject({ count: 3 });
          const counters = [{ key: 'limit', windowSeconds: 60, max: 5 }];
          expect(await store.admit({ counters })).toEqual({ status: 'admitted', counted: [true] });
          // A link's first use once lost this race too: its attempt counter was created by incr.
          await putSecret(store, 'link', 'right', 60);
          expect(await attemptSecret(store, 'link', 'right', 1000)).toEqual({
            status: 'match',
            attempts: 1,
          });
        } finally {
          await proxy.close();
        }
      });

      it('counts every increment of a fresh counter once, refusing none', async () => {
        const client = clients('first-increments');
        const failures: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const results = await Promise.allSettled(
            Array.from({ length: BURST }, (_, i) => client(i).increment(`fresh-${round}`, 60)),
          );
          failures.push(...failed(results));
          const counts = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.count] : []));
          if (failures.length === 0) {
            expect(counts.sort((a, b) => a - b)).toEqual(
              Array.from({ length: BURST }, (_, i) => i + 1),
            );
          }
        }
        expect({ failures: failures.length, first: failures[0] }).toEqual({
          failures: 0,
          first: undefined,
        });
      });

      it('admits concurrent first sends under a fresh limit, refusing none with an error', async () => {
        const client = clients('first-admits');
        const failures: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const counters = [{ key: `send-${round}`, windowSeconds: 60, max: BURST }];
          const results = await Promise.allSettled(
            Array.from({ length: BURST }, (_, i) => client(i).admit({ counters })),
          );
          failures.push(...failed(results));
        }
        expect({ failures: failures.length, first: failures[0] }).toEqual({
          failures: 0,
          first: undefined,
        });
      });

      it('lets exactly one of concurrent first attempts at a fresh secret match, failing none', async () => {
        const client = clients('first-attempts');
        const failures: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          await putSecret(client(0), `secret-${round}`, 'right', 60);
          const results = await Promise.allSettled(
            Array.from({ length: BURST }, (_, i) =>
              attemptSecret(client(i), `secret-${round}`, 'right', 1000),
            ),
          );
          failures.push(...failed(results));
          const matches = results.filter(
            (r) => r.status === 'fulfilled' && r.value.status === 'match',
          );
          expect(matches).toHaveLength(1);
        }
        expect({ failures: failures.length, first: failures[0] }).toEqual({
          failures: 0,
          first: undefined,
        });
      });
    });

    it('accepts a new secret after the previous one was consumed', async () => {
      const store = open('reuse');
      await putSecret(store, 's', 'first', 60);
      expect(await attemptSecret(store, 's', 'first', 3)).toMatchObject({ status: 'match' });
      await putSecret(store, 's', 'second', 60);
      expect(await attemptSecret(store, 's', 'first', 3)).toMatchObject({ status: 'mismatch' });
      expect(await attemptSecret(store, 's', 'second', 3)).toEqual({
        status: 'match',
        attempts: 2,
      });
    });

    it('answers correctly after repeated freezes and thaws', async () => {
      // Each call that times out leaves a memjs socket behind; when the server thaws, its late
      // replies used to disturb the live connection. Keys differ from the frozen calls' keys,
      // since a timed-out write may still be applied after the thaw.
      const store = openStore(privateServer().address, uniquePrefix('thaw'), 150);
      stores.push(store);
      const failures: string[] = [];
      for (let cycle = 0; cycle < 3; cycle++) {
        await store.ping();
        await privateServer().pause();
        try {
          for (const call of [
            () => store.set('frozen', 'v', 60),
            () => store.get('frozen'),
            () => store.increment('frozen-counter', 60),
            () => store.delete('frozen'),
            () => store.ping(),
          ]) {
            await expect(call()).rejects.toBeInstanceOf(StoreUnavailableError);
          }
        } finally {
          privateServer().resume();
        }
        const deadline = Date.now() + 5000;
        while (
          !(await store.ping().then(
            () => true,
            () => false,
          )) &&
          Date.now() < deadline
        ) {
          await sleep(20);
        }
        for (let i = 0; i < 5; i++) {
          const expected = `cycle-${cycle}-${i}`;
          const outcome = await store
            .set('after', expected, 60)
            .then(() => store.get('after'))
            .catch((err: unknown) => `error: ${err}`);
          if (outcome !== expected) failures.push(`${expected}: ${outcome}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('replaces its memjs client after a connection failure, but not after a refusal', async () => {
      const clientsOf = (store: MemcachedStore) =>
        (store as unknown as { shards: Array<{ client: unknown }> }).shards.map((s) => s.client);
      const down = openStore(`127.0.0.1:${await freePort()}`, uniquePrefix('swap'), 300);
      stores.push(down);
      const [before] = clientsOf(down);
      await expect(down.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(clientsOf(down)[0]).not.toBe(before);

      const up = open('no-swap');
      await up.set('text', 'not a number', 60);
      const [kept] = clientsOf(up);
      await expect(up.increment('text', 60)).rejects.not.toBeInstanceOf(StoreUnavailableError);
      expect(clientsOf(up)[0]).toBe(kept);
    });

    it('replaces only the failed server’s client, leaving the live server’s connection alone', async () => {
      const clientsOf = (store: MemcachedStore) =>
        (store as unknown as { shards: Array<{ client: unknown }> }).shards.map((s) => s.client);
      const deadAddress = `127.0.0.1:${await freePort()}`;
      const store = openStore(`${SHARED_MEMCACHED},${deadAddress}`, uniquePrefix('one-swap'), 300);
      stores.push(store);
      const tagOn = (server: string) => {
        for (let i = 0; i < 1000; i++) if (store.serverFor(`{t${i}}`) === server) return `{t${i}}`;
        throw new Error(`no tag found for ${server}`);
      };
      const [liveClient, deadClient] = clientsOf(store);
      await expect(store.get(`k:${tagOn(deadAddress)}`)).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
      const [liveAfter, deadAfter] = clientsOf(store);
      expect(deadAfter).not.toBe(deadClient);
      expect(liveAfter).toBe(liveClient);
      await store.set(`k:${tagOn(SHARED_MEMCACHED)}`, 'v', 60);
      expect(await store.get(`k:${tagOn(SHARED_MEMCACHED)}`)).toBe('v');
    });

    it('rejects with StoreUnavailableError once closed', async () => {
      const store = open('closed');
      await store.set('k', 'v', 60);
      await store.close();
      await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    });

    it('spreads keys over every listed server and pings each of them', async () => {
      const servers = `${SHARED_MEMCACHED},${privateServer().address}`;
      const prefix = uniquePrefix('multi');
      const store = openStore(servers, prefix, 300);
      stores.push(store);
      await store.ping();
      for (let i = 0; i < 20; i++) await store.set(`k${i}`, `v${i}`, 60);
      for (let i = 0; i < 20; i++) expect(await store.get(`k${i}`)).toBe(`v${i}`);
      const onPrivate = rawClient(privateServer().address);
      try {
        let held = 0;
        for (let i = 0; i < 20; i++) {
          if ((await onPrivate.get(memcachedKey(prefix, `k${i}`))).value) held++;
        }
        expect(held).toBeGreaterThan(0);
        expect(held).toBeLessThan(20);
      } finally {
        onPrivate.close();
      }
      await privateServer().stop();
      try {
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await privateServer().start();
      }
    });
  });

  describe('createStore (memcached)', () => {
    it('connects to MEMCACHED_SERVERS and applies KEY_PREFIX', async () => {
      const prefix = uniquePrefix('factory');
      const store = await createStore(
        buildConfig({
          STORE: 'memcached',
          MEMCACHED_SERVERS: SHARED_MEMCACHED,
          KEY_PREFIX: prefix,
        }),
      );
      const raw = rawClient();
      try {
        expect(store.backend).toBe('memcached');
        await store.set('k', 'v', 60);
        expect((await raw.get(`${prefix}k`)).value?.toString()).toBe('v');
      } finally {
        raw.close();
        await store.close();
      }
    });

    it('resolves while memcached is unreachable and reports the store unavailable', async () => {
      const port = await freePort();
      const store = await createStore(
        buildConfig({
          STORE: 'memcached',
          MEMCACHED_SERVERS: `127.0.0.1:${port}`,
          STORE_TIMEOUT_MS: '200',
        }),
      );
      try {
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await store.close();
      }
    });
  });
});
