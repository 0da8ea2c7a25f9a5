import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

/** Shared servers the suites use; override with the same variables the service reads. */
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const SHARED_MEMCACHED = process.env.MEMCACHED_SERVERS ?? '127.0.0.1:11211';

export const REDIS_BIN = '/usr/bin/redis-server';
export const MEMCACHED_BIN = '/usr/bin/memcached';

/** Set by global-setup outside CI when a backend is missing; suites then skip. */
export const SKIP_REDIS_ENV = 'VERIFYD_SKIP_REDIS';
export const SKIP_MEMCACHED_ENV = 'VERIFYD_SKIP_MEMCACHED';
/** Directory where spawned servers are recorded, so global-teardown can kill any left behind. */
export const PID_DIR_ENV = 'VERIFYD_TEST_PID_DIR';

/**
 * A key prefix no other test, run or person shares, so suites can run against shared servers
 * without ever flushing them.
 */
export function uniquePrefix(label: string): string {
  return `verifyd-test:${label}:${process.pid}:${randomUUID().slice(0, 8)}:`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends one line and resolves with the first line of the reply, or rejects after `timeoutMs`. */
function ask(host: string, port: number, line: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let received = '';
    const finish = (err: Error | undefined, reply?: string) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(reply ?? '');
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no answer from ${host}:${port}`)));
    socket.on('error', (err) => finish(err));
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      received += chunk.toString();
      const end = received.indexOf('\r\n');
      if (end >= 0) finish(undefined, received.slice(0, end));
    });
  });
}

function hostPort(address: string, defaultPort: number): { host: string; port: number } {
  const [host = '127.0.0.1', port] = address.split(':');
  return { host, port: port ? Number(port) : defaultPort };
}

/** True when a Redis server answers PING at the URL. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const parsed = new URL(url);
  try {
    const reply = await ask(parsed.hostname, Number(parsed.port || 6379), 'PING', timeoutMs);
    // -NOAUTH still proves a Redis server is there; credentials are the suite's business.
    return reply.startsWith('+PONG') || reply.startsWith('-NOAUTH');
  } catch {
    return false;
  }
}

/** True when a memcached server answers `version` at host:port (the first of a list). */
export async function memcachedAnswers(servers: string, timeoutMs = 1000): Promise<boolean> {
  const { host, port } = hostPort(servers.split(',')[0] ?? '', 11211);
  try {
    return (await ask(host, port, 'version', timeoutMs)).startsWith('VERSION');
  } catch {
    return false;
  }
}

/**
 * A port nobody listens on right now, found by letting the OS pick one. Nothing reserves it: until
 * the caller binds it, another process (another jest worker's server, or any listener on port 0)
 * may take it. Servers started on it must therefore check that what answers there is theirs
 * (`listenerOwned`) and retry on a fresh port when it is not.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/**
 * Whether one of `pids` holds the TCP socket listening on `port`, from Linux's /proc: true or
 * false, or undefined where /proc cannot tell (not Linux), in which case callers trust the answer.
 */
export function listenerOwned(port: number, pids: readonly number[]): boolean | undefined {
  const inodes = new Set<string>();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    readable = true;
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ... inode; st 0A is LISTEN, the port is hex.
      const fields = line.trim().split(/\s+/);
      const localPort = Number.parseInt(fields[1]?.split(':')[1] ?? '', 16);
      if (fields[3] === '0A' && localPort === port && fields[9]) inodes.add(fields[9]);
    }
  }
  if (!readable) return undefined;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // Gone already.
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) return true;
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return false;
}

/**
 * `root` and the processes it started: its descendants, and the members of its process group
 * (which outlive an intermediate parent). Covers servers a wrapper such as npx or script(1) runs.
 */
export function processTree(root: number): number[] {
  const tree = new Set([root]);
  let stats: Array<{ pid: number; ppid: number; pgrp: number }>;
  try {
    stats = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .flatMap((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          // The fields after the parenthesised command name: state, ppid, pgrp.
          const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return [{ pid: Number(pid), ppid: Number(ppid), pgrp: Number(pgrp) }];
        } catch {
          return []; // Gone meanwhile.
        }
      });
  } catch {
    return [root];
  }
  for (const { pid, pgrp } of stats) if (pgrp === root) tree.add(pid);
  for (let grew = true; grew; ) {
    grew = false;
    for (const { pid, ppid } of stats) {
      if (tree.has(ppid) && !tree.has(pid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

/** Thrown when another process took a port between freePort() and our server's bind. */
export class PortTakenError extends Error {}

/** How many fresh ports a start tries before it gives up. */
export const PORT_ATTEMPTS = 3;

export interface PrivateServer {
  readonly port: number;
  /** redis:// URL for Redis, host:port for memcached. */
  readonly address: string;
  /** Kills the server abruptly (SIGKILL), like a crash, and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty, and waits until it answers. */
  start(): Promise<void>;
  /**
   * Freezes the process (SIGSTOP): connections stay open but nothing is answered. Resolves once
   * every thread has stopped, as signal delivery is asynchronous.
   */
  pause(): Promise<void>;
  resume(): void;
}

const running = new Set<ChildProcess>();

function killNow(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

// A worker that ends without afterAll still takes its servers down with it.
process.once('exit', () => {
  for (const child of running) killNow(child);
});

function record(child: ChildProcess, bin: string, port: number): void {
  const dir = process.env[PID_DIR_ENV];
  if (!dir || child.pid === undefined) return;
  writeFileSync(join(dir, `${child.pid}.json`), JSON.stringify({ pid: child.pid, bin, port }));
}

function forget(child: ChildProcess): void {
  running.delete(child);
  const dir = process.env[PID_DIR_ENV];
  if (dir && child.pid !== undefined) rmSync(join(dir, `${child.pid}.json`), { force: true });
}

/** Waits until every thread of `pid` is in the stopped state ("T" in /proc). */
async function waitUntilStopped(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const states = readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The state follows the parenthesised command name, which may itself contain spaces.
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    });
    if (states.every((state) => state === 'T' || state === 't')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop: ${states.join('')}`);
    await sleep(5);
  }
}

