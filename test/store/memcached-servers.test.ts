import request from 'supertest';
import { recipientId } from '../../services/codes';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import { MemcachedStore, placementTag, serverIndex } from '../../src/store/memcached';
import { buildTestApp, lastCode, lastToken, type TestApp } from '../support/app';
import {
  describeMemcached,
  type PrivateServer,
  sleep,
  startPrivateMemcached,
  stopPrivateServers,
  uniquePrefix,
} from '../support/servers';

describe('memcached placement (pure)', () => {
  it('places a key by the text in its first braces, else by the whole key', () => {
    expect(placementTag('code:login:{abc}')).toBe('abc');
    expect(placementTag('limit:ip-target:{192.0.2.1}:abc')).toBe('192.0.2.1');
    expect(placementTag('rl:ip:{2001:db8::/56}')).toBe('2001:db8::/56');
    expect(placementTag('limit:sms-budget')).toBe('limit:sms-budget');
    // Empty or unclosed braces name nothing, as in Redis Cluster.
    expect(placementTag('a:{}:b')).toBe('a:{}:b');
    expect(placementTag('a:{b')).toBe('a:{b');
  });

  it('puts keys with the same tag on the same server, and spreads tags over all servers', () => {
    const tags = Array.from({ length: 200 }, (_, i) => `t${i}`);
    for (const tag of tags) {
      const index = serverIndex(`code:x:{${tag}}`, 3);
      expect(serverIndex(`limit:send:sms:{${tag}}`, 3)).toBe(index);
      expect(serverIndex(`limit:lock:{${tag}}`, 3)).toBe(index);
    }
    const used = new Set(tags.map((tag) => serverIndex(tag, 3)));
    expect([...used].sort()).toEqual([0, 1, 2]);
    expect(serverIndex('anything', 1)).toBe(0);
  });
});

const OK = [200, 202];

/** Status and error code, so that a failed expectation says what came back. */
const outcome = (res: request.Response) => `${res.status} ${res.body?.error?.code ?? ''}`.trim();

