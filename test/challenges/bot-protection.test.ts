import express from 'express';
import request from 'supertest';
import {
  type BotProtectionKind,
  type BotProtectionPolicy,
  createBotProtection,
} from '../../services/bot-protection';
import { createCaptchaService } from '../../services/captcha';
import { createPowChallengeService } from '../../services/pow-challenge';
import { buildConfig } from '../../src/config';
import { createErrorHandler } from '../../src/http/error-handler';
import { createLogger } from '../../src/logger';
import { MemoryStore } from '../../src/store/memory';
import { solveAltcha } from '../support/altcha-solver';

const SECRET = 'bot-test-secret-bot-test-secret-bot-test';
const ANSWER = 'HkPm7Y';

// The app's own error handler, so statuses and bodies are the ones clients see.
const errorHandler = createErrorHandler(createLogger({ level: 'silent' }));

function setup(mode: BotProtectionKind, policy: BotProtectionPolicy = 'always', freeSends = 3) {
  let now = Date.now();
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  const store = new MemoryStore({ keyPrefix: 'test:', now: clock.now });
  const config = buildConfig({ CHALLENGE_MAX_NUMBER: '1000' });
  const captcha = createCaptchaService({
    store,
    config,
    secret: SECRET,
    now: clock.now,
    generateText: () => ANSWER,
  });
  const pow = createPowChallengeService({ store, config, secret: SECRET, now: clock.now });
  const protection = createBotProtection({ mode, policy, freeSends, store, captcha, pow });

  // Stands in for a send route: the check comes first, then the "send".
  const app = express();
  app.use(express.json());
  app.post('/verify-phone', async (req, res) => {
    await protection.check(req.body, String(req.headers['x-test-ip'] ?? '192.0.2.1'));
    res.json({ sent: true });
  });
  app.use(errorHandler);

  const send = (body: object = {}, ip = '192.0.2.1') =>
    request(app)
      .post('/verify-phone')
      .set('x-test-ip', ip)
      .send({ phone: '+15555550100', ...body });

  async function altchaPayload(): Promise<string> {
    return solveAltcha(await pow.issue());
  }

  return { app, send, protection, captcha, pow, clock, altchaPayload };
}

describe('bot protection: off', () => {
  it('lets every send through without proof', async () => {
    const { send, protection } = setup('off');
    expect(protection.kind).toBe('off');
    for (let i = 0; i < 10; i++) await send().expect(200);
  });
});

describe('bot protection: captcha, always', () => {
  it('asks for a captcha when none is given', async () => {
    const { send } = setup('captcha');
    const response = await send().expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
  });

  it('accepts a solved captcha once, in any letter case', async () => {
    const { send, captcha } = setup('captcha');
    const { id } = await captcha.issue();
    await send({ captcha: { id, answer: ANSWER.toLowerCase() } }).expect(200);
    const reuse = await send({ captcha: { id, answer: ANSWER } }).expect(403);
    expect(reuse.body.error).toMatchObject({ code: 'challenge_failed', kind: 'captcha' });
  });

  it('fails a wrong answer, and the captcha is then used up', async () => {
    const { send, captcha } = setup('captcha');
    const { id } = await captcha.issue();
    const wrong = await send({ captcha: { id, answer: 'nope' } }).expect(403);
    expect(wrong.body.error.code).toBe('challenge_failed');
    await send({ captcha: { id, answer: ANSWER } }).expect(403);
  });

  it('fails malformed captcha proof', async () => {
    const { send } = setup('captcha');
    for (const proof of ['abc', { id: 1, answer: 'x' }, { id: 'x' }, []]) {
      const response = await send({ captcha: proof }).expect(403);
      expect(response.body.error.code).toBe('challenge_failed');
    }
  });

  it('does not take a proof-of-work session or payload in place of a captcha', async () => {
    const { send, pow, altchaPayload } = setup('captcha');
    const { session } = await pow.redeem(await altchaPayload());
    const response = await send({
      challengeSession: session,
      altcha: await altchaPayload(),
    }).expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
  });
});

