import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PID_DIR_ENV } from './servers';

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
