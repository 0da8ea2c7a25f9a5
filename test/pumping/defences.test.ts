import { StoreUnavailableError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { FakeClock } from '../support/app';
import { aheadClock, codesOf, gbMobile, pumpingApp, tally, usNumber } from './support';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const POW = { BOT_PROTECTION: 'pow', CHALLENGE_MAX_NUMBER: '1000' };

describe('number types', () => {
  it('refuses premium-rate, shared-cost, toll-free, VoIP, personal, pager, UAN, voicemail and fixed-line numbers before any provider call', async () => {
    const { send, sms, signals } = pumpingApp();
    const refused = {
      '+449090123456': 'premium_rate',
      '+33811690466': 'shared_cost',
      '+448081277371': 'toll_free',
      '+445679545626': 'voip',
      '+447004596504': 'personal_number',
      '+447608911387': 'pager',
      '+445598447722': 'uan',
      '+3935919155844': 'voicemail',
      '+441267695908': 'fixed_line',
    };
    for (const [phone, numberType] of Object.entries(refused)) {
      const response = await send(phone);
      expect(response.status).toBe(403);
      expect(response.body.error).toMatchObject({ code: 'number_type_not_allowed', numberType });
    }
    expect(sms.calls).toHaveLength(0);
    expect(signals).toContainEqual({ country: 'GB', signal: 'number_type', action: 'refused' });
    // A mobile, and a NANP number (the plan cannot tell mobile from fixed line), go through.
    await send(gbMobile(0, 1)).expect(202);
    await send(usNumber(143)).expect(202);
    expect(sms.calls).toHaveLength(2);
  });

  it('follows SMS_ALLOWED_NUMBER_TYPES; any turns the check off', async () => {
    const premiumOnly = pumpingApp({ env: { SMS_ALLOWED_NUMBER_TYPES: 'premium_rate' } });
    await premiumOnly.send('+449090123456').expect(202);
    const mobile = await premiumOnly.send(gbMobile(0, 1));
    expect(mobile.body.error).toMatchObject({
      code: 'number_type_not_allowed',
      numberType: 'mobile',
    });
    const any = pumpingApp({ env: { SMS_ALLOWED_NUMBER_TYPES: 'any' } });
    await any.send('+449090123456').expect(202);
    await any.send('+15551234567').expect(202);
  });

  it('a number libphonenumber cannot type is refused unless unknown is listed', async () => {
    // +1 555 numbers are accepted only by the mock provider, and have no type.
    const strict = pumpingApp();
    const fictional = await strict.send('+15551234567');
    expect(fictional.status).toBe(403);
    expect(fictional.body.error).toMatchObject({
      code: 'number_type_not_allowed',
      numberType: 'unknown',
    });
    const lenient = pumpingApp({ env: { SMS_ALLOWED_NUMBER_TYPES: 'mobile,unknown' } });
    await lenient.send('+15551234567').expect(202);
  });

  it('auto leaves the defences off with the mock provider', async () => {
    const { send } = pumpingApp({ env: { SMS_PUMPING_DEFENCES: 'auto' } });
    await send('+449090123456').expect(202);
  });
});

describe('per-country hourly volume', () => {
  it('a burst past the limit sends 5; past it a proof is needed, past twice it 429 until the hour ends', async () => {
    const clock = aheadClock();
    clock.advance(10 * MINUTE);
    const app = pumpingApp({
      clock,
      env: { ...POW, SMS_COUNTRY_HOURLY_LIMIT: '5,US:2', SMS_COUNTRY_REFUSE_FACTOR: '2' },
    });
    // Distinct prefixes, so the prefix defence stays out of it.
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => app.send(gbMobile(i, 1))));
    // A send refused for want of a proof gives its count back, so how many of the rest meet the
    // proof and how many the refusal depends on how the burst interleaves; none is sent.
    const counts = tally(codesOf(burst));
    expect(counts.sent).toBe(5);
    expect((counts.challenge_required ?? 0) + (counts.country_limit_reached ?? 0)).toBe(15);
    expect(counts.challenge_required).toBeGreaterThanOrEqual(5);
    expect(app.sms.calls).toHaveLength(5);

    // Refused and unproven sends counted nothing: five more go out with a proof, then no more.
    for (let i = 0; i < 5; i++) {
      const proven = await app.sendWithProof(gbMobile(100 + i, 1));
      expect(proven.status).toBe(202);
    }
    const over = await app.sendWithProof(gbMobile(200, 1));
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: 'country_limit_reached', retryAfter: 3000 });
    expect(over.headers['retry-after']).toBe('3000');
    expect(app.sms.calls).toHaveLength(10);

    // Another country has its own count, and US its override of 2.
    await app.send(usNumber(1)).expect(202);
    await app.send(usNumber(2)).expect(202);
    expect((await app.send(usNumber(3))).body.error.code).toBe('challenge_required');

    expect(app.signals).toContainEqual({
      country: 'GB',
      signal: 'country_volume',
      action: 'proof_required',
    });
    expect(app.signals).toContainEqual({
      country: 'GB',
      signal: 'country_volume',
      action: 'refused',
    });
    clock.advance(50 * MINUTE);
    await app.send(gbMobile(300, 1)).expect(202);
  });

  it('without bot protection a proof cannot be asked: sends go through up to the refuse cap', async () => {
    const app = pumpingApp({
      env: { SMS_COUNTRY_HOURLY_LIMIT: '3', SMS_COUNTRY_REFUSE_FACTOR: '2' },
    });
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => app.send(gbMobile(i, 1))));
    expect(tally(codesOf(burst))).toEqual({ sent: 6, country_limit_reached: 4 });
    expect(app.sms.calls).toHaveLength(6);
  });
});

