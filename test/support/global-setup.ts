import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
