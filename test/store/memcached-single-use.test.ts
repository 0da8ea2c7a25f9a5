import net from 'node:net';
import request from 'supertest';
import { recipientId } from '../../services/codes';
import { keys } from '../../src/store/keys';
import { MemcachedStore, memcachedKey } from '../../src/store/memcached';
import { buildTestApp, lastCode, lastToken, type TestApp } from '../support/app';
import { attemptSecret, putSecret } from '../support/secrets';
import {
  describeMemcached,
  type PrivateServer,
  startPrivateMemcached,
  stopPrivateServers,
  uniquePrefix,
} from '../support/servers';

/**
 * Memcached may drop any key at any time: it evicts under memory pressure and forgets everything
 * on a restart. Single use must therefore rest on the secret's own item alone. These tests take
 * away every other key (by filling a small cache as another client would, by restarting a
 * server, and by deleting them outright) and then replay used, dead and counter-less secrets.
 */

const RIGHT = 'hmac-of-the-right-code';
const WRONG = 'hmac-of-a-wrong-code';
const PURPOSE = 'verification';

/**
 * Sends text-protocol lines to a memcached and resolves with the reply up to `end`; rejects at
 * once on an error reply (ERROR, CLIENT_ERROR, SERVER_ERROR, BUSY), which never reaches `end`.
 */
function ask(address: string, lines: string[], end: RegExp): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let received = '';
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`no complete answer from ${address}`));
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.write(lines.map((line) => `${line}\r\n`).join('')));
    socket.on('data', (chunk) => {
      received += chunk.toString();
      if (end.test(received)) {
        socket.destroy();
        resolve(received);
      } else if (/^(ERROR|CLIENT_ERROR|SERVER_ERROR|BUSY)\b[^\r]*\r\n/.test(received)) {
        socket.destroy();
        reject(new Error(`${address}: ${received.slice(0, received.indexOf('\r'))}`));
      }
    });
  });
}

/**
 * Every key the server holds (memcached 1.6's LRU crawler lists them). The crawler answers BUSY
 * while memcached's own background crawl runs: asks again, for up to 5 s.
 */
