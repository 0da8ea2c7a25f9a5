/**
 * npm run bench [-- --store redis|memcached|memory --duration 10 --connections 50]
 *
 * Drives POST /verify-phone (a new number each request) and POST /verify-phone-code (numbers with no
 * pending code) with autocannon, once with valid numbers and once with mock-only +1 555 numbers,
 * and a bare Express endpoint that parses the same JSON, each server in its own process so the load
 * generator does not share its event loop. Another row puts the bare endpoint behind verifyd's
 * per-IP limit alone, on the same store: the floor every route stands on. Two reference rows do the
 * least work the contract asks of any send and check (see server.ts): the ceiling for the routes.
 * Each target gets an unmeasured warm-up first; the bare endpoint is measured first and last. Prints
 * req/s, p50, p99 and the ratio to the bare endpoint's mean. Per-IP and send limits are raised
 * through configuration.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { benchWorkers } from './workers';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'redis' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
  },
});

const RELAXED = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'warn',
  STORE: values.store,
  KEY_PREFIX: `verifyd-bench-${process.pid}:`,
  RATE_LIMIT_MAX: '10000000',
  IP_MAX_TARGETS_PER_HOUR: '1000000',
  SMS_HOURLY_BUDGET: '100000000',
  TARGET_MAX_FAILURES: '10000',
};

async function startServer(
  kind: 'app' | 'bare' | 'limited' | 'reference',
): Promise<{ url: string; child: ChildProcess }> {
  // Compiled JavaScript, as `npm start` runs it: a loader would add its own per-request costs.
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), kind], {
    env: { ...process.env, ...RELAXED },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return { url: chunk.toString().trim(), child };
}

/**
 * CPU seconds (user + system) a child has used, from /proc; undefined where there is no /proc.
 * Throughput on a small machine swings with whatever else runs, while CPU per request does not,
 * so this is the figure to compare between two versions of the code.
 */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

const WARM_UP_SECONDS = 2;

/** USER_HZ, which Linux fixes at 100 for /proc on every architecture it runs on. */
const CLOCK_TICKS = 100;

