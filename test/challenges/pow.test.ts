import express from 'express';
import request from 'supertest';
import { createChallengeRouter } from '../../routes/challenges';
import {
  type AltchaChallenge,
  createPowChallengeService,
  type PowChallengeService,
} from '../../services/pow-challenge';
import { buildConfig } from '../../src/config';
import { VerifydError } from '../../src/errors';
import { createErrorHandler } from '../../src/http/error-handler';
import { createLogger } from '../../src/logger';
import { MemoryStore } from '../../src/store/memory';
import { altchaSolution, solveAltcha } from '../support/altcha-solver';

const SECRET = 'pow-test-secret-pow-test-secret-pow-test';
const TTL = 60;
const SESSION_TTL = 600;

// The app's own error handler, so statuses and bodies are the ones clients see.
const errorHandler = createErrorHandler(createLogger({ level: 'silent' }));

function setup(
  options: { start?: number; maxNumber?: number; kind?: 'off' | 'captcha' | 'pow' } = {},
) {
  let now = options.start ?? Date.now();
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  const store = new MemoryStore({ keyPrefix: 'test:', now: clock.now });
  const config = buildConfig({
    CHALLENGE_MAX_NUMBER: String(options.maxNumber ?? 5000),
    CHALLENGE_TTL_SECONDS: String(TTL),
    CHALLENGE_SESSION_TTL_SECONDS: String(SESSION_TTL),
  });
  const pow = createPowChallengeService({ store, config, secret: SECRET, now: clock.now });
  const app = express();
  app.use(express.json());
  app.use(createChallengeRouter({ pow, botProtection: { kind: options.kind ?? 'pow' } }));
  app.use(errorHandler);
  return { app, pow, store, clock };
}

const solve = solveAltcha;

async function fetchChallenge(app: express.Express): Promise<AltchaChallenge> {
  const response = await request(app).get('/challenge').expect(200);
  return response.body as AltchaChallenge;
}

async function rejection(pow: PowChallengeService, payload: string): Promise<VerifydError> {
  const error = await pow.redeem(payload).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof VerifydError))
    throw new Error(`expected a VerifydError, got ${String(error)}`);
  return error;
}