async function startPrivate(
  bin: string,
  args: (port: number) => string[],
  answers: (address: string) => Promise<boolean>,
  address: (port: number) => string,
): Promise<PrivateServer> {
  let child: ChildProcess | undefined;

  /** Starts `bin` on `port` and waits until it, and not another process there, answers. */
  const start = async (port: number) => {
    // stdout too: redis-server reports a failed bind there. Both are drained, or a chatty server
    // would block on a full pipe.
    const proc = spawn(bin, args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    running.add(proc);
    record(proc, bin, port);
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    proc.once('error', (err) => {
      spawnError = err;
    });
    const fail = (error: Error) => {
      killNow(proc);
      forget(proc);
      child = undefined;
      throw error;
    };
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await answers(address(port))) {
        // Something answers; it is ours only if our process holds the listening socket. Otherwise
        // another process took the port after freePort() and ours cannot bind it.
        if (listenerOwned(port, [proc.pid ?? -1]) !== false) return;
        fail(new PortTakenError(`${bin}: another process answers on port ${port}`));
      }
      if (spawnError) fail(spawnError);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const message = `${bin} on port ${port} exited: ${output.trim()}`;
        fail(
          /address already in use/i.test(output) ? new PortTakenError(message) : new Error(message),
        );
      }
      if (Date.now() > deadline)
        fail(new Error(`${bin} on port ${port} did not answer within 10 s`));
      await sleep(50);
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await exited;
    }
    forget(proc);
  };

  // The port is only free until someone binds it: on a clash, start again on a fresh one.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start(port);
      break;
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
  return {
    port,
    address: address(port),
    start: async () => {
      if (child) throw new Error('server is already running');
      // A restart keeps its port (clients hold the address): a clash fails with PortTakenError.
      await start(port);
    },
    stop,
    pause: async () => {
      const proc = child;
      if (!proc?.pid) throw new Error('server is not running');
      proc.kill('SIGSTOP');
      await waitUntilStopped(proc.pid);
    },
    resume: () => child?.kill('SIGCONT'),
  };
}

/** A redis-server of our own, for tests that stop it or read its command statistics. */
export function startPrivateRedis(): Promise<PrivateServer> {
  return startPrivate(
    REDIS_BIN,
    (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    (url) => redisAnswers(url, 200),
    (port) => `redis://127.0.0.1:${port}`,
  );
}

/**
 * A memcached of our own, for tests that stop it. `extraArgs` go to memcached as they are, e.g.
 * ['-m', '8'] for a small cache that another client can fill past eviction.
 */
export function startPrivateMemcached(extraArgs: readonly string[] = []): Promise<PrivateServer> {
  return startPrivate(
    MEMCACHED_BIN,
    (port) => ['-u', 'root', '-l', '127.0.0.1', '-p', String(port), '-U', '0', ...extraArgs],
    (servers) => memcachedAnswers(servers, 200),
    (port) => `127.0.0.1:${port}`,
  );
}

/** Stops every server this worker started; suites call it in afterAll. */
export async function stopPrivateServers(servers: Array<PrivateServer | undefined>): Promise<void> {
  await Promise.all(servers.map((server) => server?.stop()));
}

/** describe() for suites that need `what`; global-setup sets `envName` when it is missing. */
export function describeIf(envName: string, what: string) {
  return (name: string, fn: () => void): void => {
    if (process.env[envName] !== '1') {
      describe(name, fn);
      return;
    }
    if (process.env.CI === 'true') {
      throw new Error(`${what} is required in CI but ${envName}=1 is set`);
    }
    console.warn(`NOTICE: skipping "${name}": ${what} is not available (see global-setup).`);
    describe.skip(name, fn);
  };
}

/** describe() for suites that need Redis: the shared server and redis-server for private ones. */
export const describeRedis = describeIf(SKIP_REDIS_ENV, 'Redis');
/** describe() for suites that need memcached: the shared server and the memcached binary. */
export const describeMemcached = describeIf(SKIP_MEMCACHED_ENV, 'memcached');
