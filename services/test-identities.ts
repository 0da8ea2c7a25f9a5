import type { Config } from '../src/config';
import type { Logger } from '../src/logger';
import { parseTestIdentities, type TestIdentity } from '../src/test-identities';
import type { Clock } from './runtime';

export type TestIdentitiesConfig = Pick<
  Config,
  'NODE_ENV' | 'TEST_IDENTITIES' | 'TEST_IDENTITIES_EXPIRE' | 'OTP_LENGTH' | 'SMS_PROVIDER'
>;

/**
 * Test identities (TEST_IDENTITIES): numbers whose code is fixed in the configuration, for CI
 * suites and app-store review accounts. The send flow asks `lookup` for each number; for a test
 * identity it stores the fixed code as it stores a random one, without a message and without the
 * send limits (no message goes out, so they have nothing to protect, and a suite sending to one
 * number from one runner would trip them). The check is the ordinary check, so every attempt limit
 * applies unchanged. An entry works until its expiry, to the second: `ttlSeconds` cuts the code's
 * life there. Every use is logged, never the code, at warn in production.
 */
export function createTestIdentities(config: TestIdentitiesConfig, logger: Logger, clock: Clock) {
  // loadConfig checked the entries already; here they are only read.
  const { entries } = parseTestIdentities(config.TEST_IDENTITIES, {
    defaultExpiry: config.TEST_IDENTITIES_EXPIRE,
    otpLength: config.OTP_LENGTH,
    allowUnassigned: config.SMS_PROVIDER === 'mock',
    now: clock.now(),
  });
  const byNumber = new Map(entries.map((entry) => [entry.to, entry]));
  const production = config.NODE_ENV === 'production';
  const log = (fields: Record<string, unknown>, message: string) =>
    production ? logger.warn(fields, message) : logger.info(fields, message);

  if (entries.length > 0) {
    const live = entries.filter((entry) => entry.expiresAt > clock.now());
    const last = Math.max(...entries.map((entry) => entry.expiresAt));
    log(
      {
        testIdentities: entries.length,
        live: live.length,
        lastExpiry: new Date(last).toISOString(),
      },
      `TEST_IDENTITIES: ${live.length} of ${entries.length} numbers verify with a fixed code and get no SMS`,
    );
  }

  return {
    /** The entry for this number while it lives; undefined for every other number. */
    lookup(to: string): TestIdentity | undefined {
      const entry = byNumber.get(to);
      return entry && entry.expiresAt > clock.now() ? entry : undefined;
    },

    /** A code's life, cut where the entry ends (whole seconds, at least 1). */
    ttlSeconds(entry: TestIdentity, codeTtlSeconds: number): number {
      const left = Math.max(1, Math.floor((entry.expiresAt - clock.now()) / 1000));
      return Math.min(codeTtlSeconds, left);
    },

    /** The log line of one use: the recipient's HMAC, never the number or the code. */
    reportUse(entry: TestIdentity, use: { target: string; purpose: string }): void {
      log(
        {
          channel: 'sms',
          target: use.target,
          purpose: use.purpose,
          testIdentity: true,
          entryExpiresAt: new Date(entry.expiresAt).toISOString(),
        },
        'test identity used: fixed code set, no SMS sent',
      );
    },
  };
}

export type TestIdentities = ReturnType<typeof createTestIdentities>;
