import { execFileSync } from 'node:child_process';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import { RedisStore } from '../../src/store/redis';
import { slotOf } from '../../src/store/redis-slot';
import { type PrivateCluster, REDIS_CLI_BIN, startPrivateCluster } from '../support/redis-cluster';
import { describeRedis, sleep, uniquePrefix } from '../support/servers';
import { runStoreConformance } from './conformance';

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

  runStoreConformance('redis', {
    create: (prefix) => openClusterStore(seeds(), prefix),
    advance: sleep,
    expiryGraceMs: 100,
    canScan: true,
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
});
