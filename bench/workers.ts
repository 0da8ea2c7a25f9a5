/**
 * The WORKERS rows of `npm run bench`: the built server started as `npm start` starts it (bin/),
 * once with WORKERS=1 and once with WORKERS=2, driven with the same sends and checks as the main
 * table. Server CPU counts the primary and every worker. With the memory store there are no such
 * rows: it is refused with more than one worker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';

export interface WorkersBenchOptions {
  store: string;
  duration: number;
  connections: number;
  /** The main table's settings (raised limits, key prefix), so both tables measure the same. */
  env: Record<string, string | undefined>;
}

const BIN = path.join(__dirname, '..', '..', 'bin', 'verifyd.js');
const WARM_UP_SECONDS = 2;
const CLOCK_TICKS = 100;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds of `pid` and of its children (the workers), from /proc. */
function treeCpuSeconds(pid: number): number | undefined {
  const stat = (id: string) => {
    try {
      const text = readFileSync(`/proc/${id}/stat`, 'utf8');
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  };
  const own = stat(String(pid));
  if (!own) return undefined;
  let ticks = Number(own[11]) + Number(own[12]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = stat(entry);
    // Field 4 of stat is the parent's pid, the second field after the command name.
    if (fields && Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

async function waitForHealth(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`verifyd exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('verifyd did not become ready within 20 s');
}

const validPhone = (offset: number) => (n: number) =>
  `+1212${2_000_000 + ((offset + n) % 8_000_000)}`;

export async function benchWorkers(options: WorkersBenchOptions): Promise<void> {
  if (options.store === 'memory') {
    console.log(
      '\n(No WORKERS rows: the memory store lives in one process; run with --store redis.)',
    );
    return;
  }
  const rows: string[] = [];
  for (const workers of [1, 2]) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [BIN], {
      env: {
        ...process.env,
        ...options.env,
        WORKERS: String(workers),
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await waitForHealth(url, child);
      const targets = [
        {
          name: 'POST /verify-phone',
          path: '/verify-phone',
          body: (n: number) => ({ phone: validPhone(workers * 1_000_000)(n) }),
        },
        {
          name: 'POST /verify-phone-code',
          path: '/verify-phone-code',
          body: (n: number) => ({
            phone: validPhone(4_000_000 + workers * 1_000_000)(n),
            code: '123456',
          }),
        },
      ];
      for (const target of targets) {
        let n = 0;
        const load = (duration: number) =>
          autocannon({
            url: url + target.path,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            connections: options.connections,
            duration,
            requests: [
              { setupRequest: (req) => ({ ...req, body: JSON.stringify(target.body(n++)) }) },
            ],
          });
        await load(WARM_UP_SECONDS);
        const before = treeCpuSeconds(child.pid as number);
        const result = await load(options.duration);
        const after = treeCpuSeconds(child.pid as number);
        const cpu =
          before === undefined || after === undefined || result.requests.total === 0
            ? 'n/a'
            : Math.round(((after - before) * 1e6) / result.requests.total);
        rows.push(
          `| ${target.name} | ${workers} | ${Math.round(result.requests.average)} | ${result.latency.p50} | ${result.latency.p99} | ${cpu} | ${result.non2xx} | ${result.errors} |`,
        );
      }
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  }
  console.log(`\nWORKERS (the built server as npm start runs it, store=${options.store})\n`);
  console.log(
    '| target | WORKERS | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx | errors |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  console.log(
    '\n(The load generator runs on the same machine and takes a core of its own: on a 2-core machine a second worker has no core to itself.)',
  );
}