describeMemcached('memcached with two servers, one of them down', () => {
  let first: PrivateServer;
  let second: PrivateServer;
  let store: MemcachedStore;
  let test: TestApp;
  const byAddress = () => new Map([first, second].map((server) => [server.address, server]));

  beforeAll(async () => {
    [first, second] = await Promise.all([startPrivateMemcached(), startPrivateMemcached()]);
    const created = await createStore(
      buildConfig({
        STORE: 'memcached',
        MEMCACHED_SERVERS: `${first.address},${second.address}`,
        KEY_PREFIX: uniquePrefix('two-servers'),
        STORE_TIMEOUT_MS: '300',
      }),
    );
    if (!(created instanceof MemcachedStore)) throw new Error('expected a memcached store');
    store = created;
    // A cooldown, so that a send which failed half-way and left its cooldown behind would show.
    test = buildTestApp({ store, env: { TRUST_PROXY: '1', SEND_COOLDOWN_SECONDS: '30' } });
  });

  afterAll(async () => {
    await store?.close();
    await stopPrivateServers([first, second]);
  });

  const secret = () => test.config.OTP_SECRET;
  const phoneServer = (phone: string) =>
    store.serverFor(`{${recipientId(secret(), `sms:${phone}`)}}`);
  const emailServer = (email: string) =>
    store.serverFor(`{${recipientId(secret(), `email:${email}`)}}`);
  const ipServer = (ip: string) => store.serverFor(`{${ip}}`);

  /** The first `count` candidates whose keys live on `server`; the rest are never built. */
  function pick(
    count: number,
    server: string,
    where: (c: string) => string,
    make: (i: number) => string,
  ) {
    const found: string[] = [];
    for (let i = 0; found.length < count && i < 1000; i++) {
      if (where(make(i)) === server) found.push(make(i));
    }
    if (found.length < count) throw new Error(`fewer than ${count} candidates on ${server}`);
    return found;
  }

  const sendPhone = (phone: string, ip: string) =>
    request(test.app).post('/verify-phone').set('X-Forwarded-For', ip).send({ phone });
  const checkPhone = (phone: string, ip: string, code = lastCode(test.outbox, phone)) =>
    request(test.app).post('/verify-phone-code').set('X-Forwarded-For', ip).send({ phone, code });
  const sendEmail = (email: string, ip: string) =>
    request(test.app).post('/verify-email').set('X-Forwarded-For', ip).send({ email });
  const confirmEmail = (email: string, ip: string) =>
    request(test.app)
      .post('/verify-email-token')
      .set('X-Forwarded-For', ip)
      .send({ token: lastToken(test.outbox, email) });

  /** Retries `call` until it succeeds; resolves with the milliseconds that took. */
  async function timeUntilOk(call: () => Promise<request.Response>, limitMs: number) {
    const started = Date.now();
    for (;;) {
      const res = await call();
      if (OK.includes(res.status)) return Date.now() - started;
      // Until the server answers, only a fail-closed answer is acceptable.
      expect(outcome(res)).toBe('503 store_unavailable');
      if (Date.now() - started > limitMs) throw new Error(`not served within ${limitMs} ms`);
      await sleep(10);
    }
  }

  it('fails closed only for recipients and clients on the dead server, and serves them again once it is back', async () => {
    // The deployment-wide SMS budget is one key; the server that holds it stays up here (the
    // next test stops it).
    const live = store.serverFor('limit:sms-budget');
    const deadAddress = store.servers.find((server) => server !== live) as string;
    const dead = byAddress().get(deadAddress) as PrivateServer;
    const phone = (i: number) => `+1555010${String(1000 + i)}`;
    const [liveIp] = pick(1, live, ipServer, (i) => `198.51.100.${i + 1}`) as [string];
    const [deadIp] = pick(1, deadAddress, ipServer, (i) => `198.51.100.${i + 1}`) as [string];
    const livePhones = pick(4, live, phoneServer, phone);
    // Sent from the dead server's client only, so no cooldown of an earlier send is in the way.
    const [spare] = pick(5, live, phoneServer, phone).slice(4) as [string];
    const deadPhones = pick(4, deadAddress, phoneServer, phone);
    const email = (i: number) => `partial-${i}@example.com`;
    const [liveEmail] = pick(1, live, emailServer, email) as [string];
    const [deadEmail] = pick(1, deadAddress, emailServer, email) as [string];

    // Codes sent while both servers were up: the live ones must stay usable through the outage,
    // the dead ones must never be accepted.
    for (const p of [livePhones[0], ...deadPhones] as string[]) {
      expect(outcome(await sendPhone(p, liveIp))).toBe('202');
    }
    const oldCodes = new Map(deadPhones.map((p) => [p, lastCode(test.outbox, p)]));

    await dead.stop();
    try {
      expect(outcome(await checkPhone(livePhones[0] as string, liveIp))).toBe('200');
      for (const p of livePhones.slice(1)) {
        expect(outcome(await sendPhone(p, liveIp))).toBe('202');
        expect(outcome(await checkPhone(p, liveIp))).toBe('200');
      }
      expect(outcome(await sendEmail(liveEmail, liveIp))).toBe('202');
      expect(outcome(await confirmEmail(liveEmail, liveIp))).toBe('200');

      const failClosed: string[] = [];
      for (const p of deadPhones) {
        failClosed.push(outcome(await checkPhone(p, liveIp, oldCodes.get(p))));
        failClosed.push(outcome(await sendPhone(p, liveIp)));
      }
      failClosed.push(outcome(await sendEmail(deadEmail, liveIp)));
      // A client whose own counters live on the dead server cannot be counted, so it is refused
      // even for a recipient on the live server.
      failClosed.push(outcome(await sendPhone(spare, deadIp)));
      expect(new Set(failClosed)).toEqual(new Set(['503 store_unavailable']));

      const degraded = await request(test.app).get('/health');
      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({
        status: 'degraded',
        store: { backend: 'memcached', ok: true, servers: { total: 2, unreachable: 1 } },
      });
      expect(JSON.stringify(degraded.body)).not.toContain(deadAddress);
    } finally {
      // Also after a failed expectation, so that the next test starts with both servers up.
      await dead.start();
    }
    // Back, empty, and served again without restarting verifyd or reconnecting by hand.
    const [firstDead, ...otherDead] = deadPhones as [string, ...string[]];
    const recoveryMs = await timeUntilOk(() => sendPhone(firstDead, liveIp), 5000);
    expect(recoveryMs).toBeLessThan(2000);
    expect(outcome(await checkPhone(firstDead, liveIp))).toBe('200');
    for (const p of otherDead) {
      // The restarted server lost the old code: gone, never accepted.
      expect(outcome(await checkPhone(p, liveIp, oldCodes.get(p)))).toBe('400 code_expired');
      expect(outcome(await sendPhone(p, liveIp))).toBe('202');
      expect(outcome(await checkPhone(p, liveIp))).toBe('200');
    }
    expect(outcome(await sendPhone(spare, deadIp))).toBe('202');
    expect((await request(test.app).get('/health')).body.status).toBe('ok');
  });

  it('with the SMS budget’s server down, fails SMS sends closed without starting a cooldown, while email works', async () => {
    const deadAddress = store.serverFor('limit:sms-budget');
    const live = store.servers.find((server) => server !== deadAddress) as string;
    const dead = byAddress().get(deadAddress) as PrivateServer;
    const [ip] = pick(1, live, ipServer, (i) => `203.0.113.${i + 1}`) as [string];
    const [p] = pick(1, live, phoneServer, (i) => `+1555020${String(1000 + i)}`) as [string];
    const [email] = pick(1, live, emailServer, (i) => `budget-${i}@example.com`) as [string];

    await dead.stop();
    try {
      // The budget cannot be counted, so no SMS may go out; nothing reached the provider.
      expect(outcome(await sendPhone(p, ip))).toBe('503 store_unavailable');
      expect(test.outbox.list({ to: p })).toHaveLength(0);
      expect(outcome(await sendEmail(email, ip))).toBe('202');
    } finally {
      await dead.start();
    }
    // The failed send took back its cooldown: the first send after recovery goes out.
    expect(outcome(await sendPhone(p, ip))).toBe('202');
  });
});
