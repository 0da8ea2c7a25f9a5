import twilio from 'twilio';
import { StoreUnavailableError } from '../../src/errors';
import type { Store } from '../../src/store/types';
import {
  ACCOUNT_SID,
  type CompatServer,
  clientFor,
  specProblems,
  startCompatServer,
} from './support';

/**
 * The native limits, answered with Twilio's codes through the official SDK: the same cooldown,
 * send caps, per-client cap (on DeviceIp), SMS budget and country policy as the native routes,
 * because the sends are the native flow's. Bursts fire concurrently.
 */

const PHONE = '+15555550123';

type Outcome = { ok: true } | { ok: false; status: number; code: number };

async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  try {
    await promise;
    return { ok: true };
  } catch (error) {
    if (!(error instanceof twilio.RestException)) throw error;
    return { ok: false, status: error.status, code: error.code ?? 0 };
  }
}

describe('Twilio-compatible API: limits and policies', () => {
  let server: CompatServer;
  afterEach(async () => {
    const problems = server.exchanges.flatMap(specProblems);
    await server.close();
    expect(problems).toEqual([]);
  });

  async function serviceOn(env: Record<string, string>, store?: Store) {
    server = await startCompatServer({ env, ...(store ? { store } : {}) });
    const service = await server.client.verify.v2.services.create({ friendlyName: 'Acme' });
    return server.client.verify.v2.services(service.sid);
  }

  it('lets one of a burst of creates for a number through the cooldown; the others get 60212 with Retry-After', async () => {
    const service = await serviceOn({ SEND_COOLDOWN_SECONDS: '30' });
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        outcome(service.verifications.create({ to: PHONE, channel: 'sms' })),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual(
      Array.from({ length: 9 }, () => ({ ok: false, status: 429, code: 60212 })),
    );
    expect(server.app.outbox.list({ to: PHONE })).toHaveLength(1);
    const refused = server.exchanges.find((e) => e.statusCode === 429);
    expect(refused).toBeDefined();
    // The SDK does not expose headers on a RestException; the raw answer shows Retry-After.
    const raw = await fetch(refused?.url ?? '', {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${server.client.username}:${server.client.password}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ To: PHONE, Channel: 'sms' }).toString(),
    });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('caps the sends to one number (60203), as SEND_MAX_PER_TARGET does natively', async () => {
    const service = await serviceOn({ SEND_MAX_PER_TARGET: '2' });
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await outcome(service.verifications.create({ to: PHONE, channel: 'sms' })));
    }
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: false, status: 429, code: 60203 }]);
  });

  it('counts the SMS budget (60203 once it is spent)', async () => {
    const service = await serviceOn({ SMS_HOURLY_BUDGET: '1' });
    expect(await outcome(service.verifications.create({ to: PHONE, channel: 'sms' }))).toEqual({
      ok: true,
    });
    expect(
      await outcome(service.verifications.create({ to: '+15555550199', channel: 'sms' })),
    ).toEqual({ ok: false, status: 429, code: 60203 });
  });

  it('keys the per-client cap on DeviceIp (20429), and applies none without it', async () => {
    const service = await serviceOn({ IP_MAX_TARGETS_PER_HOUR: '2' });
    const numbers = ['+15555550101', '+15555550102', '+15555550103'];
    // Without DeviceIp every request is the app server's: no per-client cap.
    for (const to of numbers) {
      expect(await outcome(service.verifications.create({ to, channel: 'sms' }))).toEqual({
        ok: true,
      });
    }
    const burst = await Promise.all(
      ['+15555550111', '+15555550112', '+15555550113', '+15555550114'].map((to) =>
        outcome(service.verifications.create({ to, channel: 'sms', deviceIp: '203.0.113.9' })),
      ),
    );
    expect(burst.filter((r) => r.ok)).toHaveLength(2);
    for (const r of burst.filter((r) => !r.ok)) {
      expect(r).toEqual({ ok: false, status: 429, code: 20429 });
    }
    // Another device is another client.
    expect(
      await outcome(
        service.verifications.create({
          to: '+15555550121',
          channel: 'sms',
          deviceIp: '2001:db8::1',
        }),
      ),
    ).toEqual({ ok: true });
    expect(
      await outcome(
        service.verifications.create({ to: '+15555550122', channel: 'sms', deviceIp: 'not-an-ip' }),
      ),
    ).toEqual({ ok: false, status: 400, code: 60200 });
  });

  it('refuses a country outside SMS_ALLOWED_COUNTRIES with 60605', async () => {
    const service = await serviceOn({ SMS_ALLOWED_COUNTRIES: 'GB' });
    expect(await outcome(service.verifications.create({ to: PHONE, channel: 'sms' }))).toEqual({
      ok: false,
      status: 403,
      code: 60605,
    });
    expect(server.app.outbox.list({ to: PHONE })).toHaveLength(0);
  });

  it('counts only failed authentications against the request limit (20429 past it)', async () => {
    server = await startCompatServer({ env: { RATE_LIMIT_MAX: '3' } });
    // Authenticated app servers are not held to a per-address request limit...
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        outcome(server.client.verify.v2.services.create({ friendlyName: `S${i}` })),
      ),
    );
    expect(created.every((r) => r.ok)).toBe(true);
    // ...while a burst of guessed tokens from one address is.
    const guesser = clientFor(server.base, ACCOUNT_SID, 'guessed-token-guessed-token-guessed');
    const guesses = await Promise.all(
      Array.from({ length: 8 }, () => outcome(guesser.verify.v2.services.list())),
    );
    expect(guesses.filter((r) => !r.ok && r.code === 20003)).toHaveLength(3);
    expect(guesses.filter((r) => !r.ok && r.code === 20429)).toHaveLength(5);
    expect(await outcome(server.client.verify.v2.services.list())).toEqual({ ok: true });
  });

  it('fails closed with 20503 when the store is down, and serves again once it is back', async () => {
    const service = await serviceOn({});
    const store = server.app.store;
    const get = store.get.bind(store);
    store.get = async () => {
      throw new StoreUnavailableError('memory');
    };
    expect(await outcome(service.verifications.create({ to: PHONE, channel: 'sms' }))).toEqual({
      ok: false,
      status: 503,
      code: 20503,
    });
    store.get = get;
    expect(await outcome(service.verifications.create({ to: PHONE, channel: 'sms' }))).toEqual({
      ok: true,
    });
  });
});
