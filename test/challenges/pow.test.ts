import type { Express } from 'express';
import request from 'supertest';
import type { AltchaChallenge } from '../../services/pow-challenge';
import { cryptoRandom, type RandomSource } from '../../services/runtime';
import { buildConfig } from '../../src/config';
import { altchaSolution, solveAltcha } from '../support/altcha-solver';
import { buildTestApp, FakeClock } from '../support/app';

const TTL = 60;
const SESSION_TTL = 600;
const PHONE = '+15555550100';

/** The assembled app with proof-of-work in front of every send, on an injected clock. */
function setup(
  options: {
    start?: number;
    maxNumber?: number;
    kind?: 'off' | 'pow';
    env?: Record<string, string>;
    random?: RandomSource;
  } = {},
) {
  const clock = new FakeClock(options.start ?? Date.now());
  const { app, store } = buildTestApp({
    clock,
    ...(options.random ? { random: options.random } : {}),
    env: {
      BOT_PROTECTION: options.kind ?? 'pow',
      BOT_PROTECTION_MODE: 'always',
      CHALLENGE_MAX_NUMBER: String(options.maxNumber ?? 5000),
      CHALLENGE_TTL_SECONDS: String(TTL),
      CHALLENGE_SESSION_TTL_SECONDS: String(SESSION_TTL),
      ...options.env,
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
    expect(Object.keys(first.body).sort()).toEqual(['expiresAt', 'maxSends', 'session']);
    expect(first.body.maxSends).toBe(3);
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

  it('is solved by altcha-lib at the default difficulty, taking the median number of hashes', async () => {
    const base = buildConfig().CHALLENGE_MAX_NUMBER;
    expect(base).toBe(1_000_000);
    // The counter is a uniform draw up to the bound; the injected draw puts it at the median, so
    // this solve costs what a typical one does (about 500,000 SHA-256 hashes).
    const median: RandomSource = {
      int: (max) => (max === base ? max / 2 - 1 : cryptoRandom.int(max)),
      id: cryptoRandom.id,
    };
    const { app } = setup({ maxNumber: base, random: median });
    const challenge = await fetchChallenge(app);
    expect(challenge.parameters.data).toEqual({ maxNumber: base });
    const solution = await altchaSolution(challenge, 120_000);
    expect(solution.counter).toBe(base / 2);
    const payload = Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
    const response = await verify(app, payload).expect(200);
    expect(response.body).toHaveProperty('session');
  }, 150_000);

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
    const { app } = setup({ kind: 'off' });
    const challenge = await request(app).get('/challenge').expect(404);
    expect(challenge.body.error.code).toBe('not_found');
    const verified = await verify(app, 'x').expect(404);
    expect(verified.body.error.code).toBe('not_found');
  });
});

/**
 * Issue 12, item 9: one solve used to pay for unlimited sends from anywhere for an hour, at the
 * same low difficulty however many challenges a client had solved. The app trusts one proxy, so
 * X-Forwarded-For is the client address each request comes from.
 */
describe('proof-of-work: what one solve buys', () => {
  const A = '203.0.113.10';
  const B = '198.51.100.20';

  function proxied(env: Record<string, string> = {}) {
    const { app, clock } = setup({ env: { TRUST_PROXY: '1', ...env } });
    const from = (ip: string) => ({
      challenge: async (): Promise<AltchaChallenge> =>
        (await request(app).get('/challenge').set('X-Forwarded-For', ip).expect(200)).body,
      session: async (): Promise<string> => {
        const challenge = (await request(app).get('/challenge').set('X-Forwarded-For', ip)).body;
        const response = await request(app)
          .post('/challenge/verify')
          .set('X-Forwarded-For', ip)
          .send({ altcha: await solve(challenge) })
          .expect(200);
        return response.body.session;
      },
      send: (session: string, phone: string) =>
        request(app)
          .post('/verify-phone')
          .set('X-Forwarded-For', ip)
          .send({ phone, challengeSession: session }),
    });
    return { app, clock, from };
  }

  const phone = (i: number) => `+1555777${String(i).padStart(4, '0')}`;

  it('a session pays for CHALLENGE_SESSION_MAX_SENDS sends: the next one is refused', async () => {
    const { from } = proxied({ CHALLENGE_SESSION_MAX_SENDS: '3' });
    const session = await from(A).session();
    for (let i = 0; i < 3; i++) await from(A).send(session, phone(i)).expect(202);
    const fourth = await from(A).send(session, phone(3)).expect(403);
    expect(fourth.body.error).toMatchObject({
      code: 'challenge_failed',
      kind: 'pow',
      reason: 'session_used_up',
    });
  });

  it('a burst of 30 sends on one session gets exactly CHALLENGE_SESSION_MAX_SENDS through', async () => {
    const { from } = proxied({ CHALLENGE_SESSION_MAX_SENDS: '3' });
    const session = await from(A).session();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => from(A).send(session, phone(100 + i))),
    );
    expect(answers.filter((r) => r.status === 202)).toHaveLength(3);
    const refused = answers.filter((r) => r.status !== 202);
    expect(refused).toHaveLength(27);
    for (const r of refused) expect(r.body.error.reason).toBe('session_used_up');
  });

  it('a session presented from another network is refused and spends none of its sends', async () => {
    const { from } = proxied({ CHALLENGE_SESSION_MAX_SENDS: '2' });
    const session = await from(A).session();
    const stolen = await Promise.all(
      Array.from({ length: 10 }, (_, i) => from(B).send(session, phone(200 + i))),
    );
    for (const r of stolen) {
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ code: 'challenge_failed', reason: 'session_elsewhere' });
    }
    // The client that solved it still has both of its sends.
    await from(A).send(session, phone(210)).expect(202);
    await from(A).send(session, phone(211)).expect(202);
  });

  it('a session belongs to the network that earned it: any address of its IPv6 /56, no other', async () => {
    const { from } = proxied({ CHALLENGE_SESSION_MAX_SENDS: '3' });
    const session = await from('2001:db8:1:1::5').session();
    // Another /64 of the same /56: the same client for every per-client limit.
    await from('2001:db8:1:2::9').send(session, phone(300)).expect(202);
    const neighbour = await from('2001:db8:1:100::9').send(session, phone(301)).expect(403);
    expect(neighbour.body.error.reason).toBe('session_elsewhere');
  });

  it('doubles the difficulty with one client’s volume, and not for anyone else', async () => {
    const { clock, from } = proxied({
      CHALLENGE_MAX_NUMBER: '1000',
      CHALLENGE_DOUBLE_EVERY: '2',
      CHALLENGE_MAX_NUMBER_CAP: '4000',
    });
    const maxNumber = (challenge: AltchaChallenge) => challenge.parameters.data?.maxNumber;
    // Fetched at once, as a script would: the counts are atomic, so the burst sees every step.
    const burst = await Promise.all(Array.from({ length: 7 }, () => from(A).challenge()));
    expect(burst.map(maxNumber).sort((a, b) => Number(a) - Number(b))).toEqual([
      1000, 1000, 2000, 2000, 4000, 4000, 4000,
    ]);
    // The bound is the real one: the hardest challenge's secret counter lies within it.
    const hardest = await from(A).challenge();
    expect(maxNumber(hardest)).toBe(4000);
    const { counter } = await altchaSolution(hardest);
    expect(counter).toBeLessThanOrEqual(4000);
    // Another client starts at the base; A does too once its hour is over.
    expect(maxNumber(await from(B).challenge())).toBe(1000);
    clock.advance(3600 * 1000);
    expect(maxNumber(await from(A).challenge())).toBe(1000);
  });
});