describe('prefix velocity', () => {
  it('a burst of 30 numbers in one prefix reaches the provider 10 times; the block is logged once, counted, and ends after SMS_PREFIX_BLOCK_SECONDS', async () => {
    const logLines: string[] = [];
    const app = pumpingApp({ logLines, env: { LOG_LEVEL: 'info' } });
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => app.send(gbMobile(7, i))));
    expect(tally(codesOf(burst))).toEqual({ sent: 10, prefix_blocked: 20 });
    const refusal = burst.find((r) => r.status === 403);
    expect(refusal?.body.error).toMatchObject({ code: 'prefix_blocked', retryAfter: 43_200 });
    expect(refusal?.headers['retry-after']).toBe('43200');
    expect(app.sms.calls).toHaveLength(10);

    const blocked = logLines
      .map((line) => JSON.parse(line))
      .filter((l) => l.msg === 'sms pumping: prefix blocked');
    expect(blocked).toEqual([
      expect.objectContaining({
        country: 'GB',
        prefix: '+447400007xxx',
        signal: 'prefix_velocity',
        threshold: 10,
      }),
    ]);
    expect(app.signals.filter((s) => s.action === 'blocked')).toEqual([
      { country: 'GB', signal: 'prefix_velocity', action: 'blocked' },
    ]);
    // No log line holds a full number, only prefixes.
    for (let i = 0; i < 30; i++) {
      expect(logLines.join('\n')).not.toContain(gbMobile(7, i));
    }

    // The whole prefix is blocked, numbers already sent to included; the next prefix is not.
    expect((await app.send(gbMobile(7, 0))).body.error.code).toBe('prefix_blocked');
    await app.send(gbMobile(8, 0)).expect(202);

    app.clock.advance(12 * HOUR);
    await app.send(gbMobile(7, 50)).expect(202);
    const ended = logLines.filter((line) => line.includes('sms pumping: prefix block ended'));
    expect(ended).toHaveLength(1);
    expect(app.signals).toContainEqual({
      country: 'GB',
      signal: 'prefix_velocity',
      action: 'released',
    });
  });

  it('counts numbers, not messages: resends to one number do not block its prefix', async () => {
    const app = pumpingApp({ env: { SMS_PREFIX_HOURLY_DISTINCT: '3' } });
    for (let i = 0; i < 6; i++) await app.send(gbMobile(1, 1)).expect(202);
    await app.send(gbMobile(1, 2)).expect(202);
    await app.send(gbMobile(1, 3)).expect(202);
    expect((await app.send(gbMobile(1, 4))).body.error.code).toBe('prefix_blocked');
  });
});

