/**
 * npm run bench [-- --duration 4 --rounds 3 --connections 50 --cluster --store redis|memcached|memory
 *                  --phones valid|fictional --memory-sends 2000 --count-requests 100
 *                  --baseline <another verifyd checkout, built> --baseline-label <its name>]
 *
 * Drives three apps with the same requests, each server in its own process, over HTTP only:
 * verifyd, the reference app (the least work the contract asks of any send and check) and the naive
 * seed pattern (SETEX on a send, GET and DEL on a check), in four scenarios: a send to a new number,
 * and a check with a wrong code, with the right code (read back from each app's /dev/outbox) and
 * for a number with no pending code. A bare Express endpoint that parses the same JSON, alone and
 * behind verifyd's per-IP limit, is the floor. Every target runs once per round, the rounds
 * interleaved, and each figure is the median over the rounds, so a machine that speeds up or slows
 * down during the run favours no row.
 *
 * Redis is a private redis-server the bench starts on a free loopback port (or, with --cluster, a
 * private Redis Cluster), so its statistics are this run's alone. Per request it prints the app's
 * CPU time, Redis's command time (INFO commandstats) and process CPU time (INFO cpu), the round
 * trips (reads Redis processed) and commands (SLOWLOG with a threshold of 0) the app sent, in a
 * short pass of sequential requests, the ratio of node + Redis CPU to the seed's, and the bytes
 * Redis holds per pending verification.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { type PrivateCluster, startPrivateCluster } from '../test/support/redis-cluster';
import { type PrivateServer, startPrivateRedis } from '../test/support/servers';
import {
  BENCH_CLIENT_NAME,
  type CommandStats,
  type Counts,
  commandsPerRequest,
  countTotal,
  type NodeSnapshot,
  RedisNode,
  type RequestCommands,
  roundTripsPerRequest,
  statsDelta,
  sumCounts,
  topLevelShare,
} from './redis-stats';
import { benchWorkers } from './workers';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'redis' },
    cluster: { type: 'boolean', default: false },
    duration: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    phones: { type: 'string', default: 'valid' },
    'memory-sends': { type: 'string', default: '2000' },
    'count-requests': { type: 'string', default: '100' },
    baseline: { type: 'string' },
    'baseline-label': { type: 'string', default: 'baseline' },
  },
});

const DURATION = Number(values.duration);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
const MEMORY_SENDS = Number(values['memory-sends']);
const COUNT_REQUESTS = Number(values['count-requests']);
const STORE = values.store ?? 'redis';
const CLUSTER = values.cluster === true;
if (CLUSTER && STORE !== 'redis') throw new Error('--cluster needs --store redis');
if (!['valid', 'fictional'].includes(values.phones ?? ''))
  throw new Error('--phones valid|fictional');

/** Unmeasured load before the first round, and before each measured send. */
const FIRST_WARM_UP_SECONDS = 2;
const WARM_UP_SECONDS = 1;
/** Of the numbers a check scenario goes through, the share checked unmeasured first. */
const CHECK_WARM_UP_SHARE = 0.2;

const RELAXED = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'warn',
  STORE,
  // Redis is the bench's own, so its keys carry the default prefix, as a deployment's do; any
  // other store may be shared, so its keys get a prefix of their own.
  ...(STORE === 'redis' ? {} : { KEY_PREFIX: `verifyd-bench-${process.pid}:` }),
  RATE_LIMIT_MAX: '10000000',
  IP_MAX_TARGETS_PER_HOUR: '1000000',
  SMS_HOURLY_BUDGET: '100000000',
  TARGET_MAX_FAILURES: '10000',
};

type Kind = 'bare' | 'limited' | 'reference' | 'record' | 'seed' | 'app' | 'baseline';

/**
 * Another checkout of verifyd, built (`npm run build` and `npx tsc -p tsconfig.bench.json` there),
 * whose own bench server runs as one more row in the same interleaved rounds: the one fair way to
 * compare two versions of the code on a machine whose figures drift between runs.
 */
const BASELINE = values.baseline === undefined ? undefined : path.resolve(values.baseline);
type Scenario = 'echo' | 'send' | 'wrong' | 'right' | 'none';

