import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { renderEnvExample, renderTable } from '../scripts/config-docs';
import { buildConfig, loadConfig } from '../src/config';
import { ConfigError } from '../src/errors';

const STRONG = 'x'.repeat(32);
const productionEnv = {
  NODE_ENV: 'production',
  STORE: 'redis',
  SMS_PROVIDER: 'twilio',
  TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef',
  TWILIO_AUTH_TOKEN: 'token',
  TWILIO_FROM: '+15005550006',
  EMAIL_PROVIDER: 'sendgrid',
  SENDGRID_API_KEY: 'SG.key',
  EMAIL_FROM: 'no-reply@example.com',
  OTP_SECRET: STRONG,
  JWT_SECRET: STRONG,
  PUBLIC_URL: 'https://verify.example.com',
};

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function failure(env: Record<string, string>): string {
  return refusal(env).message;
}

/** The one problem line that names `name`; fails unless there is exactly one. */
function lineFor(problems: readonly string[], name: string): string {
  const lines = problems.filter((line) => new RegExp(`^\\w+ ${name}\\b`).test(line));
  expect(lines).toHaveLength(1);
  return lines[0] ?? '';
}

describe('configuration', () => {
  it('serves local development with defaults: memory store, mock providers, port 3000', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      STORE: 'memory',
      SMS_PROVIDER: 'mock',
      EMAIL_PROVIDER: 'mock',
    });
    // WEBHOOK_SECRET too gets a random key, but nothing signs with it without a webhook.
    expect(config.devSecrets).toEqual(['OTP_SECRET', 'JWT_SECRET']);
    expect(config.OTP_TTL_SECONDS).toBe(600);
    expect(loadConfig({ VERIFIED_WEBHOOK_URL: 'https://app.example.com/hook' }).devSecrets).toEqual(
      ['OTP_SECRET', 'JWT_SECRET', 'WEBHOOK_SECRET'],
    );
  });

  it('stops on a bad value with one line naming the variable and what it accepts', () => {
    expect(failure({ OTP_LENGTH: '12' })).toBe(
      'Invalid OTP_LENGTH (got "12"): expected an integer from 4 to 10.',
    );
    expect(failure({ STORE: 'mongo' })).toBe(
      'Invalid STORE (got "mongo"): expected memory, redis, memcached, postgres or sqlite.',
    );
    expect(failure({ PORT: 'http' })).toMatch(/^Invalid PORT .*integer/);
    for (const host of ['999.1.1.1', 'http://example.com', 'bad host'])
      expect(failure({ HOST: host })).toMatch(/^Invalid HOST .*an IP address/);
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'verifyd.internal'])
      expect(buildConfig({ HOST: host }).HOST).toBe(host);
    expect(failure({ SMS_ALLOWED_COUNTRIES: 'US,USA' })).toMatch(/^Invalid SMS_ALLOWED_COUNTRIES/);
    // Two letters, but no country: UK is GB's common name, XX nobody's.
    for (const list of ['UK', 'us,XX'])
      expect(failure({ SMS_ALLOWED_COUNTRIES: list })).toMatch(
        /^Invalid SMS_ALLOWED_COUNTRIES.*GB, not UK/,
      );
    expect(buildConfig({ SMS_ALLOWED_COUNTRIES: 'us, gb' }).SMS_ALLOWED_COUNTRIES).toEqual([
      'US',
      'GB',
    ]);
    expect(failure({ OTP_SECRET: 'x'.repeat(3), NODE_ENV: 'production' })).not.toContain('xxx');
    for (const message of [failure({ OTP_LENGTH: 'abc' })])
      expect(message.split('\n')).toHaveLength(1);
  });

  it('takes the SQL stores: PostgreSQL needs a postgres:// DATABASE_URL, SQLite a file', () => {
    const postgres = loadConfig({
      STORE: 'postgres',
      DATABASE_URL: 'postgresql://verifyd:pw@db:5432/app?options=-c%20search_path%3Dverifyd',
    });
    expect(postgres).toMatchObject({ STORE: 'postgres', DATABASE_POOL_SIZE: 10 });
    expect(loadConfig({ ...productionEnv, STORE: 'sqlite' }).SQLITE_PATH).toBe('verifyd.sqlite');
    expect(failure({ STORE: 'postgres' })).toBe(
      'Missing DATABASE_URL: required when STORE=postgres.',
    );
    // The password in a refused URL is not repeated.
    expect(failure({ STORE: 'postgres', DATABASE_URL: 'mysql://u:hunter2@db/app' })).toBe(
      'Invalid DATABASE_URL (got "mysql://***@db/app"): expected a postgres:// or postgresql:// URL.',
    );
    expect(failure({ STORE: 'sqlite', SQLITE_PATH: ':memory:' })).toMatch(
      /^Invalid SQLITE_PATH .*not :memory: \(use STORE=memory\)/,
    );
    expect(failure({ DATABASE_POOL_SIZE: '0' })).toMatch(/^Invalid DATABASE_POOL_SIZE/);
  });

  it('accepts a production setup', () => {
    expect(loadConfig(productionEnv).devSecrets).toEqual([]);
  });

  it.each([
    ['STORE', 'memory', /STORE: production needs redis, memcached, postgres or sqlite/],
    ['SMS_PROVIDER', 'mock', /SMS_PROVIDER: production refuses the mock/],
    ['EMAIL_PROVIDER', 'mock', /EMAIL_PROVIDER: production refuses the mock/],
    ['OTP_SECRET', 'short', /OTP_SECRET: expected at least 32 bytes/],
    ['JWT_SECRET', '', /Missing JWT_SECRET/],
    ['TRUST_PROXY', 'true', /TRUST_PROXY: production refuses true/],
  ])('refuses production with %s=%j', (name, value, message) => {
    expect(failure({ ...productionEnv, [name]: value })).toMatch(message);
  });

  it("takes a hop count or the proxies' addresses for TRUST_PROXY in production, and true in development", () => {
    // true believes whatever a client writes first in X-Forwarded-For (see
    // security/client-networks.test.ts); a hop count or an address list believes only the proxies.
    expect(failure({ ...productionEnv, TRUST_PROXY: 'true' })).toBe(
      'Invalid TRUST_PROXY: production refuses true, which lets clients choose their address in X-Forwarded-For; set the number of proxies in front (e.g. 1) or their addresses.',
    );
    for (const value of ['1', '10.0.0.0/8, fd00::/8', 'loopback', 'false'])
      expect(loadConfig({ ...productionEnv, TRUST_PROXY: value }).TRUST_PROXY).not.toBe(true);
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
  });

  it('takes IPV6_SUBNET from /32 to /64, /56 by default', () => {
    expect(loadConfig({}).IPV6_SUBNET).toBe(56);
    expect(loadConfig({ IPV6_SUBNET: '48' }).IPV6_SUBNET).toBe(48);
    expect(failure({ IPV6_SUBNET: '128' })).toBe(
      'Invalid IPV6_SUBNET (got "128"): expected an integer from 32 to 64.',
    );
    expect(failure({ IPV6_SUBNET: '31' })).toMatch(/^Invalid IPV6_SUBNET/);
  });

  it('refuses production with a webhook but no WEBHOOK_SECRET of its own, among every other problem', () => {
    const withHook = { ...productionEnv, VERIFIED_WEBHOOK_URL: 'https://app.example.com/hooks' };
    // It used to sign with JWT_SECRET, which the webhook's receiver then held.
    const missing = refusal({ ...withHook, OTP_LENGTH: '4' });
    expect(missing.problems).toEqual([
      'Missing WEBHOOK_SECRET: production needs a secret of its own (at least 32 bytes) to sign webhooks when VERIFIED_WEBHOOK_URL is set.',
      'Invalid OTP_LENGTH: production needs at least 6 digits.',
    ]);
    // STRONG is the value of both JWT_SECRET and OTP_SECRET in productionEnv.
    expect(failure({ ...withHook, WEBHOOK_SECRET: STRONG })).toBe(
      "Invalid WEBHOOK_SECRET: production needs a secret of its own, not the value of JWT_SECRET and OTP_SECRET: the webhook's receiver holds it.",
    );
    expect(failure({ ...withHook, WEBHOOK_SECRET: 'short' })).toBe(
      'Invalid WEBHOOK_SECRET: expected at least 32 bytes in production.',
    );
    const own = 'w'.repeat(32);
    expect(loadConfig({ ...withHook, WEBHOOK_SECRET: own }).WEBHOOK_SECRET).toBe(own);
    // Without a webhook nothing signs with it, so nothing asks for it.
    expect(loadConfig(productionEnv).devSecrets).toEqual([]);
  });

  it('never signs webhooks with JWT_SECRET outside production either', () => {
    const config = loadConfig({ JWT_SECRET: STRONG });
    expect(config.WEBHOOK_SECRET).not.toBe(STRONG);
    expect(config.devSecrets).toEqual(['OTP_SECRET']);
  });

  it('bounds slow clients well below Node, and wants the header limit within the request limit', () => {
    expect(loadConfig({})).toMatchObject({
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_REQUEST_TIMEOUT_MS: 30_000,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: 5000,
    });
    expect(failure({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '15000' })).toBe(
      'Invalid HTTP_HEADERS_TIMEOUT_MS (got "20000"): expected at most HTTP_REQUEST_TIMEOUT_MS (15000).',
    );
  });

  it('takes Memcached servers as host:port, with credentials or not, and refuses one without a port', () => {
    expect(loadConfig({ MEMCACHED_SERVERS: 'a:11211,u:p@10.0.0.2:11212' }).MEMCACHED_SERVERS).toBe(
      'a:11211,u:p@10.0.0.2:11212',
    );
    for (const servers of ['foo', 'a:11211,b', 'a:11211,', 'a:port', 'a:11211 b:11212']) {
      expect(failure({ MEMCACHED_SERVERS: servers })).toMatch(/^Invalid MEMCACHED_SERVERS/);
    }
  });

  it('takes Redis Cluster seeds as host:port, and refuses a KEY_PREFIX with braces there', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000,10.0.0.2:7001' }).REDIS_CLUSTER_NODES).toBe(
      'a:7000,10.0.0.2:7001',
    );
    expect(failure({ REDIS_CLUSTER_NODES: 'a:7000,b' })).toMatch(/^Invalid REDIS_CLUSTER_NODES/);
    // Braces in the prefix would be every key's hash tag: the whole deployment on one shard.
    expect(failure({ REDIS_CLUSTER_NODES: 'a:7000', KEY_PREFIX: '{v}:' })).toMatch(
      /^Invalid KEY_PREFIX: with REDIS_CLUSTER_NODES/,
    );
    expect(loadConfig({ KEY_PREFIX: '{v}:' }).KEY_PREFIX).toBe('{v}:');
  });

  it('refuses production without PUBLIC_URL or EMAIL_LINK_BASE_URL, naming both', () => {
    expect(failure({ ...productionEnv, PUBLIC_URL: '' })).toBe(
      'Missing PUBLIC_URL: production needs PUBLIC_URL or EMAIL_LINK_BASE_URL, the public address email links point at.',
    );
    const linkOnly = { ...productionEnv, PUBLIC_URL: '' };
    const config = loadConfig({
      ...linkOnly,
      EMAIL_LINK_BASE_URL: 'https://app.example.com/confirm',
    });
    expect(config.EMAIL_LINK_BASE_URL).toBe('https://app.example.com/confirm');
    // A PUBLIC_URL that is there but refused gets its own line, not a second one saying it is missing.
    expect(failure({ ...productionEnv, PUBLIC_URL: 'verify.example.com' })).toMatch(
      /^Invalid PUBLIC_URL \(got "verify.example.com"\): expected an absolute http\(s\) URL\.$/,
    );
  });

  it.each([
    'PUBLIC_URL',
    'EMAIL_LINK_BASE_URL',
    'VERIFIED_WEBHOOK_URL',
    'TWILIO_API_BASE_URL',
    'SENDGRID_API_BASE_URL',
  ])('refuses a %s with a scheme other than http or https', (name) => {
    for (const url of ['javascript:alert(1)', 'ftp://files.example.com', 'data:text/plain,hello']) {
      expect(failure({ [name]: url })).toBe(
        `Invalid ${name} (got "${url}"): expected an absolute http(s) URL.`,
      );
    }
  });

  it('refuses the removed image captcha, naming what to use instead', () => {
    expect(failure({ BOT_PROTECTION: 'captcha' })).toBe(
      'Invalid BOT_PROTECTION (got "captcha"): expected off or pow; the image captcha was removed because a script reads it back in milliseconds: use pow (proof-of-work).',
    );
    expect(failure({ BOT_PROTECTION: 'hcaptcha' })).toBe(
      'Invalid BOT_PROTECTION (got "hcaptcha"): expected off or pow.',
    );
  });

  it('refuses a proof-of-work cap below the base difficulty', () => {
    expect(failure({ CHALLENGE_MAX_NUMBER: '2000000', CHALLENGE_MAX_NUMBER_CAP: '1000000' })).toBe(
      'Invalid CHALLENGE_MAX_NUMBER_CAP (got 1000000): expected at least CHALLENGE_MAX_NUMBER (2000000).',
    );
    expect(buildConfig({ CHALLENGE_MAX_NUMBER_CAP: '1000000' }).CHALLENGE_MAX_NUMBER_CAP).toBe(
      1_000_000,
    );
  });

  it('wants the provider credentials of the chosen provider', () => {
    expect(failure({ SMS_PROVIDER: 'twilio' })).toMatch(/TWILIO_ACCOUNT_SID/);
    expect(failure({ EMAIL_PROVIDER: 'sendgrid', SENDGRID_API_KEY: 'k' })).toMatch(/EMAIL_FROM/);
  });

  it('reports every problem of one start in one error, one line each naming its variable', () => {
    const error = refusal({
      ...productionEnv,
      OTP_LENGTH: '4',
      PORT: 'http',
      TRUST_PROXY: 'true',
      CHALLENGE_TTL_SECONDS: 'soon',
      STORE: 'memory',
      SMS_PROVIDER: 'mock',
      OTP_SECRET: 'short',
      JWT_SECRET: '',
      SENDGRID_API_KEY: '',
    });
    const named = [
      'OTP_LENGTH',
      'PORT',
      'TRUST_PROXY',
      'CHALLENGE_TTL_SECONDS',
      'STORE',
      'SMS_PROVIDER',
      'OTP_SECRET',
      'JWT_SECRET',
      'SENDGRID_API_KEY',
    ];
    for (const name of named) lineFor(error.problems, name);
    expect(error.problems).toHaveLength(named.length);
    expect(error.message.split('\n')).toEqual(error.problems);
    // No webhook is configured, so WEBHOOK_SECRET is not needed.
    expect(error.message).not.toContain('WEBHOOK_SECRET');
    expect(error.message).not.toContain('short');
  });

  it('adds no "missing" line for a variable whose value was already refused', () => {
    const error = refusal({
      EMAIL_PROVIDER: 'sendgrid',
      SENDGRID_API_KEY: 'k',
      OTP_TTL_SECONDS: 'x',
    });
    expect(error.problems).toEqual([
      'Invalid OTP_TTL_SECONDS (got "x"): expected an integer from 30 to 86400.',
      'Missing EMAIL_FROM: required when EMAIL_PROVIDER=sendgrid.',
    ]);
  });

  it('keeps a refused value on its one line and never shows a credential', () => {
    const error = refusal({
      SMS_TEMPLATE: 'no code here\nsecond line',
      KEY_PREFIX: 'has space',
      VERIFIED_WEBHOOK_URL: 'https://hook:pa55word@',
    });
    expect(error.problems).toHaveLength(3);
    expect(lineFor(error.problems, 'SMS_TEMPLATE')).toContain('(got "no code here\\nsecond line")');
    // KEY_PREFIX is no secret even though its name contains KEY.
    expect(lineFor(error.problems, 'KEY_PREFIX')).toContain('(got "has space")');
    expect(error.message).not.toContain('pa55word');
  });

  // Each of these breaks every send, or the start itself, long after loadConfig used to accept it.
  describe.each([
    {
      name: 'TWILIO_ACCOUNT_SID',
      accepted: ['AC0123456789abcdef0123456789abcdef', 'AC0123456789ABCDEF0123456789ABCDEF'],
      // An API key SID (SK...) is the usual mix-up; the others are typos and truncations.
      refused: [
        'SK0123456789abcdef0123456789abcdef',
        'AC123',
        'AC0123456789abcdef0123456789abcdeg',
      ],
      expected: 'AC followed by 32 hexadecimal digits',
    },
    {
      name: 'TWILIO_MESSAGING_SERVICE_SID',
      accepted: ['MG0123456789abcdef0123456789abcdef'],
      refused: ['AC0123456789abcdef0123456789abcdef', 'MG0123456789abcdef', 'my-service'],
      expected: 'MG followed by 32 hexadecimal digits',
    },
    {
      name: 'TWILIO_FROM',
      accepted: ['+15005550006', '+442071838750', 'Acme', 'Acme 2FA', 'ACME1234567'],
      // No +, a leading zero, too long, a 12-character sender ID, punctuation, digits only.
      refused: [
        '15005550006',
        '+0123456',
        '+1234567890123456',
        'Acme Company',
        'Acme-2FA',
        '12345',
      ],
      expected: 'E.164',
    },
    {
      name: 'EMAIL_FROM',
      accepted: ['no-reply@example.com', 'Acme <no-reply@example.com>', 'Acme Verify<a@b.example>'],
      refused: ['no-reply', 'Acme no-reply@example.com', '<no-reply@example.com>', 'Acme <nope>'],
      expected: 'an email address, optionally with a display name',
    },
    {
      name: 'REDIS_URL',
      accepted: ['redis://cache:6379', 'rediss://user:pw@cache:6380/2', 'unix:///run/redis.sock'],
      // The Redis client refused these only when it first connected, without naming REDIS_URL.
      refused: [
        'foo',
        'foo://bar',
        'http://cache:6379',
        'redis://cache/zero',
        'redis://:pw@cache:99999',
      ],
      expected: 'a redis://, rediss:// or unix:// URL',
    },
    {
      name: 'TRUST_PROXY',
      accepted: [
        'false',
        'true',
        '2',
        '10.0.0.1',
        '10.0.0.0/8, fd00::/8',
        '10.0.0.0/255.0.0.0',
        'loopback,uniquelocal',
      ],
      // Express refused these only when the app was built, without naming TRUST_PROXY.
      refused: [
        'yes',
        'proxy',
        '10.0.0.0/33',
        '10.0.0.0/0',
        '10.0.0.0/255.0.255.0',
        'loopback,',
        '::1/129',
      ],
      expected: 'false, true, a hop count, or comma-separated proxy IP addresses, CIDR subnets',
    },
  ])('$name', ({ name, accepted, refused, expected }) => {
    it.each(accepted)('accepts %j', (value) => {
      expect(() => buildConfig({ [name]: value })).not.toThrow();
    });

    it.each(refused)('refuses %j, naming the variable', (value) => {
      const message = failure({ [name]: value });
      expect(message).toMatch(new RegExp(`^Invalid ${name} \\(got ".*"\\): expected .+\\.$`));
      expect(message).toContain(expected);
    });
  });

  it('hands every TRUST_PROXY it accepts to Express as Express accepts it', () => {
    for (const value of [
      '2',
      'true',
      '10.0.0.0/8, fd00::/8',
      '10.0.0.0/255.0.0.0',
      'loopback,uniquelocal',
    ]) {
      const { TRUST_PROXY } = buildConfig({ TRUST_PROXY: value });
      expect(() => express().set('trust proxy', TRUST_PROXY)).not.toThrow();
    }
  });

  it('does not show the password of a refused REDIS_URL', () => {
    const message = failure({ REDIS_URL: 'redis://:hunter2@cache:99999' });
    expect(message).toContain('(got "redis://***@cache:99999")');
    expect(message).not.toContain('hunter2');
  });

  it('treats empty values as unset, so a copied .env.example works', () => {
    expect(buildConfig({ EMAIL_LINK_BASE_URL: '', PORT: '' }).PORT).toBe(3000);
  });

  it('is documented in .env.example and the README, generated from the schema', () => {
    const root = join(__dirname, '..');
    expect(readFileSync(join(root, '.env.example'), 'utf8')).toBe(renderEnvExample());
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(renderTable());
  });
});