describe('conversion rate', () => {
  const env = {
    ...POW,
    SMS_CONVERSION_MIN_SAMPLE: '10',
    SMS_PREFIX_HOURLY_DISTINCT: '1000',
    SMS_COUNTRY_HOURLY_LIMIT: '100000',
  };

  it('a country where nobody enters the code: proof after the minimum sample, refusal when proven sends do not convert either, back to normal after the hold', async () => {
    const logLines: string[] = [];
    const app = pumpingApp({ env: { ...env, LOG_LEVEL: 'info' }, logLines });
    for (let i = 0; i < 10; i++) await app.send(gbMobile(i, 1)).expect(202);
    const escalated = await app.send(gbMobile(20, 1));
    expect(escalated.status).toBe(403);
    expect(escalated.body.error).toMatchObject({ code: 'challenge_required', kind: 'pow' });
    const raised = logLines
      .map((line) => JSON.parse(line))
      .find((l) => l.msg === 'sms pumping: destination escalated');
    expect(raised).toMatchObject({
      scope: 'country',
      country: 'GB',
      level: 'proof',
      sent: 10,
      approved: 0,
      floor: 0.3,
    });
    expect(raised.upper).toBeCloseTo(0.278, 3);

    // Another country is not affected.
    await app.send(usNumber(1)).expect(202);

    // Bots that solve the proofs: their proven sends do not convert either.
    for (let i = 0; i < 10; i++) {
      expect((await app.sendWithProof(gbMobile(30 + i, 1))).status).toBe(202);
    }
    const suspended = await app.sendWithProof(gbMobile(50, 1));
    expect(suspended.status).toBe(403);
    expect(suspended.body.error).toMatchObject({
      code: 'destination_suspended',
      retryAfter: 43_200,
    });
    expect(app.signals).toContainEqual({
      country: 'GB',
      signal: 'conversion',
      action: 'escalated',
    });

    // The hold runs out once the evidence has left the window.
    app.clock.advance(12 * HOUR + 2 * HOUR);
    await app.send(gbMobile(60, 1)).expect(202);
    const ended = logLines.filter((l) => l.includes('sms pumping: escalation ended'));
    expect(ended).toHaveLength(2);
  });

  it('when the proofs stop the bots, people who prove themselves keep getting codes', async () => {
    const app = pumpingApp({ env });
    for (let i = 0; i < 10; i++) await app.send(gbMobile(i, 1)).expect(202);
    // People at proof level: they solve the proof and enter their code.
    for (let i = 0; i < 15; i++) {
      const phone = gbMobile(100 + i, 1);
      const sent = await app.sendWithProof(phone);
      expect(sent.status).toBe(202);
      await app.approve(phone, sent.body.verificationId);
    }
    expect((await app.send(gbMobile(200, 1))).body.error.code).toBe('challenge_required');
    expect((await app.sendWithProof(gbMobile(201, 1))).status).toBe(202);
  });

  it('a handful of people who never enter their code do not escalate their country', async () => {
    const app = pumpingApp({ env });
    // 20 numbers, 3 entered: 15%, but too few to be sure the rate is under 30%.
    for (let i = 0; i < 20; i++) {
      const phone = gbMobile(i, 1);
      const sent = await app.send(phone).expect(202);
      if (i < 3) await app.approve(phone, sent.body.verificationId);
    }
    await app.send(gbMobile(40, 1)).expect(202);
  });

  it('a prefix nobody converts in escalates alone while the rest of its country converts', async () => {
    const app = pumpingApp({ env });
    for (let i = 0; i < 30; i++) {
      const phone = gbMobile(100 + i, 1);
      const sent = await app.send(phone).expect(202);
      await app.approve(phone, sent.body.verificationId);
    }
    for (let i = 0; i < 10; i++) await app.send(gbMobile(5, i)).expect(202);
    expect((await app.send(gbMobile(5, 50))).body.error.code).toBe('challenge_required');
    await app.send(gbMobile(6, 1)).expect(202);
  });
});

describe('daily soft budget', () => {
  it('past it every send needs a proof, even where adaptive bot protection would not ask; a burst passes it by none', async () => {
    const app = pumpingApp({ env: { ...POW, SMS_DAILY_SOFT_BUDGET: '5' } });
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => app.send(gbMobile(i, 1))));
    expect(tally(codesOf(burst))).toEqual({ sent: 5, challenge_required: 7 });
    expect((await app.sendWithProof(gbMobile(50, 1))).status).toBe(202);
    expect(app.signals).toContainEqual({
      country: 'GB',
      signal: 'daily_budget',
      action: 'proof_required',
    });
    app.clock.advance(24 * HOUR);
    await app.send(gbMobile(51, 1)).expect(202);
  });

  it('without bot protection it asks nothing, and the hard hourly budget still stops sends', async () => {
    const app = pumpingApp({ env: { SMS_DAILY_SOFT_BUDGET: '2', SMS_HOURLY_BUDGET: '4' } });
    for (let i = 0; i < 4; i++) await app.send(gbMobile(i, 1)).expect(202);
    expect((await app.send(gbMobile(9, 1))).body.error.code).toBe('sms_budget_exhausted');
  });
});