const APP_NAMES: Record<Kind, string> = {
  bare: 'bare express (JSON parse)',
  limited: 'bare express + per-IP limit only',
  reference: 'reference (least work)',
  record: 'record floor (record-study layout)',
  seed: 'seed (SETEX, GET + DEL)',
  app: 'verifyd',
  baseline: `verifyd, ${values['baseline-label']}`,
};
const SCENARIO_NAMES: Record<Scenario, string> = {
  echo: 'JSON echo',
  send: 'send, new number',
  wrong: 'check, wrong code',
  right: 'check, right code',
  none: 'check, no pending code',
};
/** The record floor's send script spans three slots: single Redis only. */
const CODE_APPS: Kind[] = [
  'app',
  ...(BASELINE ? (['baseline'] as const) : []),
  'reference',
  ...(STORE === 'redis' && !CLUSTER ? (['record'] as const) : []),
  'seed',
];
const CHECKS: Scenario[] = ['wrong', 'right', 'none'];

interface Server {
  kind: Kind;
  url: string;
  child: ChildProcess;
  /** Whether its requests reach the Redis the bench watches. */
  onRedis: boolean;
}

async function startServer(kind: Kind, env: Record<string, string>): Promise<Server> {
  // Compiled JavaScript, as `npm start` runs it: a loader would add its own per-request costs.
  const script =
    kind === 'baseline' && BASELINE
      ? path.join(BASELINE, 'dist', 'bench', 'server.js')
      : path.join(__dirname, 'server.js');
  const child = spawn(process.execPath, [script, kind === 'baseline' ? 'app' : kind], {
    env: { ...process.env, ...RELAXED, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // A server that cannot start (a broken build, a store it cannot reach) exits before its URL.
  const [chunk] = (await Promise.race([
    once(child.stdout!, 'data'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`the ${kind} server exited (${code}) before it listened`);
    }),
  ])) as [Buffer];
  return {
    kind,
    url: chunk.toString().trim(),
    child,
    onRedis: kind === 'seed' || (kind !== 'bare' && STORE === 'redis'),
  };
}

/** USER_HZ, which Linux fixes at 100 for /proc on every architecture it runs on. */
const CLOCK_TICKS = 100;

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

// ---------------------------------------------------------------------------------------------
// Numbers and codes

let nextNumber = 0;
/**
 * A number no request of this run has used. +1 212 numbers with an exchange from 200 up are
 * valid New York numbers, the shape of live traffic (nothing is sent: the mock provider only
 * records the message); +1 555 numbers are fictional, taken only while the mock SMS provider is
 * active, and libphonenumber-js parses them slowest, trying every NANP region.
 */
function freshPhone(): string {
  const n = nextNumber++;
  if (values.phones === 'fictional') return `+1555${String(n).padStart(7, '0')}`;
  if (n >= 8_000_000) throw new Error('out of fresh +1 212 numbers');
  return `+1212${2_000_000 + n}`;
}

const freshPhones = (count: number) => Array.from({ length: count }, freshPhone);

type Body = Record<string, string>;
interface Pending {
  phone: string;
  code: string;
}

/** Every code the app's mock provider sent since the last call, read over HTTP; then empties it. */
async function takeCodes(server: Server): Promise<Pending[]> {
  const answer = await fetch(`${server.url}/dev/outbox`);
  if (!answer.ok) throw new Error(`${server.kind}: GET /dev/outbox answered ${answer.status}`);
  const { messages } = (await answer.json()) as { messages: Array<{ to: string; body: string }> };
  await fetch(`${server.url}/dev/outbox`, { method: 'DELETE' });
  const latest = new Map<string, string>();
  for (const message of messages) {
    const code = /\d{4,10}/.exec(message.body)?.[0];
    if (code) latest.set(message.to, code);
  }
  return [...latest].map(([phone, code]) => ({ phone, code }));
}

/** The right code with its last digit changed: wrong for certain. */
const wrongCode = (code: string) => code.slice(0, -1) + ((Number(code.at(-1)) + 1) % 10);

const CHECK_BODIES: Record<'wrong' | 'right', (p: Pending) => Body> = {
  wrong: (p) => ({ phone: p.phone, code: wrongCode(p.code) }),
  right: (p) => ({ phone: p.phone, code: p.code }),
};
const noPendingBody = (phone: string): Body => ({ phone, code: '123456' });
const PATHS: Record<Scenario, string> = {
  echo: '/echo',
  send: '/verify-phone',
  wrong: '/verify-phone-code',
  right: '/verify-phone-code',
  none: '/verify-phone-code',
};

// ---------------------------------------------------------------------------------------------
// Load and measurement

/** Until `duration` seconds have passed, each request with its own body; or exactly these bodies. */
type Load = { seconds: number; body: () => Body } | { bodies: Body[] };

async function drive(server: Server, scenario: Scenario, load: Load) {
  const bodies = 'bodies' in load ? load.bodies : undefined;
  let i = 0;
  const next = bodies ? () => bodies[i++] ?? {} : (load as { body: () => Body }).body;
  return autocannon({
    url: server.url + PATHS[scenario],
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections: bodies ? Math.max(1, Math.min(CONNECTIONS, bodies.length)) : CONNECTIONS,
    ...(bodies ? { amount: bodies.length } : { duration: (load as { seconds: number }).seconds }),
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify(next()) }) }],
  });
}

