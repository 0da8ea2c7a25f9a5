import { parseDestination } from '../../services/pumping/admin';
import {
  conversionLevel,
  credibleLow,
  slidingCount,
  volumeLevel,
  wilsonInterval,
} from '../../services/pumping/decide';
import { parseState } from '../../services/pumping/index';
import { isSafeListed, numberFacts, shownPrefix, typeAllowed } from '../../services/pumping/number';
import { pumpingSettings } from '../../services/pumping/settings';
import { buildConfig, parseCountryLimits } from '../../src/config';
import { ConfigError } from '../../src/errors';

const RULE = { floor: 0.3, minSample: 20 };

describe('wilsonInterval', () => {
  it('matches the interval worked by hand for 0 of 10 and 8 of 10', () => {
    // z = 1.96. For 0 successes the upper bound has the closed form z²/(n + z²) =
    // 3.8416 / 13.8416 = 0.2775; for 8 of 10 the centre is 0.7168 and the half-width 0.2266.
    const none = wilsonInterval(0, 10);
    expect(none.lower).toBe(0);
    expect(none.upper).toBeCloseTo(0.2775, 4);
    const most = wilsonInterval(8, 10);
    expect(most.lower).toBeCloseTo(0.4902, 4);
    expect(most.upper).toBeCloseTo(0.9433, 4);
  });

  it('is [0, 1] with no trials, stays inside [0, 1], and narrows as the sample grows', () => {
    expect(wilsonInterval(0, 0)).toEqual({ lower: 0, upper: 1 });
    expect(wilsonInterval(5, -3)).toEqual({ lower: 0, upper: 1 });
    const all = wilsonInterval(50, 50);
    expect(all.upper).toBe(1);
    expect(all.lower).toBeLessThan(1);
    // More successes than trials (two windows blended) count as all trials succeeding.
    expect(wilsonInterval(12, 10)).toEqual(wilsonInterval(10, 10));
    const small = wilsonInterval(1, 10);
    const large = wilsonInterval(100, 1000);
    expect(large.upper - large.lower).toBeLessThan(small.upper - small.lower);
  });

  it('takes fractional counts (a sliding window blends two fixed ones)', () => {
    const { upper } = wilsonInterval(2.5, 19.5);
    expect(upper).toBeGreaterThan(wilsonInterval(2, 19.5).upper);
    expect(upper).toBeLessThan(wilsonInterval(3, 19.5).upper);
  });
});

describe('credibleLow', () => {
  it('needs the minimum sample: 19 numbers nobody entered are not enough, 20 are', () => {
    expect(credibleLow({ sent: 19, approved: 0 }, RULE).low).toBe(false);
    expect(credibleLow({ sent: 20, approved: 0 }, RULE).low).toBe(true);
  });

  it('a handful of people who never enter their code cannot trip it', () => {
    // 3 of 20 entered (15%, well under the 30% floor), but 20 is too few to be sure.
    expect(credibleLow({ sent: 20, approved: 3 }, RULE)).toMatchObject({ low: false });
    // The same 15% over 200 numbers is credible.
    expect(credibleLow({ sent: 200, approved: 30 }, RULE).low).toBe(true);
    // People converting at 80% never come near it.
    expect(credibleLow({ sent: 1000, approved: 800 }, RULE).low).toBe(false);
  });
});

describe('conversionLevel', () => {
  const bad = { sent: 30, approved: 0 };
  const good = { sent: 30, approved: 25 };
  const none = { sent: 0, approved: 0 };

  it('escalates to proof on a credibly low rate, and only then to refusal', () => {
    expect(conversionLevel('none', bad, none, RULE).level).toBe('proof');
    expect(conversionLevel('none', good, none, RULE).level).toBe('none');
    // Old evidence of proven sends never skips the proof stage.
    expect(conversionLevel('none', good, bad, RULE).level).toBe('none');
    expect(conversionLevel('proof', bad, none, RULE)).toMatchObject({
      level: 'proof',
      supported: true,
    });
    expect(conversionLevel('proof', bad, bad, RULE).level).toBe('refuse');
    // Proven sends that convert (the bots stopped at the proof) keep it at proof.
    expect(conversionLevel('proof', bad, good, RULE).level).toBe('proof');
  });

  it('says when the evidence no longer supports the level, so its hold can run out', () => {
    expect(conversionLevel('proof', good, good, RULE)).toMatchObject({
      level: 'proof',
      supported: false,
    });
    expect(conversionLevel('refuse', none, none, RULE)).toMatchObject({
      level: 'refuse',
      supported: false,
    });
    expect(conversionLevel('refuse', none, bad, RULE).supported).toBe(true);
  });
});