async function keysOn(address: string): Promise<string[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const dump = await ask(address, ['lru_crawler metadump all'], /(^|\n)END\r\n$/);
      return [...dump.matchAll(/^key=(\S+)/gm)].map((m) => decodeURIComponent(m[1] ?? ''));
    } catch (error) {
      if (!/: BUSY/.test((error as Error).message) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Deletes every key on the server except `keep`, as eviction could. Resolves how many went. */
async function dropAllBut(address: string, keep: readonly string[]): Promise<number> {
  const doomed = (await keysOn(address)).filter((key) => !keep.includes(key));
  if (doomed.length === 0) return 0;
  await ask(
    address,
    doomed.map((key) => `delete ${key} noreply`).concat('version'),
    /VERSION [^\r]*\r\n$/,
  );
  return doomed.length;
}

async function stat(address: string, name: string): Promise<number> {
  const stats = await ask(address, ['stats'], /END\r\n$/);
  const match = stats.match(new RegExp(`^STAT ${name} (\\d+)`, 'm'));
  return Number(match?.[1] ?? Number.NaN);
}

/**
 * What another tenant of the cache does: writes `megabytes` of small items of its own (flags,
 * session ids), which land in the slab classes of verifyd's small items and evict them there,
 * while verifyd's larger secrets, in a class of their own, stay. Pipelined text-protocol sets
 * without replies, each batch closed by a `version` round trip: a tenth of the CPU a promise per
 * item costs, so that a busy machine does not push the test past its timeout.
 */
async function fillAsAnotherClient(address: string, megabytes: number): Promise<void> {
  let written = 0;
  let n = 0;
  while (written < megabytes * 1024 * 1024) {
    const batch: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const value = 'x'.repeat(1 + ((n * 37) % 90));
      written += value.length + 60;
      batch.push(`set another-client:${n++} 0 3600 ${value.length} noreply`, value);
    }
    await ask(address, batch.concat('version'), /VERSION [^\r]*\r\n$/);
  }
}

// Exchanges 3xx and 4xx of area code 555: valid numbers that no other suite uses.
const phoneOf = (label: number, i: number) => `+1555${label + 2}${String(i).padStart(6, '0')}`;
const emailOf = (label: number, i: number) => `user${label}-${i}@example.com`;
/** A code of the same length that is not `code`. */
const wrongCode = (code: string) =>
  String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');

/** What the attacker holds after the owners finished: used codes and links, and dead codes. */
interface Spent {
  used: Array<() => request.Test>;
  dead: Array<() => request.Test>;
  deadPhones: string[];
}

/**
 * Sends codes and links, uses each once, and kills `dead` codes with OTP_MAX_ATTEMPTS misses.
 * Returns the requests that replay them: each must now fail.
 */
async function spendSecrets(
  test: TestApp,
  label: number,
  counts: { phones: number; emails: number; dead: number },
): Promise<Spent> {
  const { app, outbox } = test;
  const phones = Array.from({ length: counts.phones }, (_, i) => phoneOf(label, i));
  const emails = Array.from({ length: counts.emails }, (_, i) => emailOf(label, i));
  const deadPhones = Array.from({ length: counts.dead }, (_, i) => phoneOf(label, 50_000 + i));
  const used: Spent['used'] = [];
  const dead: Spent['dead'] = [];
  for (const phone of [...phones, ...deadPhones]) {
    await request(app).post('/verify-phone').send({ phone }).expect(202);
  }
  for (const email of emails) {
    await request(app).post('/verify-email').send({ email }).expect(202);
  }
  for (const phone of phones) {
    const code = lastCode(outbox, phone);
    await request(app).post('/verify-phone-code').send({ phone, code }).expect(200);
    used.push(() => request(app).post('/verify-phone-code').send({ phone, code }));
  }
  for (const email of emails) {
    const token = lastToken(outbox, email);
    await request(app).post('/verify-email-token').send({ token }).expect(200);
    used.push(() => request(app).post('/verify-email-token').send({ token }));
  }
  for (const phone of deadPhones) {
    const code = lastCode(outbox, phone);
    for (let i = 0; i < test.config.OTP_MAX_ATTEMPTS; i++) {
      const res = await request(app)
        .post('/verify-phone-code')
        .send({ phone, code: wrongCode(code) });
      // A refusal, not a store failure: 100 of those, each after the store's timeout, would run
      // past the test's timeout instead of failing here.
      expect(res.status).toBeLessThan(500);
    }
    dead.push(() => request(app).post('/verify-phone-code').send({ phone, code }));
  }
  return { used, dead, deadPhones };
}

/** Replays everything at once, as an attacker would, and counts what was accepted. */
async function replay(spent: Spent): Promise<{ used: number; dead: number; errors: number }> {
  const [used, dead] = await Promise.all([
    Promise.all(spent.used.map((send) => send())),
    Promise.all(spent.dead.map((send) => send())),
  ]);
  const all = [...used, ...dead];
  return {
    used: used.filter((res) => res.status === 200).length,
    dead: dead.filter((res) => res.status === 200).length,
    errors: all.filter((res) => res.status >= 500).length,
  };
}

describeMemcached('memcached: single use rests on the secret alone', () => {
  describe('after another client fills a small cache past eviction', () => {
    let server: PrivateServer;
    let store: MemcachedStore;
    const prefix = uniquePrefix('evicted');

    beforeAll(async () => {
      server = await startPrivateMemcached(['-m', '8']);
      store = new MemcachedStore({ servers: server.address, keyPrefix: prefix, timeoutMs: 2000 });
    });
    afterAll(async () => {
      await store?.close();
      await stopPrivateServers([server]);
    });

    it('accepts none of 25 used codes, 25 used links and 20 dead codes again', async () => {
      const test = buildTestApp({ store, env: { OTP_MAX_ATTEMPTS: '5' } });
      const spent = await spendSecrets(test, 1, { phones: 25, emails: 25, dead: 20 });

      await fillAsAnotherClient(server.address, 8);
      expect(await stat(server.address, 'evictions')).toBeGreaterThan(0);
      // The fill must have left some of the dead codes standing, or the replay proves nothing.
      const deadKeys = spent.deadPhones.map((phone) =>
        memcachedKey(
          prefix,
          keys.verification('sms', PURPOSE, recipientId(test.config.OTP_SECRET, `sms:${phone}`)),
        ),
      );
      const left = new Set(await keysOn(server.address));
      expect(deadKeys.filter((key) => left.has(key)).length).toBeGreaterThan(0);

      expect(await replay(spent)).toEqual({ used: 0, dead: 0, errors: 0 });
    });
  });

  describe('after one of two servers restarts', () => {
    let first: PrivateServer;
    let second: PrivateServer;
    let store: MemcachedStore;

    beforeAll(async () => {
      [first, second] = await Promise.all([startPrivateMemcached(), startPrivateMemcached()]);
      store = new MemcachedStore({
        servers: `${first.address},${second.address}`,
        keyPrefix: uniquePrefix('restarted'),
        timeoutMs: 2000,
      });
    });
    afterAll(async () => {
      await store?.close();
      await stopPrivateServers([first, second]);
    });

    it('accepts none of 30 used codes, 30 used links and 20 dead codes again', async () => {
      const test = buildTestApp({ store, env: { OTP_MAX_ATTEMPTS: '5' } });
      const spent = await spendSecrets(test, 2, { phones: 30, emails: 30, dead: 20 });

      await second.stop();
      await second.start();

      expect(await replay(spent)).toEqual({ used: 0, dead: 0, errors: 0 });
    });
  });

  describe('when every other key is gone (store level)', () => {
    let server: PrivateServer;
    const stores: MemcachedStore[] = [];

    beforeAll(async () => {
      server = await startPrivateMemcached();
    });
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
    });
    afterAll(() => stopPrivateServers([server]));

    /** A store of its own on the private server, and the memcached name of logical key `s`. */
    const open = (label: string) => {
      const prefix = uniquePrefix(label);
      const store = new MemcachedStore({ servers: server.address, keyPrefix: prefix });
      stores.push(store);
      return { store, secretKey: memcachedKey(prefix, 's') };
    };

    it('a consumed secret stays consumed', async () => {
      const { store, secretKey } = open('gone-consumed');
      await putSecret(store, 's', RIGHT, 60);
      expect(await attemptSecret(store, 's', RIGHT, 5)).toMatchObject({ status: 'match' });
      await dropAllBut(server.address, [secretKey]);
      expect(await attemptSecret(store, 's', RIGHT, 5)).toEqual({ status: 'missing' });
    });

    it('a secret that used up its attempts stays dead', async () => {
      const { store, secretKey } = open('gone-dead');
      await putSecret(store, 's', RIGHT, 60);
      for (let i = 0; i < 3; i++) await attemptSecret(store, 's', WRONG, 3);
      await dropAllBut(server.address, [secretKey]);
      expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'locked' });
    });

    it('a secret whose attempt count is lost gets no fresh attempts: it is dead', async () => {
      const { store, secretKey } = open('gone-counter');
      await putSecret(store, 's', RIGHT, 60);
      expect(await attemptSecret(store, 's', WRONG, 3)).toMatchObject({ remaining: 2 });
      expect(await attemptSecret(store, 's', WRONG, 3)).toMatchObject({ remaining: 1 });
      expect(await dropAllBut(server.address, [secretKey])).toBeGreaterThan(0);
      expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'locked' });
      expect(await attemptSecret(store, 's', RIGHT, 3)).toEqual({ status: 'locked' });
    });
  });
});