interface Sample {
  answered: number;
  rps: number;
  p50: number;
  p99: number;
  statuses: Counts;
  errors: number;
  /** Server process CPU seconds over the measured load. */
  nodeCpu: number | undefined;
  /** Summed over the nodes the bench watches; undefined for a target that does not use Redis. */
  redis: { commands: CommandStats; cpuSeconds: number } | undefined;
}

let watched: RedisNode[] = [];
const snapshotAll = (): Promise<NodeSnapshot[]> => Promise.all(watched.map((n) => n.snapshot()));

async function measure(
  server: Server,
  scenario: Scenario,
  load: Load,
): Promise<Sample | undefined> {
  if ('bodies' in load && load.bodies.length === 0) return undefined;
  const cpuBefore = cpuSeconds(server.child.pid);
  const redisBefore = await snapshotAll();
  const result = await drive(server, scenario, load);
  const redisAfter = await snapshotAll();
  const cpuAfter = cpuSeconds(server.child.pid);
  const statuses: Counts = {};
  for (const [status, stat] of Object.entries(result.statusCodeStats ?? {}))
    statuses[status] = Number(stat.count ?? 0);
  return {
    answered: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statuses,
    errors: result.errors,
    nodeCpu: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
    redis: watched.length > 0 ? statsDelta(redisBefore, redisAfter) : undefined,
  };
}

/** A check scenario over `bodies`: the first share unmeasured, the rest measured. */
async function measureChecks(server: Server, scenario: Scenario, bodies: Body[]) {
  const split = Math.floor(bodies.length * CHECK_WARM_UP_SHARE);
  if (split > 0) await drive(server, scenario, { bodies: bodies.slice(0, split) });
  return measure(server, scenario, { bodies: bodies.slice(split) });
}

/**
 * One round of an app that sends codes: sends to new numbers for the set duration, then every
 * code those sends delivered checked once with a wrong code and once with the right one (a typo,
 * then the right code, as people do), then as many checks of numbers that never got a code. The
 * checks are bounded by the codes, not by time, so no check meets a code another check used up.
 */
async function codeRound(
  server: Server,
  warmUpSeconds: number,
  seconds: number,
): Promise<Partial<Record<Scenario, Sample>>> {
  const body = () => ({ phone: freshPhone() });
  await drive(server, 'send', { seconds: warmUpSeconds, body });
  const send = await measure(server, 'send', { seconds, body });
  const pending = await takeCodes(server);
  const wrong = await measureChecks(server, 'wrong', pending.map(CHECK_BODIES.wrong));
  const right = await measureChecks(server, 'right', pending.map(CHECK_BODIES.right));
  const none = await measureChecks(server, 'none', freshPhones(pending.length).map(noPendingBody));
  return { send, wrong, right, none };
}

async function echoRound(server: Server, warmUpSeconds: number, seconds: number) {
  const body = () => ({ phone: freshPhone() });
  await drive(server, 'echo', { seconds: warmUpSeconds, body });
  return measure(server, 'echo', { seconds, body });
}

// ---------------------------------------------------------------------------------------------
// Counting pass: which commands a request sends, and to which node

interface CommandCount {
  requests: number;
  topLevel: Counts;
  inScripts: Counts;
  /** Per node the bench watches (each primary of a cluster), summed over requests. */
  commandsPerNode: number[];
  roundTripsPerNode: number[];
  /** Summed over requests: round trips to every node, as if none ran in parallel. */
  roundTrips: number;
  /** Summed over requests: the most round trips to any one node. */
  busiestRoundTrips: number;
  /** Summed over requests: how many nodes the request sent a command to. */
  nodesTouched: number;
  transactions: boolean;
}

let replicaClients: Array<Set<string>> = [];

async function post(url: string, body: Body): Promise<void> {
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await answer.arrayBuffer();
}

/**
 * Sends `bodies` one at a time, with a marker to every node after each, while every node logs
 * every command; then splits each node's log at the markers. One request at a time, so every
 * command between two markers is that request's.
 */
