/**
 * The README's CI guide, held to the product: every variable it names is a setting verifyd has,
 * its examples are valid configurations and valid workflow YAML, and the `npx verifyd` settings,
 * run by the built server, let a CI-like burst from one address through where the defaults would
 * not, with codes read from the long poll and the test identity's fixed code.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { buildConfig, configSchema, loadConfig } from '../../src/config';
import { ROOT } from '../support/build';
import { getJson, postJson } from '../support/e2e-client';
import { sectionBlocks } from '../support/readme';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const run = promisify(execFile);
const SECTION = '## Running verifyd in CI';
const SETTINGS = new Set(Object.keys(configSchema.shape));
const VERSION = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

/** The section's text, from its heading to the next heading of its level. */
function sectionText(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  const end = readme.indexOf('\n## ', start + SECTION.length + 2);
  if (start < 0) throw new Error(`README.md has no "${SECTION}"`);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The variables the shell example exports, with their values. */
function exportedEnv(): Record<string, string> {
  const block = sectionBlocks(SECTION).find((b) => b.lang === 'sh');
  if (!block) throw new Error('the CI guide has no sh block');
  const statement = /^export ([\s\S]*?)\n(?!\s)/m.exec(block.code.replace(/\\\n\s*/g, ' '));
  const env: Record<string, string> = {};
  for (const [, name, value] of (statement?.[1] ?? '').matchAll(/([A-Z][A-Z0-9_]*)=(\S+)/g)) {
    env[name as string] = value as string;
  }
  return env;
}

type Workflow = {
  jobs: Record<
    string,
    {
      services?: Record<string, { env?: Record<string, unknown> }>;
      steps: { run?: string; env?: Record<string, unknown> }[];
    }
  >;
};

/** The workflow examples, parsed as GitHub Actions parses them. */
function workflows(): Workflow[] {
  return sectionBlocks(SECTION)
    .filter((b) => b.lang === 'yaml')
    .map((b) => parseYaml(b.code) as Workflow);
}

/** An env map as the runner hands it to a process: every value a string. */
const asEnv = (env: Record<string, unknown> = {}) =>
  Object.fromEntries(Object.entries(env).map(([name, value]) => [name, String(value)]));

describe('the CI guide', () => {
  it('names only settings verifyd has', () => {
    const named = new Set(sectionText().match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g));
    expect([...named].filter((name) => !SETTINGS.has(name))).toEqual([]);
    expect(named.size).toBeGreaterThan(10);
  });

  it('pins the version of this package wherever it installs it', () => {
    const pinned = [...sectionText().matchAll(/verifyd@(\d+\.\d+\.\d+)/g)].map(([, v]) => v);
    expect(pinned.length).toBeGreaterThanOrEqual(3);
    expect(new Set(pinned)).toEqual(new Set([VERSION]));
  });

  it('exports settings that load, and that raise every limit one runner would trip', () => {
    const env = exportedEnv();
    const config = loadConfig(env);
    const defaults = buildConfig();
    expect(config.NODE_ENV).toBe('test');
    expect(config.SEND_COOLDOWN_SECONDS).toBe(0);
    for (const limit of [
      'RATE_LIMIT_MAX',
      'IP_MAX_TARGETS_PER_HOUR',
      'SEND_MAX_PER_TARGET',
      'RESEND_MAX',
      'SMS_HOURLY_BUDGET',
    ] as const) {
      expect(config[limit]).toBeGreaterThan(defaults[limit]);
      expect(config[limit]).toBeGreaterThanOrEqual(1000);
    }
    // So a start with them logs no warning about secrets.
    expect(config.devSecrets).toEqual([]);
  });

  it('has workflows that parse, whose verifyd settings load, with a reachable service container', () => {
    const [steps, service] = workflows();
    expect(steps && service).toBeTruthy();
    const start = Object.values(steps!.jobs)[0]!.steps.find((s) => s.run?.includes('npx'));
    expect(start?.run).toContain(`npx --yes verifyd@${VERSION}`);
    const stepEnv = asEnv(start?.env);
    expect(loadConfig(stepEnv).SEND_COOLDOWN_SECONDS).toBe(0);

    const container = Object.values(Object.values(service!.jobs)[0]!.services ?? {})[0];
    const serviceEnv = asEnv(container?.env);
    const config = loadConfig(serviceEnv);
    // Reached through a mapped port: listening beyond loopback, dev routes for non-local clients.
    expect(config.HOST).toBe('0.0.0.0');
    expect(config.DEV_ROUTES_PUBLIC).toBe(true);
    // The app under test checks proofs with the secret verifyd signs them with.
    for (const workflow of [steps!, service!]) {
      const job = Object.values(workflow.jobs)[0]!;
      const tests = job.steps.find((s) => s.run === 'npm test');
      const verifydEnv = start?.env ?? container?.env;
      expect(tests?.env?.JWT_SECRET).toBe(verifydEnv?.JWT_SECRET);
    }
  });
});

describe('the npx verifyd settings, run by the built server', () => {
  let verifyd: VerifydProcess;

  beforeAll(async () => {
    verifyd = await startVerifyd(exportedEnv());
  }, 30_000);

  afterAll(() => verifyd?.stop());

  it("answers the guide's wait for /health", async () => {
    const block = sectionBlocks(SECTION).find((b) => b.lang === 'sh')!;
    const wait = block.code.split('\n').find((line) => line.startsWith('timeout 30 sh -c'));
    expect(wait).toBeDefined();
    await run('bash', ['-c', wait!.replaceAll('localhost:3000', `127.0.0.1:${verifyd.port}`)], {
      timeout: 35_000,
    });
  });

  it('lets a burst from one address through: many recipients, quick resends to one', async () => {
    const numbers = Array.from({ length: 30 }, (_, i) => `+1555200${String(i).padStart(4, '0')}`);
    const sends = await Promise.all(
      numbers.map((phone) => postJson(`${verifyd.url}/verify-phone`, { phone })),
    );
    expect(sends.map((s) => s.status)).toEqual(Array(30).fill(202));
    const phone = numbers[0]!;
    let after: string | undefined;
    for (let i = 0; i < 8; i++) {
      const sent = await postJson(`${verifyd.url}/verify-phone`, { phone });
      expect(sent.status).toBe(202);
      // The guide's way to read a code: wait for the message newer than the last one read.
      const query = new URLSearchParams({ to: phone, wait: '10', ...(after ? { after } : {}) });
      const latest = await getJson(`${verifyd.url}/dev/outbox/latest?${query}`);
      expect(latest.status).toBe(200);
      after = latest.body.message.id;
      const checked = await postJson(`${verifyd.url}/verify-phone-code`, {
        phone,
        code: latest.body.message.code,
        verificationId: sent.body.verificationId,
      });
      expect(checked.status).toBe(200);
    }
  });

  it("verifies the guide's test identity with its fixed code, sending nothing", async () => {
    const [number, code] = exportedEnv().TEST_IDENTITIES!.split('=');
    for (let i = 0; i < 3; i++) {
      expect((await postJson(`${verifyd.url}/verify-phone`, { phone: number })).status).toBe(202);
      const checked = await postJson(`${verifyd.url}/verify-phone-code`, { phone: number, code });
      expect(checked.status).toBe(200);
    }
    const outbox = await getJson(`${verifyd.url}/dev/outbox?to=${encodeURIComponent(number!)}`);
    expect(outbox.body.messages).toEqual([]);
  });
});
