import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './build';
import {
  freePort,
  listenerOwned,
  PORT_ATTEMPTS,
  PortTakenError,
  processTree,
  sleep,
} from './servers';

/** The repository's bin, which `npm start` and `npx verifyd` both run. */
export const VERIFYD_BIN = path.join(ROOT, 'bin', 'verifyd.js');

export interface VerifydProcess {
  url: string;
  port: number;
  /** Everything the process wrote so far, for failure messages. */
  output(): string;
  /** SIGTERM, as a process manager stops it; SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
  /** Sends `name` to the server process alone (not its group) and returns at once. */
  signal(name: NodeJS.Signals): void;
  /**
   * Stops reading the process's stdout and closes our end of the pipe, as a log shipper that
   * died would: its next write to stdout fails (EPIPE).
   */
  closeOutput(): void;
  /** Resolves with the exit code or signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/**
 * Signals the child's whole process group: `npx verifyd` runs the server as a grandchild, which a
 * signal to npx alone may leave running. The group is the child's own (it is spawned detached).
 */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, name);
  } catch {
    // The group is already gone (ESRCH).
  }
}

// A worker that ends without afterAll (a crash, a timeout) still takes its servers down with it.
process.once('exit', () => {
  for (const child of running) signal(child, 'SIGKILL');
});

/**
 * Polls `url` until it answers (any status) from a socket that the child or its descendants
 * listen on: an answer from another process that took the port after freePort() (ours then fails
 * to bind) is no start.
 */
async function waitForHttp(
  url: string,
  port: number,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const message = `verifyd exited (${child.exitCode ?? child.signalCode}):\n${output()}`;
      throw /EADDRINUSE/.test(output()) ? new PortTakenError(message) : new Error(message);
    }
    let answered = false;
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      answered = true;
    } catch {
      // Not listening yet.
    }
    if (answered) {
      if (child.pid === undefined) throw new Error(`verifyd did not start:\n${output()}`);
      if (listenerOwned(port, processTree(child.pid)) !== false) return;
      throw new PortTakenError(`another process answers on port ${port}:\n${output()}`);
    }
    if (Date.now() > deadline) throw new Error(`verifyd did not listen within 15 s:\n${output()}`);
    await sleep(100);
  }
}

/**
 * Starts a program that serves verifyd (by default the repository's bin, as `npm start` runs it)
 * on a free loopback port with `env` (or `env(port)`) on top of a minimal environment, and resolves once
 * GET /health answers. The environment is built from scratch so that a developer's own
 * variables cannot change what is tested.
 */
export async function startVerifyd(
  env: Record<string, string> | ((port: number) => Record<string, string>),
  command: { file: string; args: string[]; cwd?: string } = {
    file: process.execPath,
    args: [VERIFYD_BIN],
  },
): Promise<VerifydProcess> {
  // The port is only free until someone binds it: on a clash, start again on a fresh one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort(), env, command);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

async function startOnce(
  port: number,
  env: Record<string, string> | ((port: number) => Record<string, string>),
  command: { file: string; args: string[]; cwd?: string },
): Promise<VerifydProcess> {
  // An empty working directory by default: the server reads ./.env, and a developer's must not
  // change what is tested.
  const scratch = command.cwd ? undefined : mkdtempSync(path.join(tmpdir(), 'verifyd-e2e-'));
  const child = spawn(command.file, command.args, {
    cwd: command.cwd ?? scratch,
    detached: true,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...(typeof env === 'function' ? env(port) : env),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    // Without a pid (a failed spawn) there is nothing to signal, and 'exit' may never come.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      signal(child, 'SIGTERM');
      const timer = setTimeout(() => signal(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    // The group may outlive its leader (npx's server child): nothing of it may survive a suite.
    signal(child, 'SIGKILL');
    running.delete(child);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  };
  child.on('error', (error) => {
    log += `spawn failed: ${error.message}\n`;
  });
  try {
    await waitForHttp(`${url}/health`, port, child, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    port,
    output: () => log,
    stop,
    signal: (name) => {
      child.kill(name);
    },
    closeOutput: () => {
      child.stdout?.destroy();
    },
    exited,
  };
}
