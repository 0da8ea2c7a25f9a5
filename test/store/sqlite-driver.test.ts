/**
 * better-sqlite3 is an optional peer dependency with a native part: a deployment that never sets
 * STORE=sqlite must not need it, and one that does must be told plainly when it is missing. The
 * built server runs with a preload script that makes the module unresolvable, as on a machine
 * where its install was skipped or failed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getJson } from '../support/e2e-client';
import { startVerifyd, VERIFYD_BIN } from '../support/verifyd-process';

let dir: string;
let hide: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'verifyd-no-sqlite-'));
  hide = path.join(dir, 'hide-better-sqlite3.js');
  writeFileSync(
    hide,
    `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'better-sqlite3') {
    const error = new Error("Cannot find module 'better-sqlite3'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runServer(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', hide, VERIFYD_BIN],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
      (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr }),
    );
  });
}

describe('STORE=sqlite without better-sqlite3', () => {
  it('refuses to start with one line that says what to install', async () => {
    const run = await runServer({ STORE: 'sqlite', SQLITE_PATH: path.join(dir, 'x.sqlite') });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      'verifyd: Invalid STORE (got "sqlite"): it needs better-sqlite3, which is not installed; install it beside verifyd with npm install better-sqlite3@12 (version 13 needs Node 22).',
    ]);
  });

  it('is not needed by any other store', async () => {
    const server = await startVerifyd(
      { NODE_ENV: 'development', STORE: 'memory' },
      { file: process.execPath, args: ['-r', hide, VERIFYD_BIN] },
    );
    try {
      const health = await getJson(`${server.url}/health`);
      expect(health.status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
