/**
 * The package as a user gets it: `npm pack`, the tarball installed into an empty folder outside
 * the repository (so nothing resolves from our node_modules), then used as the README says:
 * required from CommonJS, the Embedding example run as printed and type-checked as TypeScript,
 * and `npx verifyd` started and asked for /health.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './support/build';
import { getJson } from './support/e2e-client';
import { firstBlock } from './support/readme';
import { describeRedis, SHARED_REDIS_URL, uniquePrefix } from './support/servers';
import { startVerifyd, type VerifydProcess } from './support/verifyd-process';

const execFileAsync = promisify(execFile);

let work: string;
let app: string;
let tarballFiles: string[] = [];
const started: VerifydProcess[] = [];

/** Runs a program with a time bound; rejects with its output when it fails. */
async function run(file: string, args: string[], cwd: string, timeoutMs: number) {
  try {
    return await execFileAsync(file, args, {
      cwd,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      // Our own npm_* variables (jest may run under `npm test`) must not steer the user's npm.
      env: Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')),
      ),
    });
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}`);
  }
}

/** The version of a package in our own lock, so the install is served from npm's cache. */
const ourVersion = (name: string): string =>
  JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];

// Each test's bound is a little above the bound of the command it runs, so a slow command fails
// with its own output rather than with jest's bare timeout.

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'verifyd-packaging-'));
  const packDir = path.join(work, 'pack');
  app = path.join(work, 'app');
  mkdirSync(packDir);
  mkdirSync(app);

  // --ignore-scripts: the global setup has just built dist/, and a second build by prepare
  // would rewrite it under the end-to-end suites running in the other worker.
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir],
    ROOT,
    60_000,
  );
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: { path: string }[] }>;
  tarballFiles = packed!.files.map((file) => file.path);

  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'embedding-app', version: '1.0.0', private: true }),
  );
  // The README's install lines: the production install, then the TypeScript typings.
  await run(
    'npm',
    [
      'install',
      '--omit=dev',
      ...NPM_FLAGS,
      path.join(packDir, packed!.filename),
      `express@${ourVersion('express')}`,
    ],
    app,
    120_000,
  );
  await run(
    'npm',
    [
      'install',
      '--save-dev',
      ...NPM_FLAGS,
      `@types/express@${ourVersion('@types/express')}`,
      `@types/node@${ourVersion('@types/node')}`,
    ],
    app,
    120_000,
  );
}, 300_000);

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('ships the built package, what a user reads and its licence, and no tests, bench or sources', () => {
    for (const needed of [
      'package.json',
      'README.md',
      'SECURITY.md',
      'LICENSE',
      '.env.example',
      'bin/verifyd.js',
      'bin/verifyd-cli.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/server.js',
      'dist/routes/index.js',
      'dist/services/verification.js',
      'dist/scripts/cli.js',
      // The dev inbox page is served from these files as they are: no build step for users.
      'assets/dev-inbox/index.html',
      'assets/dev-inbox/inbox.js',
      'assets/dev-inbox/inbox.css',
    ]) {
      expect(tarballFiles).toContain(needed);
    }
    const unwanted = tarballFiles.filter(
      (file) =>
        /^(test|bench|dist\/test|dist\/bench)\//.test(file) ||
        file.endsWith('.map') ||
        (file.endsWith('.ts') && !file.endsWith('.d.ts')),
    );
    expect(unwanted).toEqual([]);
  });

  it('points main, types and bin at files it ships', () => {
    const manifest = JSON.parse(
      readFileSync(path.join(app, 'node_modules', 'verifyd', 'package.json'), 'utf8'),
    );
    expect(manifest.private).toBeUndefined();
    for (const file of [manifest.main, manifest.types, ...Object.values(manifest.bin)]) {
      expect(tarballFiles).toContain(path.posix.normalize(file as string));
    }
  });
});

describe('the installed package', () => {
  it('can be required from CommonJS', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '-e',
        `const v = require('verifyd');
         console.log(JSON.stringify(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x]))));`,
      ],
      app,
      20_000,
    );
    expect(JSON.parse(stdout)).toMatchObject({
      createVerificationRouter: 'function',
      createApp: 'function',
      createProviders: 'function',
      createStore: 'function',
      createLogger: 'function',
      loadConfig: 'function',
    });
  }, 30_000);

  it("runs the README's Embedding example as printed, and the router it builds verifies a phone", async () => {
    const example = firstBlock('## Embedding', ['js', 'ts']);
    // The example as printed, plus an export so the check below can drive what it built.
    writeFileSync(path.join(app, 'embed.mjs'), `${example}\nexport { app, store };\n`);
    writeFileSync(
      path.join(app, 'drive.mjs'),
      `import { app, store } from './embed.mjs';
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = 'http://127.0.0.1:' + server.address().port + '/verify';
const post = (route, body) => fetch(base + route, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
}).then(async (res) => ({ status: res.status, body: await res.json() }));
const phone = '+15551250000';
const sent = await post('/verify-phone', { phone });
const outbox = await fetch(base + '/dev/outbox?to=' + encodeURIComponent(phone)).then((r) => r.json());
const code = /\\b(\\d{6})\\b/.exec(outbox.messages.at(-1).body)[1];
const checked = await post('/verify-phone-code', { phone, code });
// The email link is built on the example's publicUrl; its path and query open the mounted page.
const address = 'embed@example.com';
await post('/verify-email', { email: address });
const mail = await fetch(base + '/dev/outbox?to=' + encodeURIComponent(address)).then((r) => r.json());
const link = /https?:\\/\\/\\S+token=[\\w.-]+/.exec(mail.messages.at(-1).body)[0];
const page = await fetch(base + link.slice(link.indexOf('/verify-email-token')));
server.close();
await store.close();
console.log('RESULT ' + JSON.stringify({ sent: sent.status, checked, link, page: page.status }));
process.exit(0);
`,
    );
    const { stdout } = await run(process.execPath, ['drive.mjs'], app, 30_000);
    // The example's own logger writes to stdout too, and may flush after the result line.
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`the example printed no result:\n${stdout}`);
    const result = JSON.parse(line.slice('RESULT '.length));
    expect(result.sent).toBe(202);
    expect(result.checked.status).toBe(200);
    expect(result.checked.body).toMatchObject({ verified: true, phone: '+15551250000' });
    expect(result.link).toMatch(/^https:\/\/app\.example\.com\/verify\/verify-email-token\?token=/);
    expect(result.page).toBe(200);
  }, 60_000);

  it("type-checks the README's Embedding example against the installed typings", async () => {
    const example = firstBlock('## Embedding', ['js', 'ts']);
    writeFileSync(path.join(app, 'embed.mts'), example);
    // The same example with one wrong line: the typings must be real types, not a silent `any`.
    writeFileSync(
      path.join(app, 'wrong.mts'),
      `${example}\nconst port: string = config.PORT;\nexport { port };\n`,
    );
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['embed.mts', 'wrong.mts'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
    const failure = await run(process.execPath, [tsc, '-p', '.'], app, 120_000).then(
      () => new Error('tsc accepted wrong.mts'),
      (error: Error) => error,
    );
    const errors = failure.message.split('\n').filter((line) => line.includes('error TS'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^wrong\.mts\(\d+,\d+\): error TS2322: Type 'number'/);
  }, 150_000);

  it('starts with npx verifyd and answers /health', async () => {
    const server = await startVerifyd(
      { NODE_ENV: 'development', LOG_LEVEL: 'warn' },
      { file: 'npx', args: ['--no', 'verifyd'], cwd: app },
    );
    started.push(server);
    const health = await getJson(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', store: { backend: 'memory', ok: true } });
    // The dev inbox, from the installed package's own files.
    for (const [file, type] of [
      ['/dev', 'text/html'],
      ['/dev/inbox.js', 'text/javascript'],
      ['/dev/inbox.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${server.url}${file}`, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(
        await res.text(),
        // Byte for byte what the repository holds.
      ).toBe(
        readFileSync(
          path.join(ROOT, 'assets', 'dev-inbox', file === '/dev' ? 'index.html' : file.slice(5)),
          'utf8',
        ),
      );
    }
  }, 60_000);

  it('runs its maintenance CLI with npx verifyd-cli', async () => {
    const failure = await run('npx', ['--no', 'verifyd-cli', 'no-such-command'], app, 30_000).then(
      () => new Error('verifyd-cli accepted an unknown command'),
      (error: Error) => error,
    );
    expect(failure.message).toContain('Unknown command "no-such-command"');
    expect(failure.message).toContain('Commands:');
  }, 60_000);
});