async function countCommands(
  server: Server,
  scenario: Scenario,
  bodies: Body[],
): Promise<CommandCount> {
  // reads[node][i]: the reads node had processed at marker i.
  const reads: number[][] = watched.map(() => []);
  const markAll = async () => {
    const counts = await Promise.all(watched.map((node) => node.mark()));
    for (const [i, n] of counts.entries()) reads[i]?.push(n);
  };
  await Promise.all(watched.map((node) => node.startLogging()));
  await markAll();
  for (const body of bodies) {
    await post(server.url + PATHS[scenario], body);
    await markAll();
  }
  const logs = await Promise.all(watched.map((node) => node.stopLogging()));
  const perNode: RequestCommands[][] = logs.map((log, i) =>
    commandsPerRequest(log, BENCH_CLIENT_NAME, replicaClients[i]),
  );
  const tripsPerNode = perNode.map((requests, i) => roundTripsPerRequest(reads[i] ?? [], requests));
  const count: CommandCount = {
    requests: bodies.length,
    topLevel: {},
    inScripts: {},
    commandsPerNode: perNode.map((requests) =>
      countTotal(sumCounts(requests.map((r) => r.topLevel))),
    ),
    roundTripsPerNode: tripsPerNode.map((trips) => trips.reduce((a, b) => a + b, 0)),
    roundTrips: 0,
    busiestRoundTrips: 0,
    nodesTouched: 0,
    transactions: false,
  };
  for (let r = 0; r < bodies.length; r++) {
    const onNodes = perNode.map((requests) => requests[r]);
    count.topLevel = sumCounts([count.topLevel, ...onNodes.map((c) => c?.topLevel ?? {})]);
    count.inScripts = sumCounts([count.inScripts, ...onNodes.map((c) => c?.inScripts ?? {})]);
    const trips = tripsPerNode.map((t) => t[r] ?? 0);
    count.roundTrips += trips.reduce((a, b) => a + b, 0);
    count.busiestRoundTrips += Math.max(0, ...trips);
    count.nodesTouched += onNodes.filter((c) => c && countTotal(c.topLevel) > 0).length;
  }
  count.transactions = (count.topLevel.multi ?? 0) > 0;
  return count;
}

/** The counting pass of one app: K sends, K checks of each kind on the codes they delivered. */
async function countApp(server: Server): Promise<Partial<Record<Scenario, CommandCount>>> {
  const send = await countCommands(
    server,
    'send',
    freshPhones(COUNT_REQUESTS).map((phone) => ({ phone })),
  );
  const pending = await takeCodes(server);
  return {
    send,
    wrong: await countCommands(server, 'wrong', pending.map(CHECK_BODIES.wrong)),
    right: await countCommands(server, 'right', pending.map(CHECK_BODIES.right)),
    none: await countCommands(server, 'none', freshPhones(COUNT_REQUESTS).map(noPendingBody)),
  };
}

// ---------------------------------------------------------------------------------------------
// Memory per pending verification

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until Redis's memory stops moving: clients' buffers shrink a few seconds after a burst,
 * and an incremental rehash finishes while the server is idle.
 */
async function settledSnapshots(): Promise<NodeSnapshot[]> {
  await sleep(2500);
  let last = await snapshotAll();
  for (let tries = 0; tries < 30; tries++) {
    await sleep(500);
    const now = await snapshotAll();
    const moved = now.reduce(
      (sum, s, i) => sum + Math.abs(s.dataBytes - (last[i]?.dataBytes ?? 0)),
      0,
    );
    last = now;
    if (moved < 1024) break;
  }
  return last;
}

interface MemoryFigures {
  sends: number;
  /** used_memory without buffers, after − before, per send. */
  dataBytes: number;
  /** MEMORY USAGE of every key, summed, per send. */
  keyBytes: number;
  keys: number;
}

/**
 * On an emptied server (the bench's own), N sends to N new numbers, then what Redis holds more.
 * It includes every key a send leaves behind (code, cooldown, counters, markers) and the hash
 * table slots they take; the slots grow in steps (a table doubles), so the figure is what N
 * verifications cost on a fresh server, not the last one's cost on a full one.
 */
async function memoryPerVerification(server: Server): Promise<MemoryFigures> {
  await Promise.all(watched.map((node) => node.flushAll()));
  const before = await settledSnapshots();
  await drive(server, 'send', { bodies: freshPhones(MEMORY_SENDS).map((phone) => ({ phone })) });
  const sent = (await takeCodes(server)).length;
  const after = await settledSnapshots();
  const keys = await Promise.all(watched.map((node) => node.keyBytes()));
  const delta = after.reduce((sum, s, i) => sum + s.dataBytes - (before[i]?.dataBytes ?? 0), 0);
  return {
    sends: sent,
    dataBytes: delta / sent,
    keyBytes: keys.reduce((sum, k) => sum + k.bytes, 0) / sent,
    keys: keys.reduce((sum, k) => sum + k.keys, 0) / sent,
  };
}

