import type { Express } from 'express';
import request from 'supertest';
import type { AltchaChallenge } from '../../services/pow-challenge';
import { buildConfig } from '../../src/config';
import { altchaSolution, solveAltcha } from '../support/altcha-solver';
import { buildTestApp, FakeClock } from '../support/app';

const TTL = 60;
const SESSION_TTL = 600;
const PHONE = '+15555550100';

/** The assembled app with proof-of-work in front of every send, on an injected clock. */
function setup(
  options: { start?: number; maxNumber?: number; kind?: 'off' | 'captcha' | 'pow' } = {},
) {
  const clock = new FakeClock(options.start ?? Date.now());
  const { app, store } = buildTestApp({
    clock,
    env: {
      BOT_PROTECTION: options.kind ?? 'pow',
      BOT_PROTECTION_MODE: 'always',
      CHALLENGE_MAX_NUMBER: String(options.maxNumber ?? 5000),
      CHALLENGE_TTL_SECONDS: String(TTL),
      CHALLENGE_SESSION_TTL_SECONDS: String(SESSION_TTL),
    },
  });
  return { app, store, clock };
}

const solve = solveAltcha;

async function fetchChallenge(app: Express): Promise<AltchaChallenge> {
  const response = await request(app).get('/challenge').expect(200);
  return response.body as AltchaChallenge;
}

const verify = (app: Express, altcha: unknown) =>
  request(app).post('/challenge/verify').send({ altcha });

/** A session earned the way a client earns one: solve a challenge, trade it in. */
async function earnSession(app: Express): Promise<string> {
  const response = await verify(app, await solve(await fetchChallenge(app))).expect(200);
  return response.body.session as string;
}

/** A send carrying `proof`; with proof of work always required, it passes only if the proof does. */
const send = (app: Express, proof: object) =>
  request(app)
    .post('/verify-phone')
    .send({ phone: PHONE, ...proof });

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
    const { app } = setup();
    const payload = await solve(await fetchChallenge(app));

    const first = await verify(app, payload).expect(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(Object.keys(first.body).sort()).toEqual(['expiresAt', 'session']);
    expect(first.body.session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The session is one the send routes accept.
    await send(app, { challengeSession: first.body.session }).expect(202);

    const replay = await verify(app, payload).expect(403);
    expect(replay.body.error).toMatchObject({ code: 'challenge_failed', reason: 'replayed' });
  });

  // Regression: the real server had no JSON parser in front of POST /challenge/verify, so it
  // answered 400 invalid_request to every correct payload while a test with its own parser passed.
  it('takes a solved payload posted as JSON, as the README’s challengeSession flow does', async () => {
    const { app } = setup();
    const payload = await solve(await fetchChallenge(app));
    const response = await request(app)
      .post('/challenge/verify')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ altcha: payload }));
    expect(response.status).toBe(200);
    await send(app, { challengeSession: response.body.session }).expect(202);
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
    const { app } = setup({ maxNumber: buildConfig().CHALLENGE_MAX_NUMBER });
    const payload = await solve(await fetchChallenge(app));
    const response = await verify(app, payload).expect(200);
    expect(response.body).toHaveProperty('session');
  });

  it('rejects an expired challenge (injected clock)', async () => {
    const { app, clock } = setup();
    const payload = await solve(await fetchChallenge(app));
    clock.advance(TTL * 1000);
    const response = await verify(app, payload).expect(403);
    expect(response.body.error).toMatchObject({
      code: 'challenge_failed',
      kind: 'pow',
      reason: 'expired',
    });
  });

  it('rejects a challenge altcha-lib itself finds expired (real clock)', async () => {
    // Issued two lifetimes ago by the real clock, but the injected clock has not moved: only
    // altcha-lib's own expiry check can catch it.
    const { app } = setup({ start: Date.now() - 2 * TTL * 1000 });
    const payload = await solve(await fetchChallenge(app));
    const response = await verify(app, payload).expect(403);
    expect(response.body.error).toMatchObject({ reason: 'expired' });
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
      const response = await verify(app, payload).expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', reason: 'invalid' });
    }
    // None of the failures used the challenge up.
    await verify(app, encode({ challenge, solution })).expect(200);
  });

  it('rejects a challenge signed with another secret', async () => {
    const { app } = setup();
    // Another deployment, with its own OTP_SECRET: its challenges are no good here.
    const other = buildTestApp({
      env: {
        BOT_PROTECTION: 'pow',
        CHALLENGE_MAX_NUMBER: '1000',
        OTP_SECRET: 'another-secret-another-secret-another',
      },
    });
    const response = await verify(app, await solve(await fetchChallenge(other.app))).expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_failed', reason: 'invalid' });
  });

  it('answers malformed payloads with challenge_failed and bad bodies with invalid_request', async () => {
    const { app } = setup();
    for (const altchaField of ['not base64 json', Buffer.from('{"a":1}').toString('base64')]) {
      const response = await verify(app, altchaField).expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', reason: 'malformed' });
    }
    for (const body of [{}, { altcha: 42 }, { altcha: '' }, { altcha: 'x'.repeat(5000) }]) {
      const response = await request(app).post('/challenge/verify').send(body).expect(400);
      expect(response.body.error.code).toBe('invalid_request');
    }
  });

  it('accepts its own session until CHALLENGE_SESSION_TTL_SECONDS and no bogus one', async () => {
    const { app, clock } = setup();
    const session = await earnSession(app);
    await send(app, { challengeSession: session }).expect(202);
    await send(app, { challengeSession: session }).expect(202);
    for (const bogus of ['A'.repeat(43), `${session}x`]) {
      const response = await send(app, { challengeSession: bogus }).expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', kind: 'pow' });
    }
    // An empty session is no proof at all.
    const empty = await send(app, { challengeSession: '' }).expect(403);
    expect(empty.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
    clock.advance(SESSION_TTL * 1000);
    const expired = await send(app, { challengeSession: session }).expect(403);
    expect(expired.body.error).toMatchObject({ code: 'challenge_failed', kind: 'pow' });
  });

  it('stores only an HMAC of the session token', async () => {
    const { app, store } = setup();
    const session = await earnSession(app);
    const keys: string[] = [];
    for await (const entry of store.scan?.() ?? []) keys.push(entry.key);
    expect(keys.filter((k) => k.startsWith('session:'))).toHaveLength(1);
    expect(keys.filter((k) => k.startsWith('challenge:'))).toHaveLength(1);
    expect(keys.join(' ')).not.toContain(session);
  });

  it('does not serve challenges when the send routes do not ask for them', async () => {
    for (const kind of ['off', 'captcha'] as const) {
      const { app } = setup({ kind });
      const challenge = await request(app).get('/challenge').expect(404);
      expect(challenge.body.error.code).toBe('not_found');
      const verified = await verify(app, 'x').expect(404);
      expect(verified.body.error.code).toBe('not_found');
    }
  });
});
