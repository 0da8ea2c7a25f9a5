import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import express from 'express';
import pg from 'pg';
import { createClient } from 'redis';
import { COMMANDS, parseCommandLine, usage } from '../../scripts/cli';
import { createApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { RedisStore } from '../../src/store/redis';
import { PostgresEngine } from '../../src/store/sql/postgres';
import { SqliteEngine } from '../../src/store/sql/sqlite';
import { SqlStore } from '../../src/store/sql/store';
import { buildTestApp } from '../support/app';
import { putSecret } from '../support/secrets';
import { describeRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/servers';
import { describePostgres, describeSqlite, testDatabaseUrl } from '../support/sql';

/**
 * Every command runs as a real subprocess, as an operator would run it. The working directory is
 * an empty temporary one and the environment is minimal, so neither a developer's ./.env nor
 * their shell settings change what the tests see.
 */
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(ROOT, 'scripts', 'cli.ts');
const REDIS_URL = SHARED_REDIS_URL;
const ESC = '\u001b[';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let workDir: string;

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'verifyd-cli-'));
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}, cwd = workDir): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      [CLI, ...args],
      {
        cwd,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        timeout: 25_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('cli: usage', () => {
  it('prints usage for help and --help, exit 0', async () => {
    const [help, flag] = await Promise.all([cli(['help']), cli(['--help'])]);
    for (const run of [help, flag]) {
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Usage: npm run cli -- <command>');
      expect(run.stdout).toContain('clear --yes');
    }
  });

  it('rejects a missing or unknown command, an unknown option, or a misplaced one with exit 2', async () => {
    const runs = await Promise.all([
      cli([]),
      cli(['frobnicate']),
      cli(['stats', '--force']),
      cli(['stats', '--yes']),
      cli(['list', '--to', 'a@b.c']),
      cli(['stats', 'extra']),
      cli(['outbox', '--to']),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('Usage: npm run cli -- <command>');
    }
    expect(runs[1]?.stderr).toContain('Unknown command "frobnicate"');
    // The option, without parseArgs' advice on passing it as a positional (no command takes one).
    expect(runs[2]?.stderr.split('\n')[0]).toBe("Unknown option '--force'.");
    expect(runs[3]?.stderr).toContain('--yes does not apply to "stats"');
  });

  it('reports invalid configuration with exit 1, naming the variable', async () => {
    const run = await cli(['stats'], { CHALLENGE_TTL_SECONDS: 'soon' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Configuration error: Invalid CHALLENGE_TTL_SECONDS');
  });

  it('reports every invalid setting at once, one line each', async () => {
    const run = await cli(['stats'], { CHALLENGE_TTL_SECONDS: 'soon', STORE: 'mongo' });
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^Configuration error: Invalid STORE /),
      expect.stringMatching(/^Configuration error: Invalid CHALLENGE_TTL_SECONDS /),
    ]);
  });
});

describe('cli: colour', () => {
  it('writes plain text to a pipe, colour when forced, and never with NO_COLOR', async () => {
    const [plain, forced, vetoed] = await Promise.all([
      cli(['stats']),
      cli(['stats'], { FORCE_COLOR: '1' }),
      cli(['stats'], { FORCE_COLOR: '1', NO_COLOR: '1' }),
    ]);
    expect(plain.stdout).not.toContain(ESC);
    expect(forced.stdout).toContain(ESC);
    expect(vetoed.stdout).not.toContain(ESC);
    expect(vetoed.stdout).toBe(plain.stdout);
  });
});

describe('cli: memory store', () => {
  it('stats: counts by kind, the expiry settings, and a plain note about process memory', async () => {
    const run = await cli(['stats'], { STORE: 'memory', OTP_TTL_SECONDS: '420' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('memory store, key prefix "verifyd:"');
    expect(run.stdout).toContain('separate\nprocess with its own, empty memory store');
    for (const label of [
      'phone codes',
      'email tokens',
      'challenges',
      'challenge sessions',
      'rate-limit counters',
    ]) {
      expect(run.stdout).toMatch(new RegExp(`${label}\\s+0\\n`));
    }
    expect(run.stdout).toMatch(/OTP_TTL_SECONDS\s+420\s+\(7m\)/);
    for (const name of [
      'EMAIL_TOKEN_TTL_SECONDS',
      'CHALLENGE_TTL_SECONDS',
      'CHALLENGE_SESSION_TTL_SECONDS',
      'CLEANUP_INTERVAL_SECONDS',
    ]) {
      expect(run.stdout).toContain(name);
    }
    expect(run.stdout).toMatch(/backend\s+memory/);
  });

  it('list, clean and clear say what they did, with the memory note', async () => {
    const [list, clean, clear] = await Promise.all([
      cli(['list']),
      cli(['clean']),
      cli(['clear', '--yes']),
    ]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('No entries under prefix "verifyd:"');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Removed 0 expired entries.');
    expect(clear.code).toBe(0);
    expect(clear.stdout).toContain('Removed 0 keys under prefix "verifyd:" from the memory store.');
    for (const run of [list, clean, clear])
      expect(run.stdout).toContain('STORE=memory keeps entries');
  });

  it('clear refuses without --yes, exit 2, on stderr', async () => {
    const run = await cli(['clear']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('Refusing to clear without --yes');
    expect(run.stderr).toContain('npm run cli -- clear --yes');
  });
});

describe('cli: ./.env', () => {
  it('reads ./.env from the working directory; the environment wins over it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'verifyd-cli-env-'));
    try {
      writeFileSync(path.join(dir, '.env'), 'KEY_PREFIX=fromdotenv:\nCHALLENGE_TTL_SECONDS=123\n');
      const [fromFile, overridden] = await Promise.all([
        cli(['stats'], {}, dir),
        cli(['stats'], { CHALLENGE_TTL_SECONDS: '77' }, dir),
      ]);
      expect(fromFile.code).toBe(0);
      expect(fromFile.stdout).toContain('key prefix "fromdotenv:"');
      expect(fromFile.stdout).toMatch(/CHALLENGE_TTL_SECONDS\s+123/);
      expect(overridden.stdout).toMatch(/CHALLENGE_TTL_SECONDS\s+77/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cli: memcached store', () => {
  // No server is needed: the CLI must know Memcached cannot enumerate before asking it anything.
  const env = { STORE: 'memcached', MEMCACHED_SERVERS: '127.0.0.1:1', STORE_TIMEOUT_MS: '200' };

  it('says plainly that it cannot list, count or selectively clear', async () => {
    const [stats, list, clear, clean] = await Promise.all([
      cli(['stats'], env),
      cli(['list'], env),
      cli(['clear', '--yes'], env),
      cli(['clean'], env),
    ]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('Memcached cannot enumerate keys');
    expect(stats.stdout).toContain('CHALLENGE_SESSION_TTL_SECONDS');
    expect(stats.stdout).not.toMatch(/phone codes\s+0/);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('Memcached cannot enumerate keys');
    expect(clear.code).toBe(1);
    expect(clear.stderr).toContain('cannot clear only the keys under KEY_PREFIX');
    expect(clear.stderr).toContain('Nothing was deleted');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Memcached expires keys natively');
    expect(clean.stdout).toContain('0 removed');
  });
});

describe('cli: outbox', () => {
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  let bare: ReturnType<ReturnType<typeof express>['listen']>;
  let base: string;
  let bareBase: string;

  const listen = (app: express.Express) =>
    new Promise<typeof server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });

  beforeAll(async () => {
    // The assembled app with its mock outbox, as `npm start` serves it in development.
    const { app, outbox, config, store, sms, email } = buildTestApp();
    outbox.add({
      id: '1',
      channel: 'sms',
      to: '+15555550100',
      body: 'Your verification code is 123456',
      sentAt: '2026-01-01T12:00:00.000Z',
    });
    outbox.add({
      id: '2',
      channel: 'email',
      to: 'ada@example.com',
      subject: 'Confirm your email address',
      body: 'Open this link:\nhttps://example.com/confirm?t=abc',
      sentAt: '2026-01-01T12:01:00.000Z',
    });
    server = await listen(app);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // verifyd in production, which serves no outbox: GET /dev/outbox is a 404 there.
    // (createApp itself: production settings with mock providers would not pass buildConfig.)
    bare = await listen(
      createApp({
        config: { ...config, NODE_ENV: 'production' },
        store,
        sms,
        email,
        logger: createLogger({ level: 'silent' }),
      }),
    );
    bareBase = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => bare.close(resolve));
  });

  it('prints every message readably, from --url or from HOST and PORT', async () => {
    const port = String((server.address() as AddressInfo).port);
    const [byUrl, byConfig] = await Promise.all([
      cli(['outbox', '--url', `${base}/`]),
      cli(['outbox'], { HOST: '0.0.0.0', PORT: port }),
    ]);
    for (const run of [byUrl, byConfig]) {
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('2 messages, oldest first');
      expect(run.stdout).toContain('SMS to +15555550100');
      expect(run.stdout).toContain('  Your verification code is 123456');
      expect(run.stdout).toContain('EMAIL to ada@example.com');
      expect(run.stdout).toContain('  Subject: Confirm your email address');
      expect(run.stdout).toContain('  https://example.com/confirm?t=abc');
      expect(run.stdout.indexOf('123456')).toBeLessThan(run.stdout.indexOf('ada@example.com'));
    }
  });

  it('filters with --to, including a "+" that must survive the query string', async () => {
    const [phone, nobody] = await Promise.all([
      cli(['outbox', '--url', base, '--to', '+15555550100']),
      cli(['outbox', '--url', base, '--to', 'nobody@example.com']),
    ]);
    expect(phone.code).toBe(0);
    expect(phone.stdout).toContain('1 message, oldest first');
    expect(phone.stdout).not.toContain('ada@example.com');
    expect(nobody.code).toBe(0);
    expect(nobody.stdout).toContain('No messages to nobody@example.com.');
  });

  it('fails clearly when no server is running, or it has no outbox, or --url is bad', async () => {
    // Only for a port that nobody listens on once it is closed: no verifyd needed.
    const closed = await listen(express());
    const closedBase = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));

    const [down, missing, badUrl] = await Promise.all([
      cli(['outbox', '--url', closedBase]),
      cli(['outbox', '--url', bareBase]),
      cli(['outbox', '--url', 'not a url']),
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`Cannot reach a verifyd server at ${closedBase}`);
    expect(down.stderr).toContain('Is it running?');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no outbox');
    expect(missing.stderr).toContain('404');
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--url must be an absolute URL');
  });
});

describeRedis('cli: redis store', () => {
  const prefix = uniquePrefix('cli');
  // Shares our prefix's first characters, so a sloppy match (no trailing ":") would catch it.
  const neighbourPrefix = `${prefix.slice(0, -1)}-neighbour:`;
  const env = { STORE: 'redis', REDIS_URL, KEY_PREFIX: prefix, STORE_TIMEOUT_MS: '2000' };
  let ours: RedisStore;
  let neighbour: RedisStore;

  beforeAll(async () => {
    ours = new RedisStore({ url: REDIS_URL, keyPrefix: prefix, timeoutMs: 2000 });
    neighbour = new RedisStore({ url: REDIS_URL, keyPrefix: neighbourPrefix, timeoutMs: 2000 });
    const ready = await Promise.all([ours.waitUntilReady(3000), neighbour.waitUntilReady(3000)]);
    if (!ready.every(Boolean)) {
      throw new Error(`Redis is not reachable at ${REDIS_URL} (global-setup found it earlier).`);
    }
  });

  beforeEach(async () => {
    await putSecret(ours, 'code:PhoneCodeHashAAAAAAAA', 'hash', 600);
    await ours.set('email:EmailTokenIdBBBBBBBB', 'hash', 600);
    await ours.setIfAbsent('challenge:ChallengeDDDDDDDDDD', '1', 300);
    await ours.set('session:SessionHmacEEEEEEEEE', '1', 3600);
    await ours.increment('rl:ip:192.0.2.1', 60);
    await ours.increment('limit:bot:192.0.2.1', 3600);
    await neighbour.set('session:KeepMeFFFFFFFFFFFF', 'neighbour', 600);
  });

  afterAll(async () => {
    for (const store of [ours, neighbour]) {
      if (!store) continue;
      for await (const entry of store.scan()) await store.delete(entry.key);
      await store.close();
    }
  });

  it('stats counts each kind under our prefix only', async () => {
    const run = await cli(['stats'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`redis store, key prefix "${prefix}"`);
    expect(run.stdout).not.toContain('STORE=memory');
    expect(run.stdout).toMatch(/phone codes\s+1\n/);
    expect(run.stdout).toMatch(/email tokens\s+1\n/);
    expect(run.stdout).toMatch(/challenges\s+1\n/);
    // The neighbour's session is not ours to count.
    expect(run.stdout).toMatch(/challenge sessions\s+1\n/);
    expect(run.stdout).toMatch(/rate-limit counters\s+1\n/);
    expect(run.stdout).toMatch(/send\/attempt limits\s+1\n/);
    expect(run.stdout).toMatch(/total\s+6\n/);
    expect(run.stdout).toMatch(/backend\s+redis/);
  });

  it('list shows masked keys, kind, unknown age, TTL and state', async () => {
    const run = await cli(['list'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/KEY\s+KIND\s+AGE\s+TTL\s+STATE/);
    expect(run.stdout).toMatch(/code:PhoneC…\s+phone code\s+-\s+(9m \d+s|10m)\s+valid/);
    expect(run.stdout).toMatch(/session:Sessio…\s+challenge session\s+-\s+\S+( \S+)?\s+valid/);
    expect(run.stdout).toContain('limit:bot:192.0.…');
    expect(run.stdout).not.toContain('PhoneCodeHash');
    expect(run.stdout).not.toContain('KeepMe');
    expect(run.stdout).toContain('6 entries, 0 expired');
  });

  it('clean says Redis expires keys natively', async () => {
    const run = await cli(['clean'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'Redis expires keys natively; there is nothing to clean. 0 removed.',
    );
  });

  it('clear needs --yes, then removes every key under the prefix and no other key', async () => {
    const refused = await cli(['clear'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`every key under prefix "${prefix}" in the redis store`);
    expect(await ours.get('session:SessionHmacEEEEEEEEE')).toBe('1');

    const run = await cli(['clear', '--yes'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Removed 6 keys under prefix "${prefix}" from the redis store.`);
    const left: string[] = [];
    for await (const entry of ours.scan()) left.push(entry.key);
    expect(left).toEqual([]);
    expect(await neighbour.get('session:KeepMeFFFFFFFFFFFF')).toBe('neighbour');
  });

  it('lists and clears keys under the prefix that verifyd did not write, and counts a record as one key', async () => {
    // Two parts of one record (one Redis key), and three keys that only look like records.
    await ours.set('{RecipientAAAAAAAAAA}limit:send:sms', '1', 600);
    await ours.set('{RecipientAAAAAAAAAA}limit:cooldown:sms', '1', 60);
    const raw = createClient({ url: REDIS_URL });
    await raw.connect();
    try {
      await raw.set(`${prefix}{abc}`, 'not a record');
      await raw.set(`${prefix}{abc}x`, 'a plain key that begins with a tag');
      await raw.hSet(`${prefix}{hash}`, 'a', 'b');
      const list = await cli(['list'], env);
      expect(list.code).toBe(0);
      // 6 plain keys, 2 parts, 3 keys of others, each listed once.
      expect(list.stdout).toContain('11 entries, 0 expired');

      const run = await cli(['clear', '--yes'], env);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(
        `Removed 10 keys under prefix "${prefix}" from the redis store.`,
      );
      expect(await raw.keys(`${prefix}*`)).toEqual([]);
      expect(await neighbour.get('session:KeepMeFFFFFFFFFFFF')).toBe('neighbour');
    } finally {
      await raw.del([`${prefix}{abc}`, `${prefix}{abc}x`, `${prefix}{hash}`]);
      await raw.close();
    }
  });

  it('list ends quietly when the reader of its pipe stops early (`| head`)', async () => {
    // Enough entries that the listing outgrows a pipe's buffer, so the CLI is still writing when
    // head has already gone.
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        ours.set(`session:PipeTest${String(i).padStart(12, '0')}`, '1', 600),
      ),
    );
    const run = await new Promise<{ status: string; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'bash',
        ['-c', `"${TSX}" "${CLI}" list | head -n 3; echo "status \${PIPESTATUS[0]}" >&2`],
        {
          cwd: workDir,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
          timeout: 25_000,
        },
        (_error, stdout, stderr) =>
          resolve({ status: stderr.match(/status (\d+)/)?.[1] ?? '', stdout, stderr }),
      );
    });
    expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(run.stderr).not.toContain('EPIPE');
    expect(run.status).toBe('0');
  });

  it('fails with exit 1 and a plain message when Redis is unreachable', async () => {
    const run = await cli(['stats'], {
      ...env,
      REDIS_URL: 'redis://127.0.0.1:1',
      STORE_TIMEOUT_MS: '200',
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('The redis store is unavailable');
  });
});

describe('cli: the command table', () => {
  it('generates the usage from the table: every command once, with its flags', () => {
    const text = usage();
    for (const command of COMMANDS) {
      const line = text.split('\n').find((l) => l.startsWith(`  ${command.name}`));
      expect(line).toBeDefined();
      for (const flag of command.flags) expect(line).toContain(`--${flag.name}`);
      expect(text).toContain(command.summary);
    }
    expect(text).toContain('clear --yes');
    expect(text).toContain('outbox [--to <address>] [--url <base URL>]');
  });

  it('parses a command line against the table, refusing flags of other commands', () => {
    expect(parseCommandLine(['clear', '--yes']).command.name).toBe('clear');
    expect(parseCommandLine(['--help']).command.name).toBe('help');
    expect(() => parseCommandLine(['stats', '--yes'])).toThrow('--yes does not apply to "stats"');
    expect(() => parseCommandLine(['drop'])).toThrow('Unknown command "drop"');
  });
});

/**
 * The SQL stores through the CLI. Entries are written by a store whose clock is set back, so that
 * one of them is already expired (but, as on a real deployment between two cleanup runs, not yet
 * removed) without the test waiting for it.
 */
function sqlCliSuite(
  name: 'postgres' | 'sqlite',
  env: () => Record<string, string>,
  open: (prefix: string, now?: () => number) => Promise<SqlStore>,
  holdCleanupLock: (store: SqlStore) => Promise<() => Promise<void>>,
) {
  const prefix = uniquePrefix(`cli-${name}`);
  const neighbourPrefix = `${prefix.slice(0, -1)}-neighbour:`;
  let ours: SqlStore;
  let past: SqlStore;
  let neighbour: SqlStore;
  const cliEnv = () => ({ ...env(), STORE: name, KEY_PREFIX: prefix, STORE_TIMEOUT_MS: '5000' });

  beforeAll(async () => {
    ours = await open(prefix);
    past = await open(prefix, () => Date.now() - 3_600_000);
    neighbour = await open(neighbourPrefix);
  });
  beforeEach(async () => {
    await ours.clear();
    await putSecret(ours, 'code:PhoneCodeHashAAAAAAAA', 'hash', 600);
    await ours.set('email:EmailTokenIdBBBBBBBB', 'hash', 600);
    await ours.increment('rl:ip:192.0.2.1', 60);
    // Written an hour ago with ten minutes to live: expired, still in the table.
    await past.set('session:ExpiredSessionCCCCCC', '1', 600);
    await neighbour.set('session:KeepMeFFFFFFFFFFFF', 'neighbour', 600);
  });
  afterAll(async () => {
    await Promise.all([ours, past, neighbour].map((store) => store?.close()));
  });

  it('stats counts live entries by kind and the expired rows not yet removed', async () => {
    const run = await cli(['stats'], cliEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `${name} store, key prefix "${prefix}", table ${ours.names.plain.entries}`,
    );
    expect(run.stdout).toMatch(/phone codes\s+1\n/);
    expect(run.stdout).toMatch(/email tokens\s+1\n/);
    expect(run.stdout).toMatch(/rate-limit counters\s+1\n/);
    expect(run.stdout).toMatch(/challenge sessions\s+0\n/);
    expect(run.stdout).toMatch(/total\s+3\n/);
    expect(run.stdout).toMatch(/expired, not yet removed\s+1\n/);
    expect(run.stdout).toMatch(/CLEANUP_INTERVAL_SECONDS\s+60\s+\(1m\)\s+the cleanup job/);
  });

  it('list shows masked keys with kind, age, TTL, and which are valid or expired', async () => {
    const run = await cli(['list'], cliEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/code:PhoneC…\s+phone code\s+(0s|<1s|\d+s)\s+(9m \d+s|10m)\s+valid/);
    expect(run.stdout).toMatch(/session:Expire…\s+challenge session\s+1h( \d+s)?\s+-\s+expired/);
    expect(run.stdout).not.toContain('PhoneCodeHash');
    expect(run.stdout).not.toContain('KeepMe');
    expect(run.stdout).toContain('4 entries, 1 expired');
  });

  it('clean runs the cleanup job once and prints the count; a held lock means another worker runs it', async () => {
    const release = await holdCleanupLock(ours);
    let busy: Run;
    try {
      busy = await cli(['clean'], cliEnv());
    } finally {
      await release();
    }
    expect(busy.code).toBe(0);
    expect(busy.stdout).toContain('Another worker is running the cleanup job right now');
    expect(await ours.counts()).toEqual({ total: 4, expired: 1 });

    const run = await cli(['clean'], cliEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Removed 1 expired entry.');
    expect(await ours.counts()).toEqual({ total: 3, expired: 0 });
  });

  it('clear needs --yes, then removes this deployment’s rows and no other', async () => {
    const refused = await cli(['clear'], cliEnv());
    expect(refused.code).toBe(2);
    expect(await ours.get('email:EmailTokenIdBBBBBBBB')).toBe('hash');
    const run = await cli(['clear', '--yes'], cliEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Removed 4 keys under prefix "${prefix}" from the ${name} store.`);
    expect(await ours.counts()).toEqual({ total: 0, expired: 0 });
    expect(await neighbour.get('session:KeepMeFFFFFFFFFFFF')).toBe('neighbour');
  });

  it('migrate says the tables are current', async () => {
    const run = await cli(['migrate'], cliEnv());
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `The tables ${ours.names.plain.entries} and ${ours.names.plain.meta} are at schema version 1; nothing to do.`,
    );
  });
}

describePostgres('cli: postgres store', () => {
  sqlCliSuite(
    'postgres',
    () => ({ DATABASE_URL: testDatabaseUrl() }),
    async (prefix, now) => {
      const store = new SqlStore(new PostgresEngine({ url: testDatabaseUrl(), timeoutMs: 5000 }), {
        keyPrefix: prefix,
        ...(now ? { now } : {}),
      });
      await store.migrate();
      return store;
    },
    async (store) => {
      // The lock the job takes, held by another session as a running worker would hold it.
      const client = new pg.Client({ connectionString: testDatabaseUrl() });
      await client.connect();
      await client.query(
        "SELECT pg_advisory_lock(hashtextextended(current_schema() || '.' || $1, 0))",
        [`${store.names.stem}:cleanup`],
      );
      return () => client.end();
    },
  );

  it('fails with exit 1 and a plain message when PostgreSQL is unreachable', async () => {
    const run = await cli(['stats'], {
      STORE: 'postgres',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test',
      STORE_TIMEOUT_MS: '300',
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('The postgres store is unavailable');
  });
});

describeSqlite('cli: sqlite store', () => {
  const file = () => path.join(workDir, 'cli.sqlite');
  sqlCliSuite(
    'sqlite',
    () => ({ SQLITE_PATH: file() }),
    async (prefix, now) => {
      const store = new SqlStore(new SqliteEngine({ path: file(), timeoutMs: 5000 }), {
        keyPrefix: prefix,
        ...(now ? { now } : {}),
      });
      await store.migrate();
      return store;
    },
    async (store) => {
      // A worker's lease: held until an hour from now.
      const db = new Database(file());
      db.prepare(`UPDATE ${store.names.meta} SET value = ? WHERE name = 'cleanup_lease'`).run(
        `${Date.now() + 3_600_000} someone-else`,
      );
      return async () => {
        db.prepare(`UPDATE ${store.names.meta} SET value = '0' WHERE name = 'cleanup_lease'`).run();
        db.close();
      };
    },
  );
});