describe('volumeLevel and slidingCount', () => {
  it('free up to the limit, proof past it, refused past limit x factor', () => {
    expect(volumeLevel(5, 5, 2)).toBe('none');
    expect(volumeLevel(6, 5, 2)).toBe('proof');
    expect(volumeLevel(10, 5, 2)).toBe('proof');
    expect(volumeLevel(11, 5, 2)).toBe('refuse');
    // A factor of 1 refuses straight past the limit.
    expect(volumeLevel(6, 5, 1)).toBe('refuse');
  });

  it('weighs the previous window by the share the sliding window still covers', () => {
    expect(slidingCount(4, 10, 0)).toBe(14);
    expect(slidingCount(4, 10, 0.25)).toBe(11.5);
    expect(slidingCount(4, 10, 1)).toBe(4);
    expect(slidingCount(4, 10, 7)).toBe(4);
  });
});

describe('numberFacts: type, country and prefix', () => {
  it('types numbers with the full metadata', () => {
    expect(numberFacts('+447400123456', 'GB', 3)).toEqual({
      type: 'mobile',
      country: 'GB',
      prefix: '+447400123',
      dropped: 3,
    });
    expect(numberFacts('+12125550143', 'US', 3).type).toBe('fixed_line_or_mobile');
    expect(numberFacts('+449090123456', 'GB', 3).type).toBe('premium_rate');
    expect(numberFacts('+33811690466', 'FR', 3).type).toBe('shared_cost');
  });

  it('a number libphonenumber cannot type is unknown; one outside any country is 001', () => {
    // +1 555 numbers are fictional: only the mock provider accepts them.
    expect(numberFacts('+15551234567', 'US', 3)).toMatchObject({
      type: 'unknown',
      prefix: '+15551234',
    });
    // Inmarsat: a mobile number of no country.
    expect(numberFacts('+870773111632', undefined, 3)).toMatchObject({
      type: 'mobile',
      country: '001',
      prefix: '+870773111',
    });
  });

  it('a setting longer than the number keeps the calling code and the first national digit', () => {
    // Saint Helena: five-digit national numbers.
    expect(numberFacts('+29051234', 'SH', 8)).toMatchObject({ prefix: '+2905', dropped: 4 });
    expect(numberFacts('+29051234', 'SH', 4)).toMatchObject({ prefix: '+2905', dropped: 4 });
    expect(numberFacts('+29051234', 'SH', 3)).toMatchObject({ prefix: '+29051', dropped: 3 });
    // Never reaches into the calling code, so two countries never share a prefix.
    expect(numberFacts('+6837012', 'NU', 8).prefix).toBe('+6837');
  });

  it('shows a prefix with its dropped digits as x, so no log line holds the number', () => {
    const facts = numberFacts('+447400123456', 'GB', 3);
    expect(shownPrefix(facts)).toBe('+447400123xxx');
    expect(shownPrefix(numberFacts('+447400123456', 'GB', 1))).toBe('+44740012345x');
  });
});

