import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PID_DIR_ENV } from './servers';
import { adminQuery, SHARED_POSTGRES_URL, TEST_SCHEMA_ENV } from './sql';

interface Recorded {
  pid: number;
  bin: string;
  port: number;
}

/** The command line of a live process, or undefined when it is gone. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/**
 * Suites stop their private servers themselves; this catches the ones a crashed or timed-out
 * worker left behind. A recorded pid is only killed while it still runs the same binary on the
 * same port, so a pid reused by an unrelated process is left alone.
 */
export default async function globalTeardown(): Promise<void> {
  await dropTestSchema();
  const dir = process.env[PID_DIR_ENV];
  if (!dir) return;
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return;
  }
  for (const file of files) {
    try {
      const { pid, bin, port } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Recorded;
      const cmd = commandLine(pid);
      if (cmd?.startsWith(bin) && cmd.includes(String(port))) {
        process.kill(pid, 'SIGKILL');
        console.warn(`NOTICE: killed leftover test server ${bin} (pid ${pid}, port ${port})`);
      }
    } catch {
      // An unreadable record or a process that already ended needs no action.
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** The schema global-setup made for this run, with every table the suites created in it. */
async function dropTestSchema(): Promise<void> {
  const schema = process.env[TEST_SCHEMA_ENV];
  if (!schema || !/^verifyd_test_\d+_[0-9a-f]+$/.test(schema)) return;
  try {
    await adminQuery(SHARED_POSTGRES_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } catch (error) {
    console.warn(`NOTICE: could not drop the test schema ${schema}: ${(error as Error).message}`);
  }
}
