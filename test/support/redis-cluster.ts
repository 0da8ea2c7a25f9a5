import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PID_DIR_ENV, REDIS_BIN, sleep } from './servers';

const run = promisify(execFile);
export const REDIS_CLI_BIN = '/usr/bin/redis-cli';

/** One redis-server of the private cluster. */
export interface ClusterNode {
  readonly port: number;
  /** host:port, as REDIS_CLUSTER_NODES lists it. */
  readonly address: string;
  /** Kills the node abruptly (SIGKILL), like a crash, and waits until it is gone. */
  kill(): Promise<void>;
  readonly alive: boolean;
}

export interface PrivateCluster {
  readonly nodes: readonly ClusterNode[];
  /** Comma-separated seeds for REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  /** The primary that serves `slot` right now, asked of a live node. */
  primaryOf(slot: number): Promise<ClusterNode>;
  /** Resolves once every live node reports cluster_state:ok, or rejects after `timeoutMs`. */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  /** Assigns the slots and replicas (redis-cli --cluster create) and waits until it is ready. */
  form(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Ports for a node and its cluster bus (port + 10000), both free right now. Ports are drawn at
 * random below 55536 so that the bus port stays a valid port.
 */
async function freeNodePort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20000 + Math.floor(Math.random() * 35000);
    if (taken.has(port) || taken.has(port + 10000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      taken.add(port);
      taken.add(port + 10000);
      return port;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(REDIS_CLI_BIN, ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5000,
  });
  return stdout;
}

/**
 * A private Redis Cluster of 3 primaries, each with a replica, as separate redis-server processes
 * on loopback. `nodeTimeoutMs` is cluster-node-timeout: how long a silent primary takes to be
 * declared failed, so a failover test takes about that long plus an election. Throws when the
 * cluster does not form: a suite that needs it then fails rather than skipping.
 */
/**
 * Every node process this worker started and that still runs. One exit hook for all of them: a hook
 * per node would pass Node's listener warning after two clusters.
 */
const liveNodes = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveNodes) child.kill('SIGKILL');
});

export async function startPrivateCluster(
  nodeTimeoutMs = 1000,
  { formed = true }: { formed?: boolean } = {},
): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'verifyd-cluster-'));
  const taken = new Set<number>();
  const nodes: Array<ClusterNode & { child: ChildProcess }> = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freeNodePort(taken);
      const child = spawn(
        REDIS_BIN,
        [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          // As README advises: without it, every node refuses every slot (CLUSTERDOWN) from the
          // moment one primary is declared failed until its replica takes over.
          '--cluster-require-full-coverage',
          'no',
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
          '--dir',
          dir,
          '--logfile',
          join(dir, `node-${port}.log`),
        ],
        { stdio: ['ignore', 'ignore', 'ignore'] },
      );
      const pidDir = process.env[PID_DIR_ENV];
      if (pidDir && child.pid !== undefined) {
        writeFileSync(
          join(pidDir, `${child.pid}.json`),
          JSON.stringify({ pid: child.pid, bin: REDIS_BIN, port }),
        );
      }
      const forget = () => {
        if (pidDir && child.pid !== undefined) {
          rmSync(join(pidDir, `${child.pid}.json`), { force: true });
        }
      };
      const node = {
        port,
        address: `127.0.0.1:${port}`,
        child,
        get alive() {
          return child.exitCode === null && child.signalCode === null;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
            child.kill('SIGKILL');
            await exited;
          }
          forget();
        },
      };
      nodes.push(node);
      liveNodes.add(child);
      child.once('exit', () => liveNodes.delete(child));
    }
    for (const node of nodes)
      await waitFor(async () => (await cli(node.port, 'PING')).trim() === 'PONG');
  } catch (error) {
    await stop();
    throw error;
  }

  const cluster: PrivateCluster = {
    nodes,
    seeds: nodes.map((node) => node.address).join(','),
    async primaryOf(slot) {
      const asker = nodes.find((node) => node.alive);
      if (!asker) throw new Error('no cluster node is alive');
      const slots = JSON.parse(
        (await cli(asker.port, '--json', 'CLUSTER', 'SLOTS')) || '[]',
      ) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
      for (const [from, to, [, port]] of slots) {
        if (slot >= from && slot <= to) {
          const node = nodes.find((n) => n.port === Number(port));
          if (node) return node;
        }
      }
      throw new Error(`no primary serves slot ${slot}`);
    },
    async waitUntilOk(timeoutMs = 30_000) {
      await waitFor(async () => {
        const states = await Promise.all(
          nodes.filter((node) => node.alive).map((node) => cli(node.port, 'CLUSTER', 'INFO')),
        );
        return states.every((info) => info.includes('cluster_state:ok'));
      }, timeoutMs);
    },
    form: async () => {
      try {
        await form();
      } catch (error) {
        await stop();
        throw error;
      }
    },
    stop,
  };
  const form = async () => {
    await run(
      REDIS_CLI_BIN,
      [
        '--cluster',
        'create',
        ...nodes.map((node) => node.address),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await cluster.waitUntilOk();
    // Every node must also know every other one, or a client may be sent to a node that has not
    // heard of a peer yet.
    await waitFor(async () => {
      const views = await Promise.all(nodes.map((node) => cli(node.port, 'CLUSTER', 'NODES')));
      return views.every((view) => view.trim().split('\n').length === nodes.length);
    });
    // A replica that has not finished its first sync has no data to serve and never takes over
    // from its primary: a failover test would wait forever.
    await waitFor(async () => {
      const infos = await Promise.all(nodes.map((node) => cli(node.port, 'INFO', 'replication')));
      const replicas = infos.filter((info) => info.includes('role:slave'));
      return (
        replicas.length === nodes.length / 2 &&
        replicas.every((info) => info.includes('master_link_status:up'))
      );
    });
  };
  if (formed) await cluster.form();
  return cluster;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`the private Redis Cluster did not get ready within ${timeoutMs} ms`, {
        cause: last,
      });
    }
    await sleep(100);
  }
}

/**
 * For a describe block: a private cluster started before its tests and stopped after them, with
 * its seeds written into `env` (REDIS_CLUSTER_NODES) in time for the suite's own beforeAll.
 */
export function withPrivateCluster(env: Record<string, string>): void {
  let cluster: PrivateCluster | undefined;
  beforeAll(async () => {
    cluster = await startPrivateCluster();
    env.REDIS_CLUSTER_NODES = cluster.seeds;
  }, 60_000);
  afterAll(() => cluster?.stop());
}