/**
 * What one pending verification costs at the least with a key of its own: a string with a TTL
 * holding the bytes any layout must keep (a 24-character binding, a 22-character HMAC, attempt
 * counts: 50 bytes), under a key as long as verifyd's. Single Redis only: the figure is Redis's
 * per-key overhead, the same on every node.
 */
async function oneKeyFloor(): Promise<MemoryFigures | undefined> {
  const node = watched[0];
  if (!node || watched.length > 1) return undefined;
  await node.flushAll();
  const before = await settledSnapshots();
  const id = (i: number) => String(i).padStart(22, 'x');
  await node.writeKeys(MEMORY_SENDS, 50, (i) => `verifyd:code:signup:{${id(i)}}`);
  const after = await settledSnapshots();
  const keys = await node.keyBytes();
  return {
    sends: MEMORY_SENDS,
    dataBytes: ((after[0]?.dataBytes ?? 0) - (before[0]?.dataBytes ?? 0)) / MEMORY_SENDS,
    keyBytes: keys.bytes / MEMORY_SENDS,
    keys: keys.keys / MEMORY_SENDS,
  };
}

// ---------------------------------------------------------------------------------------------
// Figures

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const definedOnly = (xs: Array<number | undefined>) =>
  xs.filter((x): x is number => x !== undefined && Number.isFinite(x));

function medianOf(xs: Array<number | undefined>): number | undefined {
  const defined = definedOnly(xs);
  return defined.length ? median(defined) : undefined;
}

function fmt(x: number | undefined, digits = 0): string {
  return x === undefined ? 'n/a' : x.toFixed(digits);
}

function withRange(xs: Array<number | undefined>, digits = 0): string {
  const defined = definedOnly(xs);
  if (!defined.length) return 'n/a';
  const m = fmt(median(defined), digits);
  if (defined.length < 2) return m;
  return `${m} (${fmt(Math.min(...defined), digits)}–${fmt(Math.max(...defined), digits)})`;
}

const perRequestUs = (seconds: number | undefined, s: Sample | undefined) =>
  seconds === undefined || !s?.answered ? undefined : (seconds * 1e6) / s.answered;

type RedisUs = (
  server: Server,
  s: Sample | undefined,
  count: CommandCount | undefined,
) => number | undefined;

function nodeUs(s: Sample | undefined) {
  return perRequestUs(s?.nodeCpu, s);
}
function redisProcessUs(server: Server, s: Sample | undefined) {
  return server.onRedis ? perRequestUs(s?.redis?.cpuSeconds, s) : undefined;
}
/** commandstats time at the top level (scripts with what they ran), per request. */
function redisCommandUs(server: Server, s: Sample | undefined, count: CommandCount | undefined) {
  if (!server.onRedis || !s?.redis || !s.answered) return undefined;
  let usec = 0;
  for (const [name, stat] of Object.entries(s.redis.commands))
    usec += stat.usec * topLevelShare(name, count?.topLevel ?? {}, count?.inScripts ?? {});
  return usec / s.answered;
}

/** Round trips per request; on a cluster, with the busiest primary's in brackets. */
function roundTripsText(c: CommandCount): string {
  const all = (c.roundTrips / c.requests).toFixed(2);
  return watched.length > 1 ? `${all} (${(c.busiestRoundTrips / c.requests).toFixed(2)})` : all;
}