describe('proof-of-work challenge', () => {
  it('serves an ALTCHA v2 challenge, signed, expiring, uncacheable', async () => {
    const { app, clock } = setup();
    const response = await request(app).get('/challenge').expect(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const { parameters, signature } = response.body;
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(parameters).toMatchObject({ algorithm: 'SHA-256', cost: 1 });
    expect(parameters.keySignature).toMatch(/^[0-9a-f]{64}$/);
    expect(parameters.expiresAt).toBe(Math.floor(clock.now() / 1000) + TTL);
  });

  it('is solved by altcha-lib’s own solver, redeemed once for a session, and a replay fails', async () => {
    const { app, pow } = setup();
    const payload = await solve(await fetchChallenge(app));

    const first = await request(app)
      .post('/challenge/verify')
      .send({ altcha: payload })
      .expect(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(Object.keys(first.body).sort()).toEqual(['expiresAt', 'session']);
    expect(first.body.session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await expect(pow.checkSession(first.body.session)).resolves.toBe(true);

    const replay = await request(app)
      .post('/challenge/verify')
      .send({ altcha: payload })
      .expect(403);
    expect(replay.body.error).toMatchObject({ code: 'challenge_failed', reason: 'replayed' });
  });

  it('keeps challenge difficulty within CHALLENGE_MAX_NUMBER', async () => {
    const { app } = setup({ maxNumber: 1000 });
    for (let i = 0; i < 5; i++) {
      const challenge = await fetchChallenge(app);
      const solution = await altchaSolution(challenge);
      expect(solution?.counter).toBeGreaterThanOrEqual(1);
      expect(solution?.counter).toBeLessThanOrEqual(1000);
    }
  });

  it('solves within a few seconds at the default difficulty', async () => {
    const { app, pow } = setup({ maxNumber: buildConfig().CHALLENGE_MAX_NUMBER });
    const payload = await solve(await fetchChallenge(app));
    await expect(pow.redeem(payload)).resolves.toHaveProperty('session');
  });

  it('rejects an expired challenge (injected clock)', async () => {
    const { app, pow, clock } = setup();
    const payload = await solve(await fetchChallenge(app));
    clock.advance(TTL * 1000);
    const error = await rejection(pow, payload);
    expect(error.code).toBe('challenge_failed');
    expect(error.details).toMatchObject({ kind: 'pow', reason: 'expired' });
  });

  it('rejects a challenge altcha-lib itself finds expired (real clock)', async () => {
    // Issued two lifetimes ago by the real clock, but the injected clock has not moved: only
    // altcha-lib's own expiry check can catch it.
    const { app, pow } = setup({ start: Date.now() - 2 * TTL * 1000 });
    const payload = await solve(await fetchChallenge(app));
    const error = await rejection(pow, payload);
    expect(error.details).toMatchObject({ reason: 'expired' });
  });

  it('rejects a tampered signature, tampered parameters and a wrong solution', async () => {
    const { app } = setup();
    const challenge = await fetchChallenge(app);
    const solution = await altchaSolution(challenge);
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
    const flip = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

    const badSignature = { ...challenge, signature: flip(challenge.signature ?? '') };
    const longerLife = {
      ...challenge,
      parameters: {
        ...challenge.parameters,
        expiresAt: (challenge.parameters.expiresAt ?? 0) + 3600,
      },
    };
    const wrongKey = { ...solution, derivedKey: flip(solution?.derivedKey ?? '') };
    for (const payload of [
      encode({ challenge: badSignature, solution }),
      encode({ challenge: longerLife, solution }),
      encode({ challenge, solution: wrongKey }),
    ]) {
      const response = await request(app)
        .post('/challenge/verify')
        .send({ altcha: payload })
        .expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', reason: 'invalid' });
    }
    // None of the failures used the challenge up.
    await request(app)
      .post('/challenge/verify')
      .send({ altcha: encode({ challenge, solution }) })
      .expect(200);
  });

  it('rejects a challenge signed with another secret', async () => {
    const { pow } = setup();
    const other = createPowChallengeService({
      store: new MemoryStore(),
      config: buildConfig({ CHALLENGE_MAX_NUMBER: '1000' }),
      secret: 'another-secret-another-secret-another',
    });
    const error = await rejection(pow, await solve(await other.issue()));
    expect(error.details).toMatchObject({ reason: 'invalid' });
  });

  it('answers malformed payloads with challenge_failed and bad bodies with invalid_request', async () => {
    const { app } = setup();
    for (const altchaField of ['not base64 json', Buffer.from('{"a":1}').toString('base64')]) {
      const response = await request(app)
        .post('/challenge/verify')
        .send({ altcha: altchaField })
        .expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', reason: 'malformed' });
    }
    for (const body of [{}, { altcha: 42 }, { altcha: '' }, { altcha: 'x'.repeat(5000) }]) {
      const response = await request(app).post('/challenge/verify').send(body).expect(400);
      expect(response.body.error.code).toBe('invalid_request');
    }
  });

  it('accepts its own session until CHALLENGE_SESSION_TTL_SECONDS and no bogus one', async () => {
    const { app, pow, clock } = setup();
    const { session } = await pow.redeem(await solve(await fetchChallenge(app)));
    await expect(pow.checkSession(session)).resolves.toBe(true);
    await expect(pow.checkSession(session)).resolves.toBe(true);
    await expect(pow.checkSession('A'.repeat(43))).resolves.toBe(false);
    await expect(pow.checkSession(`${session}x`)).resolves.toBe(false);
    await expect(pow.checkSession('')).resolves.toBe(false);
    clock.advance(SESSION_TTL * 1000);
    await expect(pow.checkSession(session)).resolves.toBe(false);
  });

  it('stores only an HMAC of the session token', async () => {
    const { app, pow, store } = setup();
    const { session } = await pow.redeem(await solve(await fetchChallenge(app)));
    const keys: string[] = [];
    for await (const entry of store.scan()) keys.push(entry.key);
    expect(keys.filter((k) => k.startsWith('session:'))).toHaveLength(1);
    expect(keys.filter((k) => k.startsWith('challenge:'))).toHaveLength(1);
    expect(keys.join(' ')).not.toContain(session);
  });

  it('does not serve challenges when the send routes do not ask for them', async () => {
    for (const kind of ['off', 'captcha'] as const) {
      const { app } = setup({ kind });
      await request(app).get('/challenge').expect(404);
      await request(app).post('/challenge/verify').send({ altcha: 'x' }).expect(404);
    }
  });
});
