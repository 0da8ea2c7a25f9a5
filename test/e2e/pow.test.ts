/**
 * Proof-of-work as a client does it against the real server process: fetch a challenge, solve it
 * with altcha-lib's own solver (the library the ALTCHA widget is built on), and either trade the
 * payload for a session at POST /challenge/verify, as the README documents, or send it directly.
 */
import { postJson } from '../support/e2e-client';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

// altcha-lib ships a CommonJS build but only ESM typings; the types come from a type query.
type AltchaLib = typeof import('altcha-lib', { with: { 'resolution-mode': 'import' }});
type SolveOptions = Parameters<AltchaLib['solveChallenge']>[0];
const altcha: AltchaLib = require('altcha-lib');
const {
  deriveKey,
}: { deriveKey: SolveOptions['deriveKey'] } = require('altcha-lib/algorithms/sha');

let verifyd: VerifydProcess | undefined;

beforeAll(async () => {
  verifyd = await startVerifyd({
    NODE_ENV: 'test',
    OTP_SECRET: 'e2e-otp-secret-0123456789abcdef0123456789',
    JWT_SECRET: 'e2e-jwt-secret-0123456789abcdef0123456789',
    BOT_PROTECTION: 'pow',
    BOT_PROTECTION_MODE: 'always',
    // Small enough to solve in well under a second on a shared CI core.
    CHALLENGE_MAX_NUMBER: '5000',
  });
}, 30_000);

afterAll(async () => {
  await verifyd?.stop();
});

/** GET /challenge, solved by altcha-lib, encoded as the widget submits it: base64 of JSON. */
async function solvedPayload(): Promise<string> {
  const res = await fetch(`${verifyd!.url}/challenge`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const challenge = (await res.json()) as SolveOptions['challenge'];
  const solution = await altcha.solveChallenge({ challenge, deriveKey, timeout: 20_000 });
  if (!solution) throw new Error('altcha-lib could not solve the challenge');
  return Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
}

describe('proof-of-work (BOT_PROTECTION=pow, always) against the real server', () => {
  it('asks for a challenge when a send carries no proof', async () => {
    const res = await postJson(`${verifyd!.url}/verify-phone`, { phone: '+15551240000' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
  });

  it('trades a solved challenge for a session at POST /challenge/verify, then sends with it', async () => {
    const payload = await solvedPayload();
    const verified = await postJson(`${verifyd!.url}/challenge/verify`, { altcha: payload });
    expect(verified.status).toBe(200);
    expect(verified.body).toEqual({
      session: expect.any(String),
      expiresAt: expect.any(String),
      maxSends: 3,
    });
    const { session } = verified.body;

    // The session stands in for a proof for CHALLENGE_SESSION_MAX_SENDS sends (3 by default).
    for (const phone of ['+15551240001', '+15551240002', '+15551240004']) {
      const sent = await postJson(`${verifyd!.url}/verify-phone`, {
        phone,
        challengeSession: session,
      });
      expect(sent.status).toBe(202);
      expect(sent.body).toMatchObject({ success: true, to: phone });
    }
    const fourth = await postJson(`${verifyd!.url}/verify-phone`, {
      phone: '+15551240005',
      challengeSession: session,
    });
    expect(fourth.status).toBe(403);
    expect(fourth.body.error).toMatchObject({
      code: 'challenge_failed',
      reason: 'session_used_up',
    });

    // A payload is traded once; a made-up session is no session.
    const replay = await postJson(`${verifyd!.url}/challenge/verify`, { altcha: payload });
    expect(replay.status).toBe(403);
    expect(replay.body.error.code).toBe('challenge_failed');
    const forged = await postJson(`${verifyd!.url}/verify-phone`, {
      phone: '+15551240003',
      challengeSession: `${session.slice(0, -1)}${session.endsWith('A') ? 'B' : 'A'}`,
    });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('challenge_failed');
  });

  it('accepts a solved payload sent with the request, once', async () => {
    const payload = await solvedPayload();
    const sent = await postJson(`${verifyd!.url}/verify-email`, {
      email: 'pow-e2e@example.com',
      altcha: payload,
    });
    expect(sent.status).toBe(202);
    const replay = await postJson(`${verifyd!.url}/verify-email`, {
      email: 'pow-e2e-2@example.com',
      altcha: payload,
    });
    expect(replay.status).toBe(403);
    expect(replay.body.error.code).toBe('challenge_failed');
  });
});