function describeCounts(counts: Counts, requests: number): string {
  const parts = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${(n / requests).toFixed(2)}`);
  return parts.length ? parts.join(', ') : '—';
}

function statusesText(samples: Array<Sample | undefined>): string {
  const total = sumCounts(samples.map((s) => s?.statuses ?? {}));
  return (
    Object.entries(total)
      .map(([status, n]) => `${status}×${n}`)
      .join(' ') || '—'
  );
}

async function main(): Promise<void> {
  // The stores the apps use: a private Redis (or cluster) the bench alone writes to.
  let redis: PrivateServer | undefined;
  let cluster: PrivateCluster | undefined;
  const servers: Server[] = [];
  try {
    const env: Record<string, string> = {};
    let addresses: string[];
    if (CLUSTER) {
      // A long node timeout: a primary starved of CPU by the load must not be failed over.
      cluster = await startPrivateCluster(15_000);
      env.REDIS_CLUSTER_NODES = cluster.seeds;
      addresses = cluster.nodes.map((node) => node.address);
    } else {
      redis = await startPrivateRedis();
      env.REDIS_URL = redis.address;
      addresses = [redis.address];
    }
    const nodes = await Promise.all(addresses.map((address) => RedisNode.open(address)));
    const primary = await Promise.all(nodes.map((node) => node.isPrimary()));
    watched = nodes.filter((_, i) => primary[i]);
    await Promise.all(nodes.filter((_, i) => !primary[i]).map((node) => node.close()));
    replicaClients = await Promise.all(watched.map((node) => node.replicaClients()));

    const byKind = {} as Record<Kind, Server>;
    for (const kind of ['bare', 'limited', ...CODE_APPS] as Kind[]) {
      const server = await startServer(kind, env);
      servers.push(server);
      byKind[kind] = server;
    }
    const codeApps = CODE_APPS.map((kind) => byKind[kind]);
    const started = Date.now();
    // On stderr, so that stdout holds the figures alone.
    const progress = (what: string) =>
      console.error(`${Math.round((Date.now() - started) / 1000)} s: ${what}`);

    // Warm-up: the JIT compiles the hot paths, connections open and scripts load, so no target
    // pays for its start-up in the figures.
    for (const kind of ['bare', 'limited'] as Kind[])
      await echoRound(byKind[kind], FIRST_WARM_UP_SECONDS, 0.5);
    for (const server of codeApps) await codeRound(server, FIRST_WARM_UP_SECONDS, 1);
    progress('warmed up');

    const counts = new Map<Kind, Partial<Record<Scenario, CommandCount>>>();
    if (byKind.limited.onRedis) {
      const bodies = freshPhones(COUNT_REQUESTS).map((phone) => ({ phone }));
      counts.set('limited', { echo: await countCommands(byKind.limited, 'echo', bodies) });
    }
    for (const server of codeApps)
      if (server.onRedis) counts.set(server.kind, await countApp(server));
    progress('commands counted');

    const memory = new Map<Kind, MemoryFigures>();
    for (const server of codeApps)
      if (server.onRedis) memory.set(server.kind, await memoryPerVerification(server));
    const floor = STORE === 'redis' ? await oneKeyFloor() : undefined;
    progress('memory measured');

    // The measured rounds, interleaved: every target once per round, the bare endpoint first and
    // last, so that ratios to it cancel a drift over the round.
    type Round = Map<string, Sample | undefined>;
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round: Round = new Map();
      round.set('bare/first', await echoRound(byKind.bare, WARM_UP_SECONDS, DURATION));
      round.set('limited/echo', await echoRound(byKind.limited, WARM_UP_SECONDS, DURATION));
      for (const server of codeApps) {
        const samples = await codeRound(server, WARM_UP_SECONDS, DURATION);
        for (const [scenario, sample] of Object.entries(samples))
          round.set(`${server.kind}/${scenario}`, sample);
      }
      round.set('bare/last', await echoRound(byKind.bare, WARM_UP_SECONDS, DURATION));
      rounds.push(round);
      console.error(
        `round ${r + 1} of ${ROUNDS} done after ${Math.round((Date.now() - started) / 1000)} s`,
      );
    }

    report(byKind, rounds, counts, memory, floor, (Date.now() - started) / 1000);
    await benchWorkers({
      store: values.store ?? 'redis',
      duration: Number(values.duration),
      connections: Number(values.connections),
      // The same private Redis (or cluster) as the tables above.
      env: { ...RELAXED, ...env },
    });
  } finally {
    for (const server of servers) server.child.kill();
    await Promise.all(watched.map((node) => node.close().catch(() => undefined)));
    await redis?.stop();
    await cluster?.stop();
  }
}

interface Row {
  key: string;
  server: Server;
  scenario: Scenario;
  label: string;
}

function report(
  byKind: Record<Kind, Server>,
  rounds: Array<Map<string, Sample | undefined>>,
  counts: Map<Kind, Partial<Record<Scenario, CommandCount>>>,
  memory: Map<Kind, MemoryFigures>,
  floor: MemoryFigures | undefined,
  seconds: number,
): void {
  const rows: Row[] = [
    { key: 'bare/first', server: byKind.bare, scenario: 'echo', label: `${APP_NAMES.bare}, first` },
    { key: 'limited/echo', server: byKind.limited, scenario: 'echo', label: APP_NAMES.limited },
  ];
  for (const scenario of ['send', ...CHECKS] as Scenario[])
    for (const kind of CODE_APPS)
      rows.push({
        key: `${kind}/${scenario}`,
        server: byKind[kind],
        scenario,
        label: `${SCENARIO_NAMES[scenario]}: ${APP_NAMES[kind]}`,
      });
  rows.push({
    key: 'bare/last',
    server: byKind.bare,
    scenario: 'echo',
    label: `${APP_NAMES.bare}, last`,
  });

  const samples = (key: string) => rounds.map((round) => round.get(key));
  const bareRps = rounds.map((round) => {
    const first = round.get('bare/first')?.rps;
    const last = round.get('bare/last')?.rps;
    return first !== undefined && last !== undefined ? (first + last) / 2 : undefined;
  });
  const countOf = (row: Row) => counts.get(row.server.kind)?.[row.scenario];
  const totalUs = (row: Row, s: Sample | undefined, redisUs: RedisUs) => {
    const node = nodeUs(s);
    // Without Redis there is no Redis figure to add, and the seed's would not compare.
    const redisPart = redisUs(row.server, s, countOf(row));
    return node === undefined || redisPart === undefined ? undefined : node + redisPart;
  };
  /** Per round, this row's node + Redis CPU over the seed's in the same scenario and round. */
  const seedRatio = (row: Row, redisUs: RedisUs) => {
    if (row.scenario === 'echo') return [];
    const seedRow = rows.find((r) => r.key === `seed/${row.scenario}`)!;
    return rounds.map((round) => {
      const mine = totalUs(row, round.get(row.key), redisUs);
      const seed = totalUs(seedRow, round.get(seedRow.key), redisUs);
      return mine === undefined || seed === undefined || seed === 0 ? undefined : mine / seed;
    });
  };
  const cmdUs: RedisUs = redisCommandUs;
  const procUs: RedisUs = (server, s) => redisProcessUs(server, s);

  const cpu = os.cpus();
  console.log(
    `\nverifyd bench — store=${STORE}${CLUSTER ? ` on a private Redis Cluster (${watched.length} primaries, each with a replica)` : STORE === 'redis' ? ' on a private redis-server' : ''}, ` +
      `${CONNECTIONS} connections, ${DURATION} s per send and echo, ${ROUNDS} interleaved rounds, ${values.phones} numbers; ${Math.round(seconds)} s in all`,
  );
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`,
  );

  console.log('Throughput (median over rounds; answers summed over rounds)\n');
  console.log('| target | req/s | p50 ms | p99 ms | ratio to bare | answers | errors |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const ss = samples(row.key);
    const ratio = medianOf(ss.map((s, i) => (s && bareRps[i] ? s.rps / bareRps[i] : undefined)));
    const errors = ss.reduce((sum, s) => sum + (s?.errors ?? 0), 0);
    console.log(
      `| ${row.label} | ${fmt(medianOf(ss.map((s) => s?.rps)))} | ${fmt(medianOf(ss.map((s) => s?.p50)))} | ${fmt(medianOf(ss.map((s) => s?.p99)))} | ${fmt(ratio, 2)} | ${statusesText(ss)} | ${errors} |`,
    );
  }

  console.log('\nCost per request (median over rounds, range in brackets)\n');
  console.log(
    '| target | node CPU µs | Redis command µs | Redis process µs | Redis round trips | node + Redis (process) × seed | node + Redis (command) × seed |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const ss = samples(row.key);
    const count = countOf(row);
    const sent = count ? roundTripsText(count) : row.server.onRedis ? '?' : '—';
    console.log(
      `| ${row.label} | ${withRange(ss.map(nodeUs))} | ${withRange(
        ss.map((s) => cmdUs(row.server, s, count)),
        1,
      )} | ${withRange(
        ss.map((s) => procUs(row.server, s, count)),
        1,
      )} | ${sent} | ${withRange(seedRatio(row, procUs), 2)} | ${withRange(seedRatio(row, cmdUs), 2)} |`,
    );
  }

  const counted = rows.filter((row) => countOf(row));
  if (counted.length) {
    console.log(
      `\nRedis round trips and commands per request (${COUNT_REQUESTS} requests one at a time, every command logged)\n`,
    );
    const shards = watched.length > 1;
    console.log(
      `| target | round trips | commands sent | run inside its scripts |${shards ? ' round trips per shard | commands per shard | shards touched |' : ''}`,
    );
    console.log(`|---|---|---|---|${shards ? '---|---|---|' : ''}`);
    for (const row of counted) {
      const c = countOf(row)!;
      const perRequest = (ns: number[]) => ns.map((n) => (n / c.requests).toFixed(2)).join(' / ');
      const cluster = shards
        ? ` ${perRequest(c.roundTripsPerNode)} | ${perRequest(c.commandsPerNode)} | ${(c.nodesTouched / c.requests).toFixed(2)} |`
        : '';
      console.log(
        `| ${row.label} | ${roundTripsText(c)} | ${describeCounts(c.topLevel, c.requests)} | ${describeCounts(c.inScripts, c.requests)} |${cluster}`,
      );
      if (c.transactions)
        console.log(
          `(${row.label}: MULTI seen; each queued command is listed, though a transaction is sent in one round trip)`,
        );
    }
  }

  if (memory.size) {
    console.log(
      `\nRedis memory per pending verification (after ${MEMORY_SENDS} sends to new numbers on an emptied server)\n`,
    );
    console.log(
      '| app | used_memory Δ per send, bytes | MEMORY USAGE Σ per send, bytes | keys per send |',
    );
    console.log('|---|---|---|---|');
    for (const [kind, m] of memory) {
      console.log(
        `| ${APP_NAMES[kind]} | ${fmt(m.dataBytes)} | ${fmt(m.keyBytes)} | ${fmt(m.keys, 2)} |`,
      );
    }
    if (floor) {
      console.log(
        `| one key per verification, 50 bytes with a TTL (floor) | ${fmt(floor.dataBytes)} | ${fmt(floor.keyBytes)} | ${fmt(floor.keys, 2)} |`,
      );
    }
  }

  const legend = [
    "Scenarios: a send to a number no request has used; checks without a verificationId (by number) of codes the sends delivered, read back from each app's /dev/outbox: first a wrong code (its last digit changed), then the right one; and a check of a number that never got a code. Checks run through exactly the codes of the round's sends, so they take as long as the sends allow.",
    'verifyd runs with its defaults (mock providers, bot protection off, LOG_LEVEL=warn) and per-IP and send limits raised through configuration. The reference app does only what the contract asks of any send and check (per-IP limit, E.164 parsing, cooldown + code HMAC in one store call, or one counted attempt): a ceiling, not a service. The seed is the naive pattern verifyd grew from: SETEX of the plain code on a send, GET and, on a match, DEL on a check; no parsing, limits, hashing or attempt count.',
    "The record floor (single Redis only) keeps every piece of a recipient's state in one packed string (bench/record-study, not verifyd's store) behind the reference app's front: the least Redis work measured for what verifyd must keep, with one pending code, one purpose and one client marker.",
    "node CPU: the server process's user + system time (/proc) over the measured load, per answered request.",
    "Redis command µs: INFO commandstats usec deltas, summed at the top level: a script's usec includes the commands it runs, which commandstats also lists under their own names, so those are left out (apportioned by the counting pass where a command appears both ways). It is execution time, timed by Redis as wall time around each command: on oversubscribed cores it includes waiting for a core and can exceed the process figure. Redis process µs: INFO cpu (used_cpu_user + used_cpu_sys) deltas, which adds reading, parsing and answering each command, expiring keys and the server's timers: the CPU the machine pays. Both summed over the primaries; replicas' CPU is not counted.",
    "Redis round trips: from a pass of requests sent one at a time, with a marker (INFO stats) to every Redis node between requests: the reads each node processed between two markers, less the marker's own and those of replicas. A client that sends commands together (a pipeline, or commands issued in the same tick) writes them at once and Redis takes them in one read; one that waits for each answer causes a read per command. Commands sent: the top-level commands in the same pass, with SLOWLOG logging every command (threshold 0); EVAL/EVALSHA/FCALL count once, and the commands a script runs (logged for the script's client, ?:0) are listed apart: they cost no round trip.",
    ...(watched.length > 1
      ? [
          "Cluster: round trips are summed over the primaries, the most a request waits for if it sends to one shard after another; in brackets, the round trips to the busiest primary, the least it waits for if it sends to the shards in parallel (the bench sees reads, not the app's order). Per shard: each primary's share per request; shards touched: how many primaries a request sent a command to.",
        ]
      : []),
    "× seed: per round, this row's node + Redis CPU per request over the seed's in the same scenario and round, then the median; with Redis process or command time.",
    "Floor: SET of a 50-byte value with a TTL (a binding, an HMAC and attempt counts, the least a pending verification holds) under a key shaped like a verification's, once per send: what Redis spends on any key, the least a layout with a key per verification can cost.",
    "Memory: the delta of used_memory, less clients' and replication buffers, once the server settles, divided by the sends; and MEMORY USAGE (SAMPLES 0) of every key SCAN finds, summed, which leaves out the hash tables' slots and the expiry table. On an emptied private server, so the tables grow in the window measured.",
  ];
  console.log(`\n${legend.map((line) => `(${line})`).join('\n')}`);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