describeRedis('the installed package in production', () => {
  it('starts with NODE_ENV=production npx verifyd on Redis, with no dev dependency', async () => {
    const secret = 'packaging-production-secret-0123456789abcdef';
    const server = await startVerifyd(
      {
        NODE_ENV: 'production',
        STORE: 'redis',
        REDIS_URL: SHARED_REDIS_URL,
        KEY_PREFIX: uniquePrefix('packaging'),
        OTP_SECRET: secret,
        JWT_SECRET: `${secret}-jwt`,
        PUBLIC_URL: 'https://verify.example.com',
        SMS_PROVIDER: 'twilio',
        TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
        TWILIO_AUTH_TOKEN: 'packaging-test-token',
        TWILIO_FROM: '+15005550006',
        EMAIL_PROVIDER: 'sendgrid',
        SENDGRID_API_KEY: 'SG.packaging-test-key',
        EMAIL_FROM: 'verify@example.com',
      },
      { file: 'npx', args: ['--no', 'verifyd'], cwd: app },
    );
    started.push(server);
    const health = await getJson(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', store: { backend: 'redis', ok: true } });
    // Production serves no mock outbox.
    const outbox = await fetch(`${server.url}/dev/outbox`, { signal: AbortSignal.timeout(5000) });
    expect(outbox.status).toBe(404);
  }, 60_000);
});
