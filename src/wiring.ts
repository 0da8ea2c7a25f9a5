import { createBotProtection } from '../services/bot-protection';
import { createCodes } from '../services/codes';
import { createFailureLimits } from '../services/failure-limits';
import { createLinks } from '../services/links';
import { createPowChallengeService } from '../services/pow-challenge';
import { createProofService } from '../services/proof';
import { createPumpingDefence, type PumpingSignal } from '../services/pumping';
import { pumpingSettings } from '../services/pumping/settings';
import type { Clock, RandomSource } from '../services/runtime';
import { createSendLimits } from '../services/send-limits';
import { createTestIdentities } from '../services/test-identities';
import { createTwilioVerify, isTwilioPurpose } from '../services/twilio-verify';
import { createVerificationService } from '../services/verification';
import { createWebhookNotifier } from '../services/webhook';
import type { Config } from './config';
import type { Lifecycle } from './lifecycle';
import type { Logger } from './logger';
import type { VerificationEvents } from './metrics';
import type { EmailProvider, SmsProvider } from './providers/types';
import { completeStore } from './store/bridge';
import type { Store } from './store/types';

export interface WiringDeps {
  config: Config;
  store: Store;
  sms: SmsProvider;
  email: EmailProvider;
  logger: Logger;
  clock: Clock;
  random: RandomSource;
  /** Where email links point when EMAIL_LINK_BASE_URL is unset: this service's confirm page. */
  defaultLinkBase: string;
  /** Told of every send, check and approval (metrics). */
  events?: VerificationEvents;
  /** Receives every SMS pumping signal, e.g. for metrics. */
  onPumpingSignal?: (event: PumpingSignal) => void;
  /** Told of work that outlives a request's answer (webhook deliveries): see Lifecycle.track. */
  track?: Lifecycle['track'];
}

/**
 * Service wiring: the one place that reads Config for the domain. Each service gets its own
 * settings, named for what it does with them, and the collaborators it uses; none sees Config.
 */
export function wireServices(deps: WiringDeps) {
  const { config, logger, clock, random } = deps;
  // Whatever the backend implements natively is used; the bridge fills in the rest.
  const store = completeStore(deps.store);
  const pow =
    config.BOT_PROTECTION === 'pow'
      ? createPowChallengeService({
          store,
          config,
          secret: config.OTP_SECRET,
          now: () => clock.now(),
          random,
        })
      : undefined;
  const botProtection = createBotProtection({
    mode: config.BOT_PROTECTION,
    policy: config.BOT_PROTECTION_MODE,
    freeSends: config.BOT_PROTECTION_FREE_SENDS,
    store,
    ...(pow ? { pow } : {}),
  });
  const proofs = createProofService({
    secret: config.JWT_SECRET,
    issuer: config.JWT_ISSUER,
    audience: config.PROOF_AUDIENCE,
    ttlSeconds: config.PROOF_TTL_SECONDS,
    clock,
    random,
  });
  const webhook = config.VERIFIED_WEBHOOK_URL
    ? createWebhookNotifier({
        url: config.VERIFIED_WEBHOOK_URL,
        secret: config.WEBHOOK_SECRET,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        retries: config.WEBHOOK_RETRIES,
        logger,
        clock,
        random,
        ...(deps.track ? { track: deps.track } : {}),
      })
    : undefined;
  const pumping = createPumpingDefence({
    store,
    settings: pumpingSettings(config),
    clock,
    logger,
    proofAvailable: config.BOT_PROTECTION !== 'off',
    ...(deps.onPumpingSignal ? { onSignal: deps.onPumpingSignal } : {}),
  });
  const verificationSettings = {
    secret: config.OTP_SECRET,
    purposes: config.PURPOSES,
    codeTtlSeconds: config.OTP_TTL_SECONDS,
    maxAttempts: config.OTP_MAX_ATTEMPTS,
    resendMax: config.RESEND_MAX,
    cooldownSeconds: config.SEND_COOLDOWN_SECONDS,
    checkByRecipient: config.CHECK_BY_RECIPIENT,
    allowedCountries: config.SMS_ALLOWED_COUNTRIES,
    allowUnassignedNumbers: config.SMS_PROVIDER === 'mock',
    smsTemplate: config.SMS_TEMPLATE,
    emailSubject: config.EMAIL_SUBJECT,
    emailCodeSubject: config.EMAIL_CODE_SUBJECT,
    emailCodeTemplate: config.EMAIL_CODE_TEMPLATE,
    linkBase: config.EMAIL_LINK_BASE_URL ?? deps.defaultLinkBase,
  };
  const verificationDeps = {
    store,
    sms: deps.sms,
    email: deps.email,
    logger,
    clock,
    links: createLinks(
      {
        jwtSecret: config.JWT_SECRET,
        hashSecret: config.OTP_SECRET,
        issuer: config.JWT_ISSUER,
        ttlSeconds: config.EMAIL_TOKEN_TTL_SECONDS,
      },
      clock,
      random,
    ),
    proofs,
    limits: createSendLimits(
      {
        cooldownSeconds: config.SEND_COOLDOWN_SECONDS,
        resendMax: config.RESEND_MAX,
        resendWindowSeconds: config.RESEND_WINDOW_SECONDS,
        sendMaxPerTarget: config.SEND_MAX_PER_TARGET,
        sendTargetWindowSeconds: config.SEND_TARGET_WINDOW_SECONDS,
        ipMaxTargetsPerHour: config.IP_MAX_TARGETS_PER_HOUR,
        smsHourlyBudget: config.SMS_HOURLY_BUDGET,
      },
      clock,
    ),
    failures: createFailureLimits({
      maxFailures: config.TARGET_MAX_FAILURES,
      windowSeconds: config.TARGET_FAILURE_WINDOW_SECONDS,
      maxDailyFailures: config.TARGET_MAX_DAILY_FAILURES,
    }),
    pumping,
    ...(webhook ? { webhook } : {}),
    ...(deps.events ? { events: deps.events } : {}),
    ...(config.TEST_IDENTITIES
      ? { testIdentities: createTestIdentities(config, logger, clock) }
      : {}),
  };
  const verification = createVerificationService(verificationSettings, {
    ...verificationDeps,
    codes: createCodes({ secret: config.OTP_SECRET, length: config.OTP_LENGTH }, random),
    ...(config.BOT_PROTECTION === 'off' ? {} : { botProtection }),
  });
  // The Twilio-compatible API is a second front door to the same flows: the same service with the
  // same store, limits and providers, told only what differs there. Its callers are app servers,
  // whose own front ends carry bot protection; each Twilio service has its own code length and
  // keeps its verifications under a purpose of its own.
  const twilio =
    config.TWILIO_COMPAT === 'on'
      ? createTwilioVerify(
          {
            accountSid: config.TWILIO_COMPAT_ACCOUNT_SID ?? '',
            secret: config.OTP_SECRET,
            codeTtlSeconds: config.OTP_TTL_SECONDS,
            maxAttempts: config.OTP_MAX_ATTEMPTS,
            allowUnassignedNumbers: config.SMS_PROVIDER === 'mock',
          },
          {
            store,
            clock,
            random,
            verificationFor: (codeLength) =>
              createVerificationService(
                { ...verificationSettings, extraPurpose: isTwilioPurpose },
                {
                  ...verificationDeps,
                  codes: createCodes({ secret: config.OTP_SECRET, length: codeLength }, random),
                },
              ),
          },
        )
      : undefined;
  return { store, verification, proofs, pow, twilio };
}

export type Services = ReturnType<typeof wireServices>;
