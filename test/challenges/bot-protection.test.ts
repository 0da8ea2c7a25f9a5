import type { Express } from 'express';
import request from 'supertest';
import {
  type BotProtectionKind,
  type BotProtectionPolicy,
  createBotProtection,
} from '../../services/bot-protection';
import { createCaptchaService } from '../../services/captcha';
import { buildConfig } from '../../src/config';
import { MemoryStore } from '../../src/store/memory';
import { solveAltcha } from '../support/altcha-solver';
import { buildTestApp, captchaRandom, FakeClock } from '../support/app';

const ANSWER = 'HkPm7Y';
const PHONE = '+15555550100';
const IP = '192.0.2.1';

/**
 * The assembled app with bot protection in front of the real POST /verify-phone (202 when the
 * send goes through). The app trusts one proxy, so each request's X-Forwarded-For is the client
 * address the per-IP free sends count against, as behind a load balancer.
 */
function setup(mode: BotProtectionKind, policy: BotProtectionPolicy = 'always', freeSends = 3) {
  const clock = new FakeClock(Date.now());
  const store = new MemoryStore({ keyPrefix: 'test:', now: () => clock.now() });
  const assemble = (kind: BotProtectionKind) =>
    buildTestApp({
      store,
      clock,
      random: captchaRandom(ANSWER),
      env: {
        BOT_PROTECTION: kind,
        BOT_PROTECTION_MODE: policy,
        BOT_PROTECTION_FREE_SENDS: String(freeSends),
        CHALLENGE_MAX_NUMBER: '1000',
        TRUST_PROXY: '1',
      },
    }).app;
  const app = assemble(mode);
  // Instances on the same store and secrets that ask for each kind of proof: they hand out a
  // genuine captcha or challenge session to offer where it is not the proof asked for.
  const issuers = { captcha: assemble('captcha'), pow: assemble('pow') };

  const send = (body: object = {}, ip = IP, to: Express = app) =>
    request(to)
      .post('/verify-phone')
      .set('X-Forwarded-For', ip)
      .send({ phone: PHONE, ...body });

  async function captchaId(from: Express = app): Promise<string> {
    const response = await request(from).get('/captcha').expect(200);
    return response.body.id;
  }

  async function altchaPayload(from: Express = app): Promise<string> {
    const response = await request(from).get('/challenge').expect(200);
    return solveAltcha(response.body);
  }

  async function challengeSession(from: Express = app): Promise<string> {
    const response = await request(from)
      .post('/challenge/verify')
      .send({ altcha: await altchaPayload(from) })
      .expect(200);
    return response.body.session;
  }

  return { app, issuers, send, clock, captchaId, altchaPayload, challengeSession };
}

describe('bot protection: off', () => {
  it('lets every send through without proof', async () => {
    const { app, send } = setup('off');
    const health = await request(app).get('/health').expect(200);
    expect(health.body.botProtection).toMatchObject({ kind: 'off' });
    for (let i = 0; i < 10; i++) await send().expect(202);
  });
});

describe('bot protection: captcha, always', () => {
  it('asks for a captcha when none is given', async () => {
    const { send } = setup('captcha');
    const response = await send().expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
  });

  it('accepts a solved captcha once, in any letter case', async () => {
    const { send, captchaId } = setup('captcha');
    const id = await captchaId();
    await send({ captcha: { id, answer: ANSWER.toLowerCase() } }).expect(202);
    const reuse = await send({ captcha: { id, answer: ANSWER } }).expect(403);
    expect(reuse.body.error).toMatchObject({ code: 'challenge_failed', kind: 'captcha' });
  });

  it('fails a wrong answer, and the captcha is then used up', async () => {
    const { send, captchaId } = setup('captcha');
    const id = await captchaId();
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
    const { send, issuers, altchaPayload, challengeSession } = setup('captcha');
    const session = await challengeSession(issuers.pow);
    const response = await send({
      challengeSession: session,
      altcha: await altchaPayload(issuers.pow),
    }).expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
    // The session was genuine: where proof of work is asked for, it passes.
    await send({ challengeSession: session }, IP, issuers.pow).expect(202);
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
    await send({ altcha: payload }).expect(202);
    const replay = await send({ altcha: payload }).expect(403);
    expect(replay.body.error).toMatchObject({
      code: 'challenge_failed',
      kind: 'pow',
      reason: 'replayed',
    });
  });

  it('accepts a session for as long as it lives', async () => {
    const { send, challengeSession, clock } = setup('pow');
    const session = await challengeSession();
    await send({ challengeSession: session }).expect(202);
    await send({ challengeSession: session }).expect(202);
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
    await send({ challengeSession: 'A'.repeat(43), altcha: await altchaPayload() }).expect(202);
  });

  it('does not take a captcha in place of a challenge', async () => {
    const { send, issuers, captchaId } = setup('pow');
    const id = await captchaId(issuers.captcha);
    const response = await send({ captcha: { id, answer: ANSWER } }).expect(403);
    expect(response.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
    // The captcha was genuine and is still unused: where a captcha is asked for, it passes.
    await send({ captcha: { id, answer: ANSWER } }, IP, issuers.captcha).expect(202);
  });
});

describe('bot protection: adaptive', () => {
  it('lets the first BOT_PROTECTION_FREE_SENDS sends per IP through, then asks for proof', async () => {
    const { send, captchaId } = setup('captcha', 'adaptive', 2);
    await send().expect(202);
    await send().expect(202);
    const third = await send().expect(403);
    expect(third.body.error).toMatchObject({ code: 'challenge_required', kind: 'captcha' });
    // Another address still has its free sends.
    await send({}, '198.51.100.7').expect(202);
    // With proof, the limited address gets through.
    const id = await captchaId();
    await send({ captcha: { id, answer: ANSWER } }).expect(202);
  });

  it('gives the free sends back after an hour', async () => {
    const { send, clock } = setup('pow', 'adaptive', 1);
    await send().expect(202);
    await send().expect(403);
    clock.advance(3600 * 1000);
    await send().expect(202);
    const again = await send().expect(403);
    expect(again.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
  });

  it('with no free sends, always asks', async () => {
    const { send, altchaPayload } = setup('pow', 'adaptive', 0);
    await send().expect(403);
    await send({ altcha: await altchaPayload() }).expect(202);
  });
});

// The service on its own: what no HTTP request can reach, since a send route refuses a body
// that is not an object before it asks for proof.
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
    const store = new MemoryStore();
    const captcha = createCaptchaService({
      store,
      config: buildConfig(),
      secret: 'bot-test-secret-bot-test-secret-bot-test',
    });
    const protection = createBotProtection({
      mode: 'captcha',
      policy: 'always',
      freeSends: 0,
      store,
      captcha,
    });
    for (const body of [undefined, null, 'text', 42]) {
      await expect(protection.check(body, '192.0.2.9')).rejects.toMatchObject({
        code: 'challenge_required',
      });
    }
  });
});