describe('safe list, type policy, destinations', () => {
  it('matches numbers and prefixes', () => {
    expect(isSafeListed('+447400123456', ['+4474001'])).toBe(true);
    expect(isSafeListed('+447400123456', ['+447400123456'])).toBe(true);
    expect(isSafeListed('+447400123456', ['+4474002', '+1'])).toBe(false);
    expect(isSafeListed('+447400123456', [])).toBe(false);
  });

  it('allows the listed types, or any', () => {
    expect(typeAllowed('mobile', new Set(['mobile']))).toBe(true);
    expect(typeAllowed('unknown', new Set(['mobile']))).toBe(false);
    expect(typeAllowed('premium_rate', 'any')).toBe(true);
  });

  it('reads a destination the CLI is given', () => {
    expect(parseDestination('gb')).toMatchObject({ kind: 'country', name: 'GB' });
    expect(parseDestination('001')).toMatchObject({ kind: 'country', name: '001' });
    expect(parseDestination('+447400123xxx')).toMatchObject({ kind: 'prefix', name: '+447400123' });
    expect(parseDestination('XX')).toBeUndefined();
    expect(parseDestination('447400')).toBeUndefined();
  });

  it('reads no state out of a damaged entry', () => {
    expect(parseState('{"since":1,"until":2}')).toEqual({ since: 1, until: 2 });
    expect(parseState('not json')).toBeUndefined();
    expect(parseState('null')).toBeUndefined();
    expect(parseState('{"until":"soon"}')).toBeUndefined();
    expect(parseState(undefined)).toBeUndefined();
  });
});

describe('configuration', () => {
  it('auto is on with a real provider and off with the mock', () => {
    expect(pumpingSettings(buildConfig()).enabled).toBe(false);
    expect(pumpingSettings(buildConfig({ SMS_PUMPING_DEFENCES: 'on' })).enabled).toBe(true);
    const twilio = buildConfig({
      SMS_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'token',
      TWILIO_FROM: '+15005550006',
    });
    expect(pumpingSettings(twilio).enabled).toBe(true);
    expect(pumpingSettings({ ...twilio, SMS_PUMPING_DEFENCES: 'off' }).enabled).toBe(false);
    expect(pumpingSettings(twilio).allowedTypes).toEqual(
      new Set(['mobile', 'fixed_line_or_mobile']),
    );
  });

  it('SMS_COUNTRY_HOURLY_LIMIT: every country, overrides, or both', () => {
    expect(parseCountryLimits('250')).toEqual({ every: 250, overrides: {} });
    expect(parseCountryLimits('us:800, GB:200')).toEqual({
      every: undefined,
      overrides: { US: 800, GB: 200 },
    });
    const settings = pumpingSettings(buildConfig({ SMS_COUNTRY_HOURLY_LIMIT: 'US:800,001:5' }));
    expect(settings.countryLimit('US')).toBe(800);
    expect(settings.countryLimit('001')).toBe(5);
    // Countries without an override keep the default.
    expect(settings.countryLimit('FR')).toBe(250);
    expect(
      pumpingSettings(buildConfig({ SMS_COUNTRY_HOURLY_LIMIT: '40,GB:9' })).countryLimit('FR'),
    ).toBe(40);
  });

  it.each([
    ['SMS_COUNTRY_HOURLY_LIMIT', 'XX:5'],
    ['SMS_COUNTRY_HOURLY_LIMIT', 'GB:0'],
    ['SMS_COUNTRY_HOURLY_LIMIT', 'GB:5,GB:6'],
    ['SMS_COUNTRY_HOURLY_LIMIT', '5,6'],
    ['SMS_COUNTRY_HOURLY_LIMIT', 'lots'],
    ['SMS_ALLOWED_NUMBER_TYPES', 'mobile,any'],
    ['SMS_ALLOWED_NUMBER_TYPES', 'cellphone'],
    ['SMS_SAFE_LIST', '4474001'],
    ['SMS_PREFIX_DROP_DIGITS', '0'],
    ['SMS_PREFIX_DROP_DIGITS', '9'],
    ['SMS_CONVERSION_FLOOR', '30'],
    ['SMS_PUMPING_DEFENCES', 'yes'],
  ])('refuses %s=%s at start, naming it', (name, value) => {
    let error: unknown;
    try {
      buildConfig({ [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.stringContaining(`Invalid ${name}`)]);
  });
});
