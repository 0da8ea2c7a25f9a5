import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { FakeClock } from '../support/app';
import { describeRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/servers';
import { gbMobile, pumpingApp } from './support';

/** `npm run cli -- fraud` as an operator runs it: a subprocess on the store the server uses. */
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(ROOT, 'scripts', 'cli.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describeRedis('cli fraud', () => {
  const prefix = uniquePrefix('pumping-cli');
  const env = {
    STORE: 'redis',
    REDIS_URL: SHARED_REDIS_URL,
    KEY_PREFIX: prefix,
    SMS_PUMPING_DEFENCES: 'on',
    SMS_CONVERSION_MIN_SAMPLE: '10',
    NO_COLOR: '1',
  };
  let workDir: string;
  let store: Store;

  const cli = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        TSX,
        [CLI, ...args],
        {
          cwd: workDir,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
          timeout: 25_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'verifyd-fraud-'));
    store = await createStore(buildConfig(env));
  });

  afterAll(async () => {
    if (store?.scan) for await (const entry of store.scan()) await store.delete(entry.key);
    await store?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('lists a blocked prefix and an escalated country, lifts the prefix, and refuses bad input', async () => {
    // The CLI reads the real clock, so the server's clock is the real time here.
    const app = pumpingApp({ clock: new FakeClock(Date.now()), store, env });
    // Ten numbers nobody enters escalate GB; eleven in one prefix block it.
    for (let i = 0; i < 10; i++) await app.send(gbMobile(4, i)).expect(202);
    expect((await app.send(gbMobile(4, 10))).body.error.code).toBe('prefix_blocked');

    const listed = await cli(['fraud']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`redis store, key prefix "${prefix}"`);
    expect(listed.stdout).toMatch(
      /^GB\s+\d+ \(proof past 250, refused past 500\)\s+proof for 720 min \(0 of 10 entered, upper bound 0\.278 < 0\.3\)/m,
    );
    expect(listed.stdout).toMatch(
      /^\+447400004xxx\s+GB\s+blocked until \S+ \(11 numbers in an hour, limit 10\)/m,
    );
    // Prefixes only: the CLI prints no number.
    expect(listed.stdout).not.toContain(gbMobile(4, 0));

    const lifted = await cli(['fraud', '--lift', '+447400004xxx']);
    expect(lifted.code).toBe(0);
    expect(lifted.stdout).toContain('Lifted block, proof for prefix +447400004');
    // The lift holds: the walk goes on without a new block.
    await app.send(gbMobile(4, 20)).expect(202);
    await app.send(gbMobile(4, 21)).expect(202);

    const again = await cli(['fraud', '--lift', '+447400004']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('Nothing is in force for prefix +447400004');

    const liftedCountry = await cli(['fraud', '--lift', 'gb']);
    expect(liftedCountry.code).toBe(0);
    expect(liftedCountry.stdout).toContain('Lifted proof for country GB');

    const bad = await cli(['fraud', '--lift', 'XX']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--lift takes a country code');
    const misplaced = await cli(['stats', '--lift', 'GB']);
    expect(misplaced.code).toBe(2);
  }, 60_000);
});