describe('bot protection: pow, always', () => {
  it('asks for a challenge when none is given', async () => {
    const { send } = setup('pow');
    const response = await send().expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
  });

  it('accepts a solved payload once', async () => {
    const { send, altchaPayload } = setup('pow');
    const payload = await altchaPayload();
    await send({ altcha: payload }).expect(200);
    const replay = await send({ altcha: payload }).expect(403);
    expect(replay.body.error).toMatchObject({
      code: 'challenge_failed',
      kind: 'pow',
      reason: 'replayed',
    });
  });

  it('accepts a session for as long as it lives', async () => {
    const { send, pow, altchaPayload, clock } = setup('pow');
    const { session } = await pow.redeem(await altchaPayload());
    await send({ challengeSession: session }).expect(200);
    await send({ challengeSession: session }).expect(200);
    clock.advance(buildConfig().CHALLENGE_SESSION_TTL_SECONDS * 1000);
    const expired = await send({ challengeSession: session }).expect(403);
    expect(expired.body.error).toMatchObject({ code: 'challenge_failed', kind: 'pow' });
  });

  it('fails a bogus session, a bogus payload and a non-string payload', async () => {
    const { send } = setup('pow');
    for (const body of [
      { challengeSession: 'A'.repeat(43) },
      { challengeSession: 12 },
      { altcha: 'garbage' },
      { altcha: { challenge: {} } },
    ]) {
      const response = await send(body).expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', kind: 'pow' });
    }
  });

  it('lets a fresh payload stand in for a stale session', async () => {
    const { send, altchaPayload } = setup('pow');
    await send({ challengeSession: 'A'.repeat(43), altcha: await altchaPayload() }).expect(200);
  });

  it('does not take a captcha in place of a challenge', async () => {
    const { send, captcha } = setup('pow');
    const { id } = await captcha.issue();
    const response = await send({ captcha: { id, answer: ANSWER } }).expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
  });
});

describe('bot protection: adaptive', () => {
  it('lets the first BOT_PROTECTION_FREE_SENDS sends per IP through, then asks for proof', async () => {
    const { send, captcha } = setup('captcha', 'adaptive', 2);
    await send().expect(200);
    await send().expect(200);
    const third = await send().expect(403);
    expect(third.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
    // Another address still has its free sends.
    await send({}, '198.51.100.7').expect(200);
    // With proof, the limited address gets through.
    const { id } = await captcha.issue();
    await send({ captcha: { id, answer: ANSWER } }).expect(200);
  });

  it('gives the free sends back after an hour', async () => {
    const { send, clock } = setup('pow', 'adaptive', 1);
    await send().expect(200);
    await send().expect(403);
    clock.advance(3600 * 1000);
    await send().expect(200);
    const again = await send().expect(403);
    expect(again.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
  });

  it('with no free sends, always asks', async () => {
    const { send, altchaPayload } = setup('pow', 'adaptive', 0);
    await send().expect(403);
    await send({ altcha: await altchaPayload() }).expect(200);
  });
});

describe('createBotProtection', () => {
  it('refuses a mode without the service it needs', () => {
    const store = new MemoryStore();
    expect(() =>
      createBotProtection({ mode: 'captcha', policy: 'always', freeSends: 0, store }),
    ).toThrow(/captcha/);
    expect(() =>
      createBotProtection({ mode: 'pow', policy: 'always', freeSends: 0, store }),
    ).toThrow(/proof-of-work/);
    expect(createBotProtection({ mode: 'off', policy: 'always', freeSends: 0, store }).kind).toBe(
      'off',
    );
  });

  it('checks a non-object body as carrying no proof', async () => {
    const { protection } = setup('captcha');
    for (const body of [undefined, null, 'text', 42]) {
      await expect(protection.check(body, '192.0.2.9')).rejects.toMatchObject({
        code: 'challenge_required',
      });
    }
  });
});
