import type { Config } from '../src/config';
import type { Logger } from '../src/logger';
import type { SecretWrite, Store } from '../src/store/types';
import { parseTestIdentities, type TestIdentity } from '../src/test-identities';
import type { Clock } from './runtime';

export type TestIdentitiesConfig = Pick<
  Config,
  'NODE_ENV' | 'TEST_IDENTITIES' | 'TEST_IDENTITIES_EXPIRE' | 'OTP_LENGTH' | 'SMS_PROVIDER'
>;

export interface TestIdentitiesDeps {
  config: TestIdentitiesConfig;
  store: Store;
  logger: Logger;
  clock: Clock;
}

/** What a send to a test identity answers: the same fields as any send. */
export interface TestIdentitySend {
  success: true;
  status: 'pending';
  channel: 'sms';
  to: string;
  expiresAt: string;
  resendAvailableAt: string;
}

/**
 * Test identities (TEST_IDENTITIES): numbers whose code is fixed in the configuration, for CI
 * suites and app-store review accounts. A send to one stores its fixed code exactly as a send
 * stores a random one and sends nothing; the check is the ordinary check, so the attempt limits
 * (per code, per recipient, per day) apply unchanged. The send limits do not: no message goes
 * out, so there is nothing for them to protect, and a suite sending to one number from one runner
 * would trip them. An entry works until its expiry, to the second: the code's life is cut there.
 * Every use is logged (never the code), at warn in production.
 */
export function createTestIdentities(deps: TestIdentitiesDeps) {
  const { config, store, logger, clock } = deps;
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

    /**
     * Stores the fixed code minted for `entry` where a check finds it, replacing the number's
     * pending code for the purpose as any send does, with no send limit and no message.
     */
    async accept(
      entry: TestIdentity,
      minted: { expiresAt: Date; secret: SecretWrite },
      use: { target: string; purpose: string },
    ): Promise<TestIdentitySend> {
      const now = clock.now();
      const untilEntryEnds = Math.max(1, Math.floor((entry.expiresAt - now) / 1000));
      const ttlSeconds = Math.min(minted.secret.ttlSeconds, untilEntryEnds);
      const { key, hash, binding, data } = minted.secret;
      await store.putSecret(key, hash, ttlSeconds, {
        ...(binding === undefined ? {} : { binding }),
        ...(data === undefined ? {} : { data }),
      });
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
      return {
        success: true,
        status: 'pending',
        channel: 'sms',
        to: entry.to,
        expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
        resendAvailableAt: new Date(now).toISOString(),
      };
    },
  };
}

export type TestIdentities = ReturnType<typeof createTestIdentities>;