/**
 * The real start: the server entry as a process, from an empty working directory (no ./.env) and
 * with only the settings given, as an operator would start it.
 */
describe('configuration at start-up', () => {
  const ROOT = join(__dirname, '..');
  const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
  const SERVER = join(ROOT, 'src', 'server.ts');
  let workDir: string;

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'verifyd-config-'));
  });

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  function start(
    env: Record<string, string>,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        TSX,
        [SERVER],
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
  }

  it('lists every bad setting on stderr, one line each, and exits 1 without listening', async () => {
    const run = await start({
      ...productionEnv,
      PORT: '0',
      OTP_LENGTH: 'six',
      STORE: 'redis',
      REDIS_URL: 'http://cache:6379',
      TRUST_PROXY: 'proxy',
      EMAIL_PROVIDER: 'mock',
      TWILIO_ACCOUNT_SID: 'SK0123456789abcdef0123456789abcdef',
      TWILIO_AUTH_TOKEN: '',
      TWILIO_FROM: 'Acme Company',
      EMAIL_FROM: 'Acme no-reply@example.com',
      OTP_SECRET: 'tiny-secret',
      PUBLIC_URL: '',
    });
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split('\n');
    const named = [
      'OTP_LENGTH',
      'REDIS_URL',
      'TRUST_PROXY',
      'EMAIL_PROVIDER',
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
      'TWILIO_FROM',
      'EMAIL_FROM',
      'OTP_SECRET',
      'PUBLIC_URL',
    ];
    expect(lines).toHaveLength(named.length);
    for (const name of named) {
      const pattern = new RegExp(`^verifyd: (?:Invalid|Missing) ${name}\\b`);
      expect(lines.filter((line) => pattern.test(line))).toHaveLength(1);
    }
    expect(run.stderr).not.toContain('tiny-secret');
    // Nothing was logged: the process stopped before the logger and the listener existed.
    expect(run.stdout).toBe('');
  });
});
