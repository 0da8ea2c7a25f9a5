import { type Config, parseCountryLimits } from '../../src/config';
import type { ConversionRule } from './decide';

export interface PumpingSettings {
  enabled: boolean;
  /** Lower-case number types SMS may go to, or `any`. */
  allowedTypes: ReadonlySet<string> | 'any';
  /** SMS per country per clock hour before a proof is asked for. */
  countryLimit(country: string): number;
  refuseFactor: number;
  prefixDropDigits: number;
  prefixHourlyDistinct: number;
  prefixBlockSeconds: number;
  conversion: ConversionRule & { windowSeconds: number; holdSeconds: number };
  /** 0: no daily soft budget. */
  dailySoftBudget: number;
  safeList: readonly string[];
  /** How long a send waits for its approval to be counted: the code's lifetime. */
  recordSeconds: number;
  /** Keys the per-number records (never the number itself). */
  secret: string;
}

/** The limit of every country when SMS_COUNTRY_HOURLY_LIMIT gives only overrides. */
export const DEFAULT_COUNTRY_LIMIT = 250;

/**
 * The defences' settings from the configuration. `auto` turns them on with a real SMS provider
 * only: the mock provider costs nothing, and CI suites send to fictional numbers in sequence,
 * which the prefix defence exists to stop.
 */
export function pumpingSettings(config: Config): PumpingSettings {
  const limits = parseCountryLimits(config.SMS_COUNTRY_HOURLY_LIMIT) ?? {
    every: undefined,
    overrides: {},
  };
  const every = limits.every ?? DEFAULT_COUNTRY_LIMIT;
  const types = config.SMS_ALLOWED_NUMBER_TYPES;
  return {
    enabled:
      config.SMS_PUMPING_DEFENCES === 'on' ||
      (config.SMS_PUMPING_DEFENCES === 'auto' && config.SMS_PROVIDER !== 'mock'),
    allowedTypes: types.includes('any') ? 'any' : new Set(types),
    countryLimit: (country) => limits.overrides[country] ?? every,
    refuseFactor: config.SMS_COUNTRY_REFUSE_FACTOR,
    prefixDropDigits: config.SMS_PREFIX_DROP_DIGITS,
    prefixHourlyDistinct: config.SMS_PREFIX_HOURLY_DISTINCT,
    prefixBlockSeconds: config.SMS_PREFIX_BLOCK_SECONDS,
    conversion: {
      floor: config.SMS_CONVERSION_FLOOR,
      minSample: config.SMS_CONVERSION_MIN_SAMPLE,
      windowSeconds: config.SMS_CONVERSION_WINDOW_SECONDS,
      holdSeconds: config.SMS_CONVERSION_HOLD_SECONDS,
    },
    dailySoftBudget: config.SMS_DAILY_SOFT_BUDGET,
    safeList: config.SMS_SAFE_LIST,
    recordSeconds: config.OTP_TTL_SECONDS,
    secret: config.OTP_SECRET,
  };
}