describe('safe list', () => {
  it('SMS_SAFE_LIST numbers and prefixes bypass the pumping defences, not the per-recipient limits', async () => {
    const app = pumpingApp({
      env: {
        SMS_SAFE_LIST: '+447400009,+449090123456',
        SMS_PREFIX_HOURLY_DISTINCT: '2',
        SMS_COUNTRY_HOURLY_LIMIT: '3',
        SMS_COUNTRY_REFUSE_FACTOR: '1',
        SEND_MAX_PER_TARGET: '2',
      },
    });
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => app.send(gbMobile(9, i))));
    expect(tally(codesOf(burst))).toEqual({ sent: 20 });
    await app.send('+449090123456').expect(202);
    // The per-recipient cap still applies to a safe number.
    await app.send('+449090123456').expect(202);
    expect((await app.send('+449090123456')).body.error.code).toBe('rate_limited');
    // Everything else is still defended.
    for (let i = 0; i < 2; i++) await app.send(gbMobile(1, i)).expect(202);
    expect((await app.send(gbMobile(1, 5))).body.error.code).toBe('prefix_blocked');
  });
});

describe('bad input gets a defined answer', () => {
  it('a number outside any country counts under 001, with its own limit', async () => {
    const app = pumpingApp({
      env: { SMS_COUNTRY_HOURLY_LIMIT: '001:1', SMS_COUNTRY_REFUSE_FACTOR: '2' },
    });
    // Inmarsat satellite numbers: mobile, and of no country.
    await app.send('+870773111632').expect(202);
    await app.send('+870773111633').expect(202);
    const third = await app.send('+870773111634');
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('country_limit_reached');
    expect(app.signals).toContainEqual({
      country: '001',
      signal: 'country_volume',
      action: 'refused',
    });
  });

  it('a prefix setting longer than the number groups it under its calling code and first digit', async () => {
    const app = pumpingApp({
      env: { SMS_PREFIX_DROP_DIGITS: '8', SMS_PREFIX_HOURLY_DISTINCT: '1' },
    });
    // Saint Helena: five-digit numbers; both fall in the prefix +2905.
    await app.send('+29051234').expect(202);
    const second = await app.send('+29052345');
    expect(second.status).toBe(403);
    expect(second.body.error.code).toBe('prefix_blocked');
  });

  it('an unreadable state entry is ignored rather than answered with a 500', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ keyPrefix: 'test:', now: () => clock.now() });
    await store.set('fraud:{p:+447400001}:block', 'not json', 60);
    await store.set('fraud:{c:GB}:proof', '{"since":"x"}', 60);
    const app = pumpingApp({ clock, store });
    await app.send(gbMobile(1, 1)).expect(202);
  });
});

describe('a faulty store', () => {
  it('fails a send closed with 503 and recovers; an approval it cannot count still verifies', async () => {
    const clock = new FakeClock();
    const inner = new MemoryStore({ keyPrefix: 'test:', now: () => clock.now() });
    let down = false;
    // Only the defences' own keys fail, so the 503 is theirs.
    const store = new Proxy(inner, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (down && typeof args[0] === 'string' && args[0].startsWith('fraud:')) {
            return Promise.reject(new StoreUnavailableError('memory'));
          }
          return value.apply(target, args);
        };
      },
    }) as Store;
    const app = pumpingApp({ clock, store });
    const sent = await app.send(gbMobile(1, 1)).expect(202);
    down = true;
    const failed = await app.send(gbMobile(1, 2));
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('store_unavailable');
    expect(app.sms.calls).toHaveLength(1);
    await app.approve(gbMobile(1, 1), sent.body.verificationId);
    down = false;
    await app.send(gbMobile(1, 2)).expect(202);
  });
});