interface Figures {
  name: string;
  rps: number;
  /** Server CPU time per answered request, in microseconds. */
  cpuUs: number | undefined;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function drive(
  name: string,
  server: { url: string; child: ChildProcess },
  path: string,
  body: (n: number) => object,
): Promise<Figures> {
  let n = 0;
  const load = (duration: number) =>
    autocannon({
      url: server.url + path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      connections: Number(values.connections),
      duration,
      // n keeps counting through the warm-up, so every measured request still has its own number.
      requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify(body(n++)) }) }],
    });
  // Unmeasured first: the JIT compiles the hot paths and connections open, so no target pays
  // for its start-up in the figures (the first target used to).
  await load(WARM_UP_SECONDS);
  const cpuBefore = cpuSeconds(server.child.pid);
  const result = await load(Number(values.duration));
  const cpuAfter = cpuSeconds(server.child.pid);
  const answered = result.requests.total;
  return {
    name,
    rps: result.requests.average,
    cpuUs:
      cpuBefore === undefined || cpuAfter === undefined || answered === 0
        ? undefined
        : ((cpuAfter - cpuBefore) * 1e6) / answered,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/**
 * Two kinds of number, each request its own. +1 555 numbers are fictional: verifyd takes them only
 * while the mock SMS provider is active (with a live one, numbers must pass isValid()), and
 * libphonenumber-js tries every NANP region before giving up on their country, its slowest case. +1 212 numbers with an exchange
 * from 200 up are the shape of real traffic, valid New York numbers; nothing is sent to them, the
 * mock provider only records the message.
 */
const mockOnlyPhone = (offset: number) => (n: number) => ({
  phone: `+1555${String(offset + n).padStart(7, '0')}`,
});
const validPhone = (offset: number) => (n: number) => ({
  phone: `+1212${2_000_000 + ((offset + n) % 8_000_000)}`,
});
const withWrongCode = (phone: (n: number) => { phone: string }) => (n: number) => ({
  ...phone(n),
  code: '123456',
});

/**
 * A run leaves hundreds of thousands of keys behind (codes, cooldowns, counters), some with an
 * hour to live; they are this run's alone, under its own prefix, so the CLI's `clear` removes them
 * and nothing else. Memcached cannot list keys: there they expire on their own.
 */
async function removeBenchKeys(): Promise<void> {
  const cli = spawn(
    process.execPath,
    [path.join(__dirname, '..', 'scripts', 'cli.js'), 'clear', '--yes'],
    {
      env: { ...process.env, ...RELAXED },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  await once(cli, 'exit');
}

async function main(): Promise<void> {
  const bare = await startServer('bare');
  const limited = await startServer('limited');
  const referenceApp = await startServer('reference');
  const app = await startServer('app');
  try {
    const bareFirst = await drive(
      'bare express (JSON parse), first',
      bare,
      '/echo',
      mockOnlyPhone(0),
    );
    const floor = await drive(
      'bare express + per-IP limit only',
      limited,
      '/echo',
      mockOnlyPhone(0),
    );
    // Sends and checks use separate number ranges, so no checked number has a pending code.
    const rows = [
      bareFirst,
      floor,
      await drive(
        'reference send (least work), valid numbers',
        referenceApp,
        '/verify-phone',
        validPhone(0),
      ),
      await drive(
        'reference check (least work), valid numbers',
        referenceApp,
        '/verify-phone-code',
        withWrongCode(validPhone(4_000_000)),
      ),
      await drive('POST /verify-phone, valid numbers', app, '/verify-phone', validPhone(0)),
      await drive(
        'POST /verify-phone-code, valid numbers',
        app,
        '/verify-phone-code',
        withWrongCode(validPhone(4_000_000)),
      ),
      await drive(
        'POST /verify-phone, +1 555 numbers',
        app,
        '/verify-phone',
        mockOnlyPhone(1_000_000),
      ),
      await drive(
        'POST /verify-phone-code, +1 555 numbers',
        app,
        '/verify-phone-code',
        withWrongCode(mockOnlyPhone(5_000_000)),
      ),
    ];
    // Measured again at the end, and ratios taken to the mean of both: a shared machine that
    // speeds up or slows down during the run then favours neither the first rows nor the last.
    rows.push(await drive('bare express (JSON parse), last', bare, '/echo', mockOnlyPhone(0)));
    const baselineRps = (bareFirst.rps + (rows.at(-1) as Figures).rps) / 2;
    console.log(
      `\nverifyd bench — store=${values.store}, ${values.connections} connections, ${values.duration}s each`,
    );
    console.log(
      `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}\n`,
    );
    console.log(
      '| target | req/s | p50 ms | p99 ms | ratio to bare | server CPU µs/req | non-2xx | errors |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const f of rows) {
      const ratio = (f.rps / baselineRps).toFixed(2);
      const cpu = f.cpuUs === undefined ? 'n/a' : Math.round(f.cpuUs);
      console.log(
        `| ${f.name} | ${Math.round(f.rps)} | ${f.p50} | ${f.p99} | ${ratio} | ${cpu} | ${f.non2xx} | ${f.errors} |`,
      );
    }
    console.log(
      '\n(/verify-phone-code answers 400 code_expired by design here: those numbers have no pending code.)',
    );
    console.log(
      '(The per-IP limit row is the bare endpoint behind express-rate-limit on the same store, which every verifyd route passes.)',
    );
    console.log(
      '(The reference rows do only what the contract requires of any implementation: the per-IP limit, E.164 parsing, the cooldown and the code HMAC in one store call, or one counted attempt. No recipient limits, lock, headers or log: a ceiling, not a service.)',
    );
    console.log(
      '(Ratios are to the mean req/s of the two bare express rows, measured first and last.)',
    );
    console.log(
      '(Valid numbers are the shape of live traffic; +1 555 numbers are accepted by the mock provider only, and parse slowest.)',
    );
    await benchWorkers({
      store: values.store ?? 'redis',
      duration: Number(values.duration),
      connections: Number(values.connections),
      env: RELAXED,
    });
  } finally {
    bare.child.kill();
    limited.child.kill();
    referenceApp.child.kill();
    app.child.kill();
    if (values.store !== 'memory') await removeBenchKeys();
  }
}

void main();
