/**
 * A development instance must not be exploitable when somebody exposes it: secrets fixed in the
 * source let anybody sign proofs its users' apps accept, and /dev/outbox hands out every code.
 */
import { Writable } from 'node:stream';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { buildConfig, loadConfig, MIN_SECRET_BYTES } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startServer } from '../../src/server';
import { buildTestApp, lastCode } from '../support/app';

/** What src/config.ts used as JWT_SECRET when none was set, before secrets became random. */
const OLD_FIXED_JWT_SECRET = 'verifyd-development-jwt-secret-do-not-use-in-production';
const SECRETS = ['OTP_SECRET', 'JWT_SECRET', 'WEBHOOK_SECRET'] as const;
const PHONE = '+15551234567';
const REMOTE = '203.0.113.7';
const BURST = 50;

describe('development secrets', () => {
  it('are random, of full strength, and different at every start', () => {
    const starts = [loadConfig({}), loadConfig({}), buildConfig(), buildConfig()];
    const values = starts.flatMap((config) => SECRETS.map((name) => config[name]));
    expect(new Set(values).size).toBe(values.length);
    for (const value of values) {
      // 32 random bytes, written in base64url.
      expect(Buffer.from(value, 'base64url')).toHaveLength(MIN_SECRET_BYTES);
      expect(Buffer.byteLength(value)).toBeGreaterThanOrEqual(MIN_SECRET_BYTES);
    }
    // WEBHOOK_SECRET signs nothing without VERIFIED_WEBHOOK_URL, so it goes unmentioned.
    for (const config of starts) expect(config.devSecrets).toEqual(['OTP_SECRET', 'JWT_SECRET']);
  });

  it('refuse a proof forged with the old fixed default, and accept the real one', async () => {
    const { app, outbox, config } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const checked = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) })
      .expect(200);
    // The app checks proofs as the README shows, with the JWT_SECRET this instance uses.
    const check = (proof: string) =>
      jwt.verify(proof, config.JWT_SECRET, {
        algorithms: ['HS256'],
        issuer: 'verifyd',
        audience: 'verifyd:proof',
      });
    expect(check(checked.body.proof)).toMatchObject({ sub: PHONE });
    const forged = jwt.sign(
      { sub: '+15550009999', channel: 'sms', purpose: 'verification' },
      OLD_FIXED_JWT_SECRET,
      { algorithm: 'HS256', issuer: 'verifyd', audience: 'verifyd:proof', expiresIn: 300 },
    );
    expect(() => check(forged)).toThrow('invalid signature');
  });
});

describe('/dev/outbox outside this machine', () => {
  async function withPendingCode(env: Record<string, string> = {}) {
    const test = buildTestApp({ env });
    await request(test.app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    return { ...test, code: lastCode(test.outbox, PHONE) };
  }

  it('answers 404 to a burst of remote clients, through a trusted proxy or not', async () => {
    for (const env of [{ TRUST_PROXY: '1' }, {}] as Record<string, string>[]) {
      const { app, outbox, code } = await withPendingCode(env);
      const answers = await Promise.all(
        Array.from({ length: BURST }, (_, i) => {
          const remote = (r: request.Test) =>
            i % 3 === 0
              ? r.set('x-forwarded-for', REMOTE)
              : i % 3 === 1
                ? r.set('forwarded', `for="[2001:db8::${i}]:4711"`)
                : r.set('x-forwarded-for', `127.0.0.1, ${REMOTE}`);
          const to = encodeURIComponent(PHONE);
          // Every dev route: the outbox, its long poll and event stream, and the inbox page.
          const routes = [
            () => request(app).get(`/dev/outbox?to=${to}`),
            () => request(app).delete('/dev/outbox'),
            () => request(app).delete(`/dev/outbox?to=${to}`),
            () => request(app).get(`/dev/outbox/latest?to=${to}&wait=5`),
            () => request(app).get('/dev/outbox/events'),
            () => request(app).get('/dev'),
            () => request(app).get('/dev/inbox.js'),
          ];
          return remote((routes[i % routes.length] as () => request.Test)());
        }),
      );
      for (const answer of answers) {
        expect(answer.status).toBe(404);
        expect(answer.body.error.code).toBe('not_found');
        expect(answer.text).not.toContain(code);
      }
      // Nobody remote cleared it either.
      expect(outbox.list({ to: PHONE })).toHaveLength(1);
    }
  });

  it('serves a client on this machine, also through a local proxy that names it', async () => {
    const { app, code } = await withPendingCode({ TRUST_PROXY: '1' });
    const direct = await request(app).get('/dev/outbox').expect(200);
    expect(direct.body.messages[0].body).toContain(code);
    const proxied = await request(app)
      .get('/dev/outbox')
      .set('x-forwarded-for', '127.0.0.1')
      .expect(200);
    expect(proxied.body.messages[0].body).toContain(code);
  });

  it('serves remote clients with DEV_ROUTES_PUBLIC=true', async () => {
    const { app, code } = await withPendingCode({ TRUST_PROXY: '1', DEV_ROUTES_PUBLIC: 'true' });
    const remote = await request(app).get('/dev/outbox').set('x-forwarded-for', REMOTE).expect(200);
    expect(remote.body.messages[0].body).toContain(code);
  });
});

describe('start-up warnings', () => {
  async function startLines(env: Record<string, string>): Promise<Array<Record<string, unknown>>> {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      }),
    });
    const running = await startServer(loadConfig({ PORT: '0', ...env }), logger);
    await running.close();
    return lines.map((line) => JSON.parse(line));
  }

  const exposed = (lines: Array<Record<string, unknown>>) =>
    lines.filter((line) => String(line.msg).startsWith('EXPOSED DEVELOPMENT SERVER'));

  it('warns loudly when development listens beyond loopback', async () => {
    const lines = await startLines({ HOST: '0.0.0.0' });
    const [warning, ...more] = exposed(lines);
    expect(more).toEqual([]);
    expect(warning).toMatchObject({ level: 40, host: '0.0.0.0', nodeEnv: 'development' });
    expect(warning?.msg).toContain('NODE_ENV=production');
  });

  it('does not warn about exposure on loopback', async () => {
    for (const HOST of ['127.0.0.1', 'localhost']) {
      expect(exposed(await startLines({ HOST }))).toEqual([]);
    }
  });

  it('says that random secrets change at every start and split instances sharing a store', async () => {
    const lines = await startLines({ HOST: '127.0.0.1', OTP_SECRET: 'x'.repeat(32) });
    const secrets = lines.filter((line) => String(line.msg).includes('random secrets'));
    expect(secrets).toHaveLength(1);
    expect(secrets[0]).toMatchObject({ level: 40, secrets: ['JWT_SECRET'] });
    expect(secrets[0]?.msg).toContain('instances sharing a store disagree');
  });

  it('names WEBHOOK_SECRET only when a webhook would be signed with it', async () => {
    const given = { HOST: '127.0.0.1', OTP_SECRET: 'x'.repeat(32), JWT_SECRET: 'y'.repeat(32) };
    const random = (lines: Array<Record<string, unknown>>) =>
      lines.filter((line) => String(line.msg).includes('random secrets'));
    expect(random(await startLines(given))).toEqual([]);
    const hooked = random(
      await startLines({ ...given, VERIFIED_WEBHOOK_URL: 'https://app.example.com/hook' }),
    );
    expect(hooked).toHaveLength(1);
    expect(hooked[0]).toMatchObject({ secrets: ['WEBHOOK_SECRET'] });
  });
});
