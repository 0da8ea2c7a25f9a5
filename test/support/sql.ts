import { execFile, execFileSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describeIf, freePort, PID_DIR_ENV, sleep } from './servers';

const run = promisify(execFile);

/**
 * The shared PostgreSQL server of this machine kind (trust authentication, database `test`);
 * DATABASE_URL overrides it, as it does for the service.
 */
export const SHARED_POSTGRES_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Set by global-setup outside CI when PostgreSQL or better-sqlite3 is missing; suites then skip. */
export const SKIP_POSTGRES_ENV = 'VERIFYD_SKIP_POSTGRES';
export const SKIP_SQLITE_ENV = 'VERIFYD_SKIP_SQLITE';
/** The schema global-setup made for this run, dropped again by global-teardown. */
export const TEST_SCHEMA_ENV = 'VERIFYD_TEST_PG_SCHEMA';

/** Debian's server binaries (initdb, pg_ctl, postgres), newest major version first. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** `url` with its tables in `schema`: node-postgres passes `options` to the server at connect. */
export function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}

/** DATABASE_URL of this run's own schema on the shared server. */
export function testDatabaseUrl(): string {
  const schema = process.env[TEST_SCHEMA_ENV];
  if (!schema) throw new Error(`${TEST_SCHEMA_ENV} is not set (global-setup makes the schema)`);
  return withSearchPath(SHARED_POSTGRES_URL, schema);
}

/** True when the server at `url` runs a query. */
export async function postgresAnswers(url: string, timeoutMs = 2000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs SQL on the shared server as the tests' administrator. */
export async function adminQuery(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

export const describePostgres = describeIf(SKIP_POSTGRES_ENV, 'PostgreSQL');
export const describeSqlite = describeIf(SKIP_SQLITE_ENV, 'better-sqlite3');

export interface PrivatePostgres {
  readonly port: number;
  /** postgres:// URL of its `postgres` database. */
  readonly url: string;
  /** Stops it as a crash would (pg_ctl stop -m immediate) and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data (crash recovery included); waits until it answers. */
  start(): Promise<void>;
  /** Freezes the postmaster and every backend (SIGSTOP): connections stay open, nothing answers. */
  pause(): Promise<void>;
  resume(): void;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` user. */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
}

function serverUserIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** The postmaster and its backends: every process whose parent is the postmaster. */
function serverProcesses(postmaster: number): number[] {
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
}

function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't';
  } catch {
    return true;
  }
}

/**
 * A PostgreSQL server of our own (initdb in a temporary directory, a free port), for tests that
 * stop, freeze and restart it: the shared server is never touched that way.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'verifyd-pg-'));
  const ids = serverUserIds();
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  const exec = (name: string, args: string[]) => {
    const [file, argv] = asServerUser(join(bin, name), args);
    return run(file, argv, { timeout: 60_000 });
  };
  await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let postmaster: number | undefined;

  const start = async () => {
    await exec('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
    postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const record = process.env[PID_DIR_ENV];
    if (record) {
      writeFileSync(
        join(record, `${postmaster}.json`),
        JSON.stringify({ pid: postmaster, bin: join(bin, 'postgres'), port }),
      );
    }
    const deadline = Date.now() + 30_000;
    while (!(await postgresAnswers(url, 500))) {
      if (Date.now() > deadline) throw new Error(`private postgres on ${port} did not answer`);
      await sleep(100);
    }
  };

  const stop = async () => {
    if (postmaster === undefined) return;
    const pid = postmaster;
    postmaster = undefined;
    await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    // pg_ctl returns once the postmaster is gone; its backends follow within moments.
    const deadline = Date.now() + 10_000;
    while (serverProcesses(pid).some((p) => existsSync(`/proc/${p}`)) && Date.now() < deadline) {
      await sleep(50);
    }
    const record = process.env[PID_DIR_ENV];
    if (record) rmSync(join(record, `${pid}.json`), { force: true });
  };

  let paused: number[] = [];
  await start();
  return {
    port,
    url,
    stop,
    start: async () => {
      if (postmaster !== undefined) throw new Error('private postgres is already running');
      await start();
    },
    pause: async () => {
      if (postmaster === undefined) throw new Error('private postgres is not running');
      paused = serverProcesses(postmaster);
      for (const pid of paused) process.kill(pid, 'SIGSTOP');
      const deadline = Date.now() + 5000;
      while (!paused.every(isStopped)) {
        if (Date.now() > deadline) throw new Error('private postgres did not stop');
        await sleep(5);
      }
    },
    resume: () => {
      for (const pid of paused) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Gone meanwhile.
        }
      }
      paused = [];
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sqliteDirs: string[] = [];
// The files of this worker's SQLite suites go with it.
process.once('exit', () => {
  for (const dir of sqliteDirs) rmSync(dir, { recursive: true, force: true });
});

/** A SQLite file of its own in a fresh temporary directory, removed when the worker exits. */
export function sqliteTestPath(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `verifyd-sqlite-${label}-`));
  sqliteDirs.push(dir);
  return join(dir, 'verifyd.sqlite');
}
