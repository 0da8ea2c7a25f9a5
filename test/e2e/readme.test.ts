/**
 * The README, run against the real server process (dist/, started as `npm start` starts it): the
 * Quick start's curl commands with the real curl, then the proof-checking and webhook snippets
 * exactly as printed, fed with what that server produced.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';
import vm from 'node:vm';
import jwt from 'jsonwebtoken';
import { lastCode, postJson } from '../support/e2e-client';
import { firstBlock, sectionBlocks } from '../support/readme';
import { type Captured, startRecordingServer } from '../support/recording-server';
import { sleep } from '../support/servers';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const run = promisify(execFile);

const JWT_SECRET = 'e2e-jwt-secret-0123456789abcdef0123456789';
const WEBHOOK_SECRET = 'e2e-webhook-secret-0123456789abcdef01234';

let verifyd: VerifydProcess | undefined;
let receiver: Awaited<ReturnType<typeof startRecordingServer>> | undefined;
const webhooks: Captured[] = [];

beforeAll(async () => {
  receiver = await startRecordingServer((captured, _req, res) => {
    webhooks.push(captured);
    res.writeHead(204).end();
  });
  verifyd = await startVerifyd({
    NODE_ENV: 'test',
    OTP_SECRET: 'e2e-otp-secret-0123456789abcdef0123456789',
    JWT_SECRET,
    WEBHOOK_SECRET,
    VERIFIED_WEBHOOK_URL: `${receiver.baseUrl}/hooks/verifyd`,
    WEBHOOK_RETRIES: '0',
    // The README's examples name the signup purpose; login is the purpose a signup check refuses.
    PURPOSES: 'verification,signup,login',
  });
}, 30_000);

afterAll(async () => {
  await verifyd?.stop();
  await receiver?.close();
});

/** The Quick start's curl commands, one string per command (continuation lines joined). */
function quickStartCurls(): string[] {
  const block = sectionBlocks('## Quick start').find((candidate) =>
    candidate.code.includes('curl '),
  );
  if (!block) throw new Error('README.md Quick start has no curl block');
  return block.code
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((line) => line.trim().startsWith('curl '));
}

