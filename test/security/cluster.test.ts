import request from 'supertest';
import { recipientId } from '../../services/codes';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import { kindOfKey, keys as storeKeys } from '../../src/store/keys';
import { slotOf } from '../../src/store/redis-slot';
import type { Store } from '../../src/store/types';
import { buildTestApp, countingSms, type TestApp } from '../support/app';
import { type PrivateCluster, startPrivateCluster } from '../support/redis-cluster';
import { describeRedis, sleep, uniquePrefix } from '../support/servers';

async function clusterStore(cluster: PrivateCluster, prefix: string, timeoutMs = 2000) {
  return createStore(
    buildConfig({
      STORE: 'redis',
      REDIS_CLUSTER_NODES: cluster.seeds,
      KEY_PREFIX: prefix,
      STORE_TIMEOUT_MS: String(timeoutMs),
    }),
  );
}

async function keysOf(store: Store): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.scan?.() ?? []) keys.push(entry.key);
  return keys;
}

describeRedis('sends on a Redis Cluster: limits across slots', () => {
  let cluster: PrivateCluster | undefined;
  const stores: Store[] = [];
  beforeAll(async () => {
    cluster = await startPrivateCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await cluster?.stop();
  });

  async function app(env: Record<string, string>, sms = countingSms()) {
    if (!cluster) throw new Error('no cluster');
    const prefix = uniquePrefix('cluster-sends');
    const store = await clusterStore(cluster, prefix);
    stores.push(store);
    return { test: buildTestApp({ store, env, sms: sms.provider }), sms, store, prefix };
  }

  it('20 concurrent sends to one number reach the provider once, with its limits in 3 slots', async () => {
    const { test, sms, store, prefix } = await app({ SEND_COOLDOWN_SECONDS: '60' });
    const phone = '+15551230001';
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => request(test.app).post('/verify-phone').send({ phone })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([202, ...Array(19).fill(429)]);
    expect(sms.calls).toHaveLength(1);
    // The send really spans slots (recipient, client, budget): one script could not have run it.
    const limitSlots = new Set(
      (await keysOf(store))
        .filter((k) => kindOfKey(k) === 'send/attempt limit')
        .map((k) => slotOf(prefix + k)),
    );
    expect(limitSlots.size).toBeGreaterThanOrEqual(3);
  });

  it('a send the SMS budget refuses (a later slot) counts nothing and keeps the code held', async () => {
    const { test, sms, store } = await app({ SMS_HOURLY_BUDGET: '1' });
    const phone = '+15551230002';
    await request(test.app).post('/verify-phone').send({ phone }).expect(202);
    const code = sms.calls[0]?.body.match(/\d{6}/)?.[0];
    const id = recipientId(test.config.OTP_SECRET, `sms:${phone}`);
    const sendKey = storeKeys.sends('sms', id);
    expect(await store.get(sendKey)).toBe('1');

    // The recipient's step counts first; the budget's step refuses; the count is taken back.
    const refused = await Promise.all(
      Array.from({ length: 10 }, () => request(test.app).post('/verify-phone').send({ phone })),
    );
    expect(refused.map((r) => r.body.error?.code)).toEqual(Array(10).fill('sms_budget_exhausted'));
    expect(sms.calls).toHaveLength(1);
    expect(await store.get(sendKey)).toBe('1');
    await request(test.app).post('/verify-phone-code').send({ phone, code }).expect(200);
  });
});

describeRedis('Redis Cluster failover', () => {
  let cluster: PrivateCluster | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    cluster = await startPrivateCluster(1000);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  it('fails closed on the dead primary’s slots, serves the rest, and resumes once its replica is promoted', async () => {
    if (!cluster) throw new Error('no cluster');
    const prefix = uniquePrefix('failover');
    store = await clusterStore(cluster, prefix, 500);
    const test: TestApp = buildTestApp({ store });
    const send = (phone: string) => request(test.app).post('/verify-phone').send({ phone });

    // The client's keys and the SMS budget are shared by every send: the primary to kill must
    // hold neither, so that what stops is exactly its recipients.
    await send('+15551239999').expect(202);
    const shared = (await keysOf(store))
      .filter((k) => !k.includes(recipientId(test.config.OTP_SECRET, 'sms:+15551239999')))
      .map((k) => slotOf(prefix + k));
    const sharedPrimaries = new Set(
      await Promise.all(shared.map(async (s) => (await cluster?.primaryOf(s))?.port)),
    );
    const primaries = new Set<number>();
    for (let s = 0; s < 16384; s += 500) primaries.add((await cluster.primaryOf(s)).port);
    const doomedPort = [...primaries].find((port) => !sharedPrimaries.has(port));
    const doomed = cluster.nodes.find((node) => node.port === doomedPort);
    if (!doomed) throw new Error('every primary holds a shared key');

    const dead: string[] = [];
    const live: string[] = [];
    for (let i = 0; dead.length < 4 || live.length < 4; i++) {
      const phone = `+1555300${String(i).padStart(4, '0')}`;
      const slot = slotOf(`${prefix}x{${recipientId(test.config.OTP_SECRET, `sms:${phone}`)}}`);
      const owner = await cluster.primaryOf(slot);
      if (owner.port === doomed.port) {
        if (dead.length < 4) dead.push(phone);
      } else if (live.length < 4) live.push(phone);
    }
    for (const phone of [...dead, ...live]) await send(phone).expect(202);

    await doomed.kill();
    const killedAt = performance.now();
    // Until the replica takes over, one shard of three is down: degraded, not down, so that a load
    // balancer keeps the instance serving the other slots.
    const health = await request(test.app).get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'degraded',
      store: { ok: true, servers: { total: 3, unreachable: 1 } },
    });
    const deadAnswers: Array<{ at: number; status: number }> = [];
    const liveAnswers: Array<{ at: number; status: number }> = [];
    let resumedAt: number | undefined;
    while (performance.now() - killedAt < 30_000) {
      const round = await Promise.all([...dead, ...live].map((phone) => send(phone)));
      const at = performance.now() - killedAt;
      round.forEach((answer, i) => {
        expect([202, 503]).toContain(answer.status);
        if (answer.status === 503) expect(answer.body.error.code).toBe('store_unavailable');
        (i < dead.length ? deadAnswers : liveAnswers).push({ at, status: answer.status });
      });
      if (round.slice(0, dead.length).every((answer) => answer.status === 202)) {
        resumedAt = at;
        break;
      }
      await sleep(50);
    }
    const liveTrouble = liveAnswers.filter((a) => a.status !== 202);
    const liveAffectedMs = liveTrouble.length
      ? Math.max(...liveTrouble.map((a) => a.at)) - Math.min(...liveTrouble.map((a) => a.at))
      : 0;
    console.log(
      `cluster failover: dead primary's slots answered 503 until ${Math.round(resumedAt ?? -1)} ms after the kill ` +
        `(${deadAnswers.filter((a) => a.status === 503).length} answers 503); other slots: ` +
        `${liveTrouble.length} of ${liveAnswers.length} answers not 202, over ${Math.round(liveAffectedMs)} ms`,
    );
    // Fail closed: the dead slots answered 503 first, and came back without a restart.
    expect(deadAnswers[0]?.status).toBe(503);
    expect(resumedAt).toBeDefined();
    // Once back, they stay back; and a dead slot never answered 202 before the first 503-free round.
    const firstOk = deadAnswers.findIndex((a) => a.status === 202);
    expect(
      deadAnswers.slice(firstOk).every((a) => a.status === 202 || a.at < (resumedAt ?? 0)),
    ).toBe(true);
    expect(liveTrouble).toEqual([]);
  }, 60_000);
});
