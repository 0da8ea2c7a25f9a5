import request from 'supertest';
import {
  type BotProtectionKind,
  type BotProtectionPolicy,
  createBotProtection,
} from '../../services/bot-protection';
import { createPowChallengeService } from '../../services/pow-challenge';
import { buildConfig } from '../../src/config';
import { MemoryStore } from '../../src/store/memory';
import { solveAltcha } from '../support/altcha-solver';
import { buildTestApp, FakeClock } from '../support/app';

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
  const app = buildTestApp({
    store,
    clock,
    env: {
      BOT_PROTECTION: mode,
      BOT_PROTECTION_MODE: policy,
      BOT_PROTECTION_FREE_SENDS: String(freeSends),
      CHALLENGE_MAX_NUMBER: '1000',
      TRUST_PROXY: '1',
    },
  }).app;

  const send = (body: object = {}, ip = IP) =>
    request(app)
      .post('/verify-phone')
      .set('X-Forwarded-For', ip)
      .send({ phone: PHONE, ...body });

  async function altchaPayload(ip = IP): Promise<string> {
    const response = await request(app).get('/challenge').set('X-Forwarded-For', ip).expect(200);
    return solveAltcha(response.body);
  }

  async function challengeSession(ip = IP): Promise<string> {
    const response = await request(app)
      .post('/challenge/verify')
      .set('X-Forwarded-For', ip)
      .send({ altcha: await altchaPayload(ip) })
      .expect(200);
    return response.body.session;
  }

  return { app, send, clock, altchaPayload, challengeSession };
}

describe('bot protection: off', () => {
  it('lets every send through without proof', async () => {
    const { app, send } = setup('off');
    const health = await request(app).get('/health').expect(200);
    expect(health.body.botProtection).toMatchObject({ kind: 'off' });
    for (let i = 0; i < 10; i++) await send().expect(202);
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

  it('fails a bogus session and a bogus payload, and refuses a proof of the wrong type', async () => {
    const { send } = setup('pow');
    for (const body of [{ challengeSession: 'A'.repeat(43) }, { altcha: 'garbage' }]) {
      const response = await send(body).expect(403);
      expect(response.body.error).toMatchObject({ code: 'challenge_failed', kind: 'pow' });
    }
    // The request schema parses the proof, so a proof that is not a string is a bad request.
    for (const body of [{ challengeSession: 12 }, { altcha: { challenge: {} } }]) {
      const response = await send(body).expect(400);
      expect(response.body.error).toMatchObject({ code: 'invalid_request' });
    }
  });

  it('lets a fresh payload stand in for a stale session', async () => {
    const { send, altchaPayload } = setup('pow');
    await send({ challengeSession: 'A'.repeat(43), altcha: await altchaPayload() }).expect(202);
  });
});

describe('bot protection: adaptive', () => {
  it('lets the first BOT_PROTECTION_FREE_SENDS sends per IP through, then asks for proof', async () => {
    const { send, altchaPayload } = setup('pow', 'adaptive', 2);
    await send().expect(202);
    await send().expect(202);
    const third = await send().expect(403);
    expect(third.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
    // Another address still has its free sends.
    await send({}, '198.51.100.7').expect(202);
    // With proof, the limited address gets through.
    await send({ altcha: await altchaPayload() }).expect(202);
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
      createBotProtection({ mode: 'pow', policy: 'always', freeSends: 0, store }),
    ).toThrow(/proof-of-work/);
    expect(createBotProtection({ mode: 'off', policy: 'always', freeSends: 0, store }).kind).toBe(
      'off',
    );
  });

  it('checks an empty proof as no proof', async () => {
    const store = new MemoryStore();
    const pow = createPowChallengeService({
      store,
      config: buildConfig(),
      secret: 'bot-test-secret-bot-test-secret-bot-test',
    });
    const protection = createBotProtection({
      mode: 'pow',
      policy: 'always',
      freeSends: 0,
      store,
      pow,
    });
    for (const proof of [{}, { altcha: '' }, { challengeSession: '' }]) {
      await expect(protection.check(proof, '192.0.2.9')).rejects.toMatchObject({
        code: 'challenge_required',
      });
    }
  });
});
