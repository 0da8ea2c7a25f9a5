import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSqliteDriver } from '../../src/store/sql/sqlite';
import { CHROMIUM_BIN, chromiumInstalled, SKIP_CHROMIUM_ENV } from './browser';
import { ensureBuilt } from './build';
import {
  MEMCACHED_BIN,
  memcachedAnswers,
  PID_DIR_ENV,
  REDIS_BIN,
  redisAnswers,
  SHARED_MEMCACHED,
  SHARED_REDIS_URL,
  SKIP_MEMCACHED_ENV,
  SKIP_REDIS_ENV,
} from './servers';
import {
  adminQuery,
  postgresAnswers,
  postgresBinDir,
  SHARED_POSTGRES_URL,
  SKIP_POSTGRES_ENV,
  SKIP_SQLITE_ENV,
  TEST_SCHEMA_ENV,
} from './sql';

interface Backend {
  name: string;
  skipEnv: string;
  address: string;
  binary: string;
  answers: () => Promise<boolean>;
  howToStart: string;
}

/**
 * Checks once per run that the backends the store suites need are there. In CI a missing backend
 * fails the run, so a broken CI image can never pass by silently skipping the suites; on a
 * developer machine the suites skip with a notice instead. Workers inherit the environment set
 * here.
 */
export default async function globalSetup(): Promise<void> {
  // Once per run, before any worker starts: the end-to-end and packaging suites run dist/, and
  // two workers must never build it at the same time.
  ensureBuilt();
  process.env[PID_DIR_ENV] = mkdtempSync(join(tmpdir(), 'verifyd-test-servers-'));

  const backends: Backend[] = [
    {
      name: 'Redis',
      skipEnv: SKIP_REDIS_ENV,
      address: SHARED_REDIS_URL,
      binary: REDIS_BIN,
      answers: () => redisAnswers(SHARED_REDIS_URL),
      howToStart:
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    },
    {
      name: 'memcached',
      skipEnv: SKIP_MEMCACHED_ENV,
      address: SHARED_MEMCACHED,
      binary: MEMCACHED_BIN,
      answers: () => memcachedAnswers(SHARED_MEMCACHED),
      howToStart: 'memcached -d -u root -l 127.0.0.1 -p 11211',
    },
  ];

  const missing: string[] = [];
  const postgres = await checkPostgres();
  if (postgres) missing.push(postgres);
  try {
    loadSqliteDriver();
    delete process.env[SKIP_SQLITE_ENV];
  } catch (error) {
    missing.push(`SQLite: ${(error as Error).message}`);
    process.env[SKIP_SQLITE_ENV] = '1';
  }
  for (const backend of backends) {
    const problems: string[] = [];
    if (!(await backend.answers())) problems.push(`no answer at ${backend.address}`);
    if (!existsSync(backend.binary)) problems.push(`${backend.binary} not found`);
    if (problems.length === 0) {
      delete process.env[backend.skipEnv];
      continue;
    }
    const message = `${backend.name}: ${problems.join('; ')} (start one with: ${backend.howToStart})`;
    missing.push(message);
    process.env[backend.skipEnv] = '1';
  }

  // The browser suites need Debian's chromium; .ci/run installs it.
  if (chromiumInstalled()) delete process.env[SKIP_CHROMIUM_ENV];
  else {
    missing.push(`Chromium: ${CHROMIUM_BIN} not found (install it with: apt-get install chromium)`);
    process.env[SKIP_CHROMIUM_ENV] = '1';
  }

  if (missing.length === 0) return;
  if (process.env.CI === 'true') {
    throw new Error(`Store backends or the browser missing in CI:\n  ${missing.join('\n  ')}`);
  }
  console.warn(
    `\nNOTICE: the suites that need these will be SKIPPED:\n  ${missing.join('\n  ')}\n`,
  );
}

/**
 * The shared PostgreSQL server and Debian's server binaries (for the private outage instance).
 * When both are there, makes this run's own schema, which global-teardown drops: the suites never
 * touch another schema. Resolves a problem line, or undefined when PostgreSQL is ready.
 */
async function checkPostgres(): Promise<string | undefined> {
  const problems: string[] = [];
  if (!(await postgresAnswers(SHARED_POSTGRES_URL))) {
    problems.push(`no answer at ${new URL(SHARED_POSTGRES_URL).host}`);
  }
  if (!postgresBinDir()) problems.push('no server binaries under /usr/lib/postgresql/*/bin');
  if (problems.length > 0) {
    process.env[SKIP_POSTGRES_ENV] = '1';
    return `PostgreSQL: ${problems.join('; ')} (install postgresql and start it with trust authentication and a database "test")`;
  }
  const schema = `verifyd_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(SHARED_POSTGRES_URL, `CREATE SCHEMA ${schema}`);
  process.env[TEST_SCHEMA_ENV] = schema;
  delete process.env[SKIP_POSTGRES_ENV];
  return undefined;
}