/** Runs one README command against this test's server instead of localhost:3000. */
async function curl(command: string, replacements: Record<string, string> = {}) {
  let line = command.replaceAll('localhost:3000', `127.0.0.1:${verifyd!.port}`);
  for (const [from, to] of Object.entries(replacements)) line = line.replaceAll(from, to);
  if (line.includes('localhost:3000') || /<[^>]+>/.test(line.replace(/#.*$/, ''))) {
    throw new Error(`unfilled placeholder in: ${line}`);
  }
  const { stdout } = await run('bash', ['-c', line], { timeout: 10_000 });
  return JSON.parse(stdout);
}

/** Webhooks received for `to`, waited for up to 5 s (they are posted after the response). */
async function webhooksFor(to: string, count: number): Promise<Captured[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const mine = webhooks.filter((hook) => JSON.parse(hook.body).to === to);
    if (mine.length >= count || Date.now() > deadline) return mine;
    await sleep(50);
  }
}

/** The README's proof-checking function, evaluated as printed, with JWT_SECRET in its env. */
function readmeVerifiedPhone(secret: string): (proof: string) => string {
  const code = firstBlock('### Checking a proof in your app', ['js']);
  return vm.runInNewContext(`${code}\nverifiedPhone;`, {
    require,
    process: { env: { JWT_SECRET: secret } },
  });
}

/** The README's webhook check, evaluated as printed. */
function readmeValidWebhook(): (rawBody: string, header: string, secret: string) => boolean {
  const code = firstBlock('### Webhook', ['js']);
  return vm.runInNewContext(`${code}\nvalidWebhook;`, { require, Buffer });
}

async function verifiedPhoneProof(phone: string, purpose: string): Promise<string> {
  const sent = await postJson(`${verifyd!.url}/verify-phone`, { phone, purpose, userId: 'u-1' });
  expect(sent.status).toBe(202);
  const code = await lastCode(verifyd!.url, phone, sent.body.codeLength);
  // A phone proof and its webhook carry the userId of the send; the check may repeat it.
  const checked = await postJson(`${verifyd!.url}/verify-phone-code`, {
    phone,
    code,
    purpose,
    userId: 'u-1',
  });
  expect(checked.status).toBe(200);
  return checked.body.proof;
}

describe('README Quick start, with curl against the real server', () => {
  it('sends a code, reads it from /dev/outbox, checks it and gets a proof', async () => {
    const [send, outbox, check, ...rest] = quickStartCurls();
    expect(rest).toEqual([]);

    const sent = await curl(send!);
    expect(sent).toMatchObject({ success: true, status: 'pending', to: '+15551234567' });

    const { messages } = await curl(outbox!);
    expect(messages.length).toBeGreaterThan(0);
    const code = new RegExp(`\\b(\\d{${sent.codeLength}})\\b`).exec(messages.at(-1).body)?.[1];
    expect(code).toBeDefined();

    const checked = await curl(check!, { '<the code>': code! });
    expect(checked).toMatchObject({ verified: true, phone: '+15551234567' });
    const claims = jwt.verify(checked.proof, JWT_SECRET, {
      algorithms: ['HS256'],
      issuer: 'verifyd',
      audience: 'verifyd:proof',
    });
    expect(claims).toMatchObject({ sub: '+15551234567', channel: 'sms', purpose: 'verification' });

    // The code was single use: the same command again finds nothing pending.
    const again = await curl(check!, { '<the code>': code! });
    expect(again.error.code).toBe('code_expired');
  });
});

describe("README's proof check, on proofs from the real server", () => {
  it('accepts a signup proof and returns the verified number', async () => {
    const proof = await verifiedPhoneProof('+15551230001', 'signup');
    expect(readmeVerifiedPhone(JWT_SECRET)(proof)).toBe('+15551230001');
  });

  it('refuses a proof for another purpose, a wrong secret and a tampered proof', async () => {
    const proof = await verifiedPhoneProof('+15551230002', 'login');
    expect(() => readmeVerifiedPhone(JWT_SECRET)(proof)).toThrow('wrong proof');

    const signup = await verifiedPhoneProof('+15551230003', 'signup');
    expect(() => readmeVerifiedPhone(`${JWT_SECRET}x`)(signup)).toThrow('invalid signature');
    const [header, payload, signature] = signup.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: '+1' }),
    ).toString('base64url');
    expect(() => readmeVerifiedPhone(JWT_SECRET)(`${header}.${forged}.${signature}`)).toThrow(
      'invalid signature',
    );
  });
});

describe("README's webhook check, on webhooks the real server posted", () => {
  it('posts the documented event, and the README check accepts it', async () => {
    await verifiedPhoneProof('+15551230004', 'signup');
    const [hook, ...more] = await webhooksFor('+15551230004', 1);
    expect(more).toEqual([]);
    expect(hook).toBeDefined();
    expect(hook!.method).toBe('POST');
    expect(hook!.url).toBe('/hooks/verifyd');
    const event = JSON.parse(hook!.body);
    expect(event).toEqual({
      id: expect.any(String),
      event: 'verification.approved',
      channel: 'sms',
      to: '+15551230004',
      userId: 'u-1',
      purpose: 'signup',
      at: expect.any(String),
    });
    expect(new Date(event.at).toISOString()).toBe(event.at);

    const header = hook!.headers['x-verifyd-signature'];
    expect(typeof header).toBe('string');
    const validWebhook = readmeValidWebhook();
    expect(validWebhook(hook!.body, header as string, WEBHOOK_SECRET)).toBe(true);
    // Each thing the README says it checks, it checks.
    expect(
      validWebhook(hook!.body.replace('signup', 'signuq'), header as string, WEBHOOK_SECRET),
    ).toBe(false);
    expect(validWebhook(hook!.body, header as string, `${WEBHOOK_SECRET}x`)).toBe(false);
    const old = Math.floor(Date.now() / 1000) - 600;
    const oldSignature = createHmac('sha256', WEBHOOK_SECRET)
      .update(`${old}.${hook!.body}`)
      .digest('hex');
    expect(validWebhook(hook!.body, `t=${old},v1=${oldSignature}`, WEBHOOK_SECRET)).toBe(false);
  });
});
