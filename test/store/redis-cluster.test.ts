import { execFileSync } from 'node:child_process';
import { buildConfig } from '../../src/config';
import { StoreUnavailableError } from '../../src/errors';
import { createStore } from '../../src/store';
import { RedisStore } from '../../src/store/redis';
import { slotOf } from '../../src/store/redis-slot';
import {
  cli,
  type PrivateCluster,
  REDIS_CLI_BIN,
  startPrivateCluster,
} from '../support/redis-cluster';
import { describeRedis, sleep, uniquePrefix } from '../support/servers';
import { type ConformanceFactory, runStoreConformance } from './conformance';
import { inOneRecord } from './conformance/in-one-record';

async function openClusterStore(seeds: string, keyPrefix: string): Promise<RedisStore> {
  const store = new RedisStore({
    url: 'redis://',
    clusterNodes: seeds.split(','),
    keyPrefix,
    timeoutMs: 2000,
  });
  await store.waitUntilReady(5000);
  return store;
}

describeRedis('redis cluster', () => {
  let cluster: PrivateCluster | undefined;
  const seeds = (): string => {
    if (!cluster) throw new Error('private Redis Cluster not started');
    return cluster.seeds;
  };

  // A cluster that does not form fails here, in CI and everywhere: nothing is skipped.
  beforeAll(async () => {
    cluster = await startPrivateCluster();
  }, 60_000);
  afterAll(() => cluster?.stop());

  const factory: ConformanceFactory = {
    create: (prefix) => openClusterStore(seeds(), prefix),
    advance: sleep,
    expiryGraceMs: 100,
    canScan: true,
  };
  runStoreConformance('redis', factory);
  describe('every key a part of one record', () => {
    runStoreConformance('redis', inOneRecord(factory));
  });

  describe('placement', () => {
    it('computes the slot of a key as the cluster does', () => {
      const port = String(cluster?.nodes[0]?.port);
      for (const key of ['plain', 'limit:send:sms:{abc}', 'a{}b', '{}{x}', 'x{y}z{w}', 'ünï']) {
        const reply = execFileSync(REDIS_CLI_BIN, ['-p', port, 'CLUSTER', 'KEYSLOT', key]);
        expect(slotOf(key)).toBe(Number(reply.toString().trim()));
      }
    });

    it('REDIS_CLUSTER_NODES makes createStore talk to the cluster', async () => {
      const prefix = uniquePrefix('cluster-factory');
      const store = await createStore(
        buildConfig({ STORE: 'redis', REDIS_CLUSTER_NODES: seeds(), KEY_PREFIX: prefix }),
      );
      try {
        // Keys in many slots, so on three primaries: each must be read back from its own.
        const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
        await Promise.all(keys.map((key) => store.set(key, key, 60)));
        expect(await Promise.all(keys.map((key) => store.get(key)))).toEqual(keys);
        await store.ping();
      } finally {
        await store.close();
      }
    });
  });

  describe('faults', () => {
    it('follows a slot that migrates to another primary (ASK, then MOVED) without failing a call', async () => {
      if (!cluster) throw new Error('no cluster');
      const prefix = uniquePrefix('migrate');
      const store = await openClusterStore(seeds(), prefix);
      try {
        const slot = slotOf(`${prefix}{moving}`);
        const source = await cluster.primaryOf(slot);
        const target = await cluster.primaryOf((slot + 8192) % 16384);
        expect(target.port).not.toBe(source.port);
        const idOf = async (port: number) => (await cli(port, 'CLUSTER', 'MYID')).trim();
        const [sourceId, targetId] = await Promise.all([idOf(source.port), idOf(target.port)]);
        await store.set('before{moving}', 'old', 60);
        await store.increment('count{moving}', 60);

        await cli(target.port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId);
        await cli(source.port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId);
        // Mid-migration: keys still on the source are served there; a new key gets ASK.
        expect(await store.get('before{moving}')).toBe('old');
        await store.set('during{moving}', 'new', 60);
        expect((await store.increment('count{moving}', 60)).count).toBe(2);

        const keys = (await cli(source.port, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100'))
          .trim()
          .split('\n')
          .filter(Boolean);
        await cli(
          source.port,
          'MIGRATE',
          '127.0.0.1',
          String(target.port),
          '',
          '0',
          '5000',
          'KEYS',
          ...keys,
        );
        for (const node of cluster.nodes) {
          await cli(node.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId);
        }
        // Done: the source answers MOVED, and the client follows it to the target.
        expect(await store.get('before{moving}')).toBe('old');
        expect(await store.get('during{moving}')).toBe('new');
        expect((await store.increment('count{moving}', 60)).count).toBe(3);
        expect((await cluster.primaryOf(slot)).port).toBe(target.port);
      } finally {
        await store.close();
      }
    });

    it('answers 503 while the cluster is still forming, and serves once it has formed', async () => {
      const forming = await startPrivateCluster(1000, { formed: false });
      const store = new RedisStore({
        url: 'redis://',
        clusterNodes: forming.seeds.split(','),
        keyPrefix: uniquePrefix('forming'),
        timeoutMs: 500,
      });
      try {
        await store.waitUntilReady(2000);
        await expect(store.set('k', 'v', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(
          store.admit({ counters: [{ key: 'c', windowSeconds: 60, max: 1 }] }),
        ).rejects.toBeInstanceOf(StoreUnavailableError);
        await forming.form();
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            await store.set('k', 'v', 60);
            break;
          } catch (error) {
            expect(error).toBeInstanceOf(StoreUnavailableError);
            if (Date.now() > deadline) throw error;
            await sleep(100);
          }
        }
        expect(await store.get('k')).toBe('v');
      } finally {
        await store.close();
        await forming.stop();
      }
    }, 60_000);
  });
});
