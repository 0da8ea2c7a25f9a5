import { once } from 'node:events';
import net from 'node:net';
import { createClient } from 'redis';
import { buildConfig } from '../../src/config';
import { StoreUnavailableError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createStore } from '../../src/store';
import { RedisStore } from '../../src/store/redis';
import { attemptSecret, putSecret, secretWrite } from '../support/secrets';
import {
  describeRedis,
  freePort,
  type PrivateServer,
  SHARED_REDIS_URL,
  sleep,
  startPrivateRedis,
  stopPrivateServers,
  uniquePrefix,
} from '../support/servers';
import { type ConformanceFactory, runStoreConformance } from './conformance';
import { inOneRecord } from './conformance/in-one-record';

/** A raw MONITOR connection: every command the server runs, one line each, in order. */
class Monitor {
  readonly lines: string[] = [];
  private buffer = '';
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffer += chunk.toString();
      const parts = this.buffer.split('\r\n');
      this.buffer = parts.pop() ?? '';
      this.lines.push(...parts);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(port: number): Promise<Monitor> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    const monitor = new Monitor(socket);
    socket.write('MONITOR\r\n');
    await monitor.until('+OK');
    return monitor;
  }

  /** Resolves with all lines once one containing `text` has arrived. */
  async until(text: string): Promise<string[]> {
    const deadline = Date.now() + 5000;
    while (!this.lines.some((line) => line.includes(text))) {
      if (Date.now() > deadline) throw new Error(`MONITOR never showed ${text}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    const end = this.lines.findIndex((line) => line.includes(text));
    return this.lines.slice(0, end + 1);
  }

  close(): void {
    this.socket.destroy();
  }
}

async function openStore(url: string, keyPrefix: string, timeoutMs: number): Promise<RedisStore> {
  const store = new RedisStore({ url, keyPrefix, timeoutMs });
  // Fresh clients refuse commands until the handshake is done, as the offline queue is off.
  await store.waitUntilReady(timeoutMs);
  return store;
}

describeRedis('redis', () => {
  let server: PrivateServer | undefined;
  const privateServer = (): PrivateServer => {
    if (!server) throw new Error('private redis-server not started');
    return server;
  };

  beforeAll(async () => {
    server = await startPrivateRedis();
  });
  afterAll(() => stopPrivateServers([server]));

  const factory: ConformanceFactory = {
    create: (prefix) => openStore(SHARED_REDIS_URL, prefix, 2000),
    advance: sleep,
    expiryGraceMs: 100,
    canScan: true,
    outage: {
      create: (prefix) => openStore(privateServer().address, prefix, 300),
      stop: () => privateServer().stop(),
      start: () => privateServer().start(),
      pause: () => privateServer().pause(),
      resume: () => privateServer().resume(),
    },
  };
  runStoreConformance('redis', factory);
  // Redis keeps a record's parts as fields of one hash, with ends of their own: the whole contract
  // again on that layout.
  describe('every key a part of one record', () => {
    runStoreConformance('redis', inOneRecord(factory));
  });

  describe('redis store: one round trip per operation', () => {
    let admin: ReturnType<typeof createClient>;
    let monitor: Monitor;
    let store: RedisStore;
    const prefix = uniquePrefix('round-trip');

    beforeAll(async () => {
      admin = createClient({ url: privateServer().address });
      await admin.connect();
      monitor = await Monitor.open(privateServer().port);
      store = await openStore(privateServer().address, prefix, 2000);
    });
    afterAll(async () => {
      monitor?.close();
      await store?.close();
      await admin?.close();
    });

    /**
     * The commands clients sent while `op` ran, by name. MONITOR is used rather than INFO
     * commandstats because the latter also counts the commands a script runs inside Redis.
     */
    async function commandsDuring(
      op: () => Promise<unknown>,
      from: 'clients' | 'scripts' = 'clients',
    ): Promise<Record<string, number>> {
      // Markers sent by another connection fence the window, as MONITOR output arrives late.
      const start = `start-${Math.random()}`;
      await admin.echo(start);
      const first = (await monitor.until(start)).length;
      await op();
      const end = `end-${Math.random()}`;
      await admin.echo(end);
      const lines = await monitor.until(end);
      const counts: Record<string, number> = {};
      for (const line of lines.slice(first, -1)) {
        const match = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
        if (!match || (match[1] === 'lua') !== (from === 'scripts')) continue;
        const name = (match[2] ?? '').toLowerCase();
        counts[name] = (counts[name] ?? 0) + 1;
      }
      return counts;
    }

    const operations: Array<[string, () => Promise<unknown>, string]> = [
      ['get', () => store.get('k'), 'get'],
      ['set', () => store.set('k', 'v', 60), 'set'],
      ['setIfAbsent (writes)', () => store.setIfAbsent(`nx-${Math.random()}`, 'v', 60), 'set'],
      ['setIfAbsent (exists)', () => store.setIfAbsent('k', 'v', 60), 'set'],
      ['delete', () => store.delete('k'), 'del'],
      ['increment (opens window)', () => store.increment(`c-${Math.random()}`, 60), 'evalsha'],
      ['increment', () => store.increment('c', 60), 'evalsha'],
      ['decrement', () => store.decrement('c'), 'evalsha'],
      [
        'admit (secret)',
        () => store.admit({ counters: [], secret: secretWrite('w', 'right', 60) }),
        'evalsha',
      ],
      ['attemptSecret (mismatch)', () => attemptSecret(store, 's', 'wrong', 2), 'evalsha'],
      ['attemptSecret (match)', () => attemptSecret(store, 's', 'right', 2), 'evalsha'],
      ['attemptSecret (missing)', () => attemptSecret(store, 's', 'right', 2), 'evalsha'],
      ['attemptSecret (locked)', () => attemptSecret(store, 'locked', 'right', 0), 'evalsha'],
      [
        'admit',
        () =>
          store.admit({
            gate: { key: `gate-${Math.random()}`, value: 'v', ttlSeconds: 60 },
            counters: [
              { key: 'c', windowSeconds: 60, max: 1000 },
              { key: 'd', windowSeconds: 60, max: 1000, distinct: { key: 'm', ttlSeconds: 60 } },
            ],
          }),
        'evalsha',
      ],
      ['ping', () => store.ping(), 'ping'],
    ];

    it.each(operations)('%s is exactly one command', async (name, op, command) => {
      // The scripts are loaded once by earlier calls; steady state is what is measured.
      await store.increment('c', 60);
      await store.decrement('c');
      await putSecret(store, 's', 'right', 60);
      await attemptSecret(store, 'never-stored', 'right', 2);
      await putSecret(store, 'locked', 'right', 60);
      await store.admit({ counters: [] });
      if (name === 'attemptSecret (missing)') await attemptSecret(store, 's', 'right', 2);
      expect(await commandsDuring(op)).toEqual({ [command]: 1 });
    });

    // A wrong code reads the failure windows once, so each is then opened or counted by one
    // command: a SET with its TTL for a window not yet open, an INCR for one that is. The
    // verification's lane count is one SET that keeps its TTL. Redis's clock is read only for the
    // windows' ends, when one opens.
    it('counts a wrong code on each failure window with one command', async () => {
      const key = `fresh-${Math.random()}`;
      await putSecret(store, key, 'right', 60);
      const failures = [
        { key: `${key}:hour`, windowSeconds: 3600, max: 10 },
        { key: `${key}:day`, windowSeconds: 86_400, max: 20 },
      ];
      const wrong = () => store.attempt({ key, hash: 'wrong', maxAttempts: 5, failures });
      expect(await commandsDuring(wrong, 'scripts')).toEqual({ time: 1, get: 3, set: 3 });
      expect(await commandsDuring(wrong, 'scripts')).toEqual({ get: 3, set: 1, incr: 2 });
      expect(await store.get(`${key}:hour`)).toBe('2');
      expect(await admin.pTTL(`${prefix}${key}:hour`)).toBeGreaterThan(3_500_000);
      expect(await admin.pTTL(`${prefix}${key}:day`)).toBeGreaterThan(86_000_000);
    });

    // The same in a record (keys.ts builds a recipient's state so): the verification and both
    // windows are parts of one record, read by one GET and written back by one SET, and the record
    // expires with the latest of them.
    it('keeps a record in one key and counts a wrong code in it with one write', async () => {
      const tag = `{r${Math.random()}}`;
      const key = `${tag}code`;
      await putSecret(store, key, 'right', 60);
      const failures = [
        { key: `${tag}hour`, windowSeconds: 3600, max: 10 },
        { key: `${tag}day`, windowSeconds: 86_400, max: 20 },
      ];
      const wrong = () => store.attempt({ key, hash: 'wrong', maxAttempts: 5, failures });
      for (let i = 0; i < 2; i++) {
        expect(await commandsDuring(wrong, 'scripts')).toEqual({ time: 1, get: 1, set: 1 });
      }
      expect(await store.get(`${tag}hour`)).toBe('2');
      expect(await attemptSecret(store, key, 'right', 5)).toMatchObject({ status: 'match' });
      const stored = await admin.keys(`${prefix}*`);
      expect(stored.filter((k) => k.includes(tag))).toEqual([`${prefix}${tag}`]);
      expect(await admin.pTTL(`${prefix}${tag}`)).toBeGreaterThan(86_000_000);
    });

    it('falls back to EVAL once after the script cache was flushed', async () => {
      await store.increment('flushed', 60);
      await admin.scriptFlush();
      expect(await commandsDuring(() => store.increment('flushed', 60))).toEqual({
        evalsha: 1,
        eval: 1,
      });
      expect(await commandsDuring(() => store.increment('flushed', 60))).toEqual({ evalsha: 1 });
      expect((await store.increment('flushed', 60)).count).toBe(4);
    });
  });

  describe('redis store: errors and maintenance', () => {
    let admin: ReturnType<typeof createClient>;
    beforeAll(async () => {
      admin = createClient({ url: SHARED_REDIS_URL });
      await admin.connect();
    });
    afterAll(() => admin?.close());

    it('reports a command Redis refuses as a plain error, not as an outage', async () => {
      const store = await openStore(SHARED_REDIS_URL, uniquePrefix('refused'), 2000);
      try {
        await store.set('text', 'not a number', 60);
        const error = await store.increment('text', 60).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(Error);
        expect(error).not.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await store.close();
      }
    });

    it('lists the live parts of a record, and drops ended ones when the record is written', async () => {
      const prefix = uniquePrefix('record-parts');
      const store = await openStore(SHARED_REDIS_URL, prefix, 2000);
      try {
        await store.set('{r}short', 'v', 1);
        await store.set('{r}long', 'v', 60);
        await store.set('plain', 'v', 60);
        const listed = async () => {
          const entries = [];
          for await (const entry of store.scan()) entries.push(entry);
          return entries.sort((a, b) => (a.key < b.key ? -1 : 1));
        };
        expect((await listed()).map((e) => e.key)).toEqual(['plain', '{r}long', '{r}short']);
        const bytesBefore = await admin.strLen(`${prefix}{r}`);
        await sleep(1100);
        const after = await listed();
        expect(after.map((e) => e.key)).toEqual(['plain', '{r}long']);
        expect(after[1]?.ttlMs).toBeGreaterThan(55_000);
        expect(await store.get('{r}short')).toBeUndefined();
        // The ended part still takes space until the record is written again, then goes.
        expect(await admin.strLen(`${prefix}{r}`)).toBe(bytesBefore);
        await store.set('{r}other', 'w', 60);
        expect(await admin.strLen(`${prefix}{r}`)).toBeLessThan(bytesBefore + 5);
        expect(await store.get('{r}long')).toBe('v');
        // The record outlives none of its parts: its TTL is the latest end written.
        expect(await admin.pTTL(`${prefix}{r}`)).toBeGreaterThan(55_000);
        expect(await store.delete('{r}long')).toBe(true);
        expect(await store.delete('{r}other')).toBe(true);
        expect(await admin.exists(`${prefix}{r}`)).toBe(0);
      } finally {
        await admin.del(`${prefix}plain`);
        await store.close();
      }
    });

    it('lists a key without expiry with an infinite time left', async () => {
      const prefix = uniquePrefix('no-ttl');
      const store = await openStore(SHARED_REDIS_URL, prefix, 2000);
      try {
        await admin.set(`${prefix}forever`, 'v');
        const entries = [];
        for await (const entry of store.scan()) entries.push(entry);
        expect(entries).toEqual([{ key: 'forever', ttlMs: Number.POSITIVE_INFINITY }]);
      } finally {
        await admin.del(`${prefix}forever`);
        await store.close();
      }
    });

    it('rejects with StoreUnavailableError once closed', async () => {
      const store = await openStore(SHARED_REDIS_URL, uniquePrefix('closed'), 2000);
      await store.close();
      await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    });
  });

  describe('createStore (redis)', () => {
    it('connects to REDIS_URL and applies KEY_PREFIX', async () => {
      const prefix = uniquePrefix('factory');
      const store = await createStore(
        buildConfig({ STORE: 'redis', REDIS_URL: SHARED_REDIS_URL, KEY_PREFIX: prefix }),
      );
      const admin = createClient({ url: SHARED_REDIS_URL });
      await admin.connect();
      try {
        expect(store.backend).toBe('redis');
        await store.set('k', 'v', 60);
        expect(await admin.get(`${prefix}k`)).toBe('v');
      } finally {
        await admin.del(`${prefix}k`);
        await admin.close();
        await store.close();
      }
    });

    it('resolves while Redis is unreachable, logs it, and reports the store unavailable', async () => {
      const port = await freePort();
      const lines: Array<Record<string, unknown>> = [];
      const logger = createLogger({
        level: 'warn',
        destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
      });
      const store = await createStore(
        buildConfig({
          STORE: 'redis',
          REDIS_URL: `redis://127.0.0.1:${port}`,
          STORE_TIMEOUT_MS: '200',
        }),
        { logger },
      );
      try {
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(lines.map((l) => l.msg)).toContain('redis store unavailable; reconnecting');
      } finally {
        await store.close();
      }
    });
  });
});
