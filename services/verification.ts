import type { Config } from '../src/config';
import { DeliveryFailedError, RateLimitError, VerifydError } from '../src/errors';
import type { Logger } from '../src/logger';
import type { EmailProvider, SmsProvider } from '../src/providers/types';
import type { SecretWrite, Store } from '../src/store/types';
import { createEmailTokenService } from './email-token';
import { linkWithToken, renderSms, renderVerificationEmail } from './messages';
import { createOtpService, targetId } from './otp';
import { createProofService } from './proof';
import type { Clock, RandomSource } from './runtime';
import { createSendLimits } from './send-limits';
import { createTargetLock } from './target-lock';
import { type EmailTarget, emailTarget, type PhoneTarget, type Target } from './targets';
import { createTestIdentities } from './test-identities';
import { createWebhookNotifier } from './webhook';

export interface VerificationDeps {
  config: Config;
  store: Store;
  sms: SmsProvider;
  email: EmailProvider;
  logger: Logger;
  clock: Clock;
  random: RandomSource;
  /** Where email links point when EMAIL_LINK_BASE_URL is unset: this service's confirm page. */
  defaultLinkBase: string;
}

export interface SendContext {
  /** The sender's client key: its IPv4 address or IPv6 network (see src/http/client-key.ts). */
  client: string;
  purpose: string;
  userId?: string;
  isResend: boolean;
}

export interface PendingVerification {
  success: true;
  status: 'pending';
  channel: 'sms' | 'email';
  to: string;
  expiresAt: string;
  resendAvailableAt: string;
  codeLength?: number;
  /** SMS only: the handle a check presents to be judged on this verification alone. */
  verificationId?: string;
}

export interface Approved {
  verified: true;
  to: string;
  proof: string;
}

/**
 * The verification flows, independent of HTTP: send a code or link within every limit, check it
 * atomically, count failures per recipient, and hand out a proof on success.
 */
export function createVerificationService(deps: VerificationDeps) {
  const { config, store, logger, clock, random } = deps;
  const otp = createOtpService({
    store,
    secret: config.OTP_SECRET,
    length: config.OTP_LENGTH,
    ttlSeconds: config.OTP_TTL_SECONDS,
    maxAttempts: config.OTP_MAX_ATTEMPTS,
    random,
    clock,
  });
  const emailTokens = createEmailTokenService({
    store,
    jwtSecret: config.JWT_SECRET,
    hashSecret: config.OTP_SECRET,
    issuer: config.JWT_ISSUER,
    ttlSeconds: config.EMAIL_TOKEN_TTL_SECONDS,
    clock,
    random,
  });
  const proofs = createProofService({
    secret: config.JWT_SECRET,
    issuer: config.JWT_ISSUER,
    audience: config.PROOF_AUDIENCE,
    ttlSeconds: config.PROOF_TTL_SECONDS,
    clock,
    random,
  });
  const limits = createSendLimits(
    store,
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
  );
  const locks = createTargetLock({
    store,
    maxFailures: config.TARGET_MAX_FAILURES,
    windowSeconds: config.TARGET_FAILURE_WINDOW_SECONDS,
    maxDailyFailures: config.TARGET_MAX_DAILY_FAILURES,
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
      })
    : undefined;
  const linkBase = config.EMAIL_LINK_BASE_URL ?? deps.defaultLinkBase;
  const testIdentities = createTestIdentities({ config, store, logger, clock });

  // An address counts as its mailbox (see mailboxOf): one recipient for every limit, its lock, and
  // the single use of its links.
  const idOf = (target: Target) =>
    targetId(
      config.OTP_SECRET,
      `${target.channel}:${target.channel === 'email' ? target.mailbox : target.to}`,
    );

  /**
   * Sends within the limits. Every limit and the new code or link are one store step, so a refused
   * send leaves the recipient's current code alone. Wrong guesses never refuse a send: they are
   * anybody's to make, and a lock on sending would let a stranger keep the owner from getting a
   * new code; the guesses themselves stay refused while the recipient's failures are full. When
   * the provider refused the message, the new code dies and the limits are given back; when the outcome is unknown
   * (a timeout, a lost connection, a 5xx) the message may still arrive, so the code stays valid
   * and the limits stay charged (see the contract in src/providers/types.ts).
   */
  async function deliver<Minted extends { expiresAt: Date; secret: SecretWrite }>(
    target: Target,
    id: string,
    context: SendContext,
    minted: Minted,
    send: (minted: Minted) => Promise<unknown>,
  ) {
    const ticket = await limits.acquire({
      channel: target.channel,
      targetId: id,
      client: context.client,
      isResend: context.isResend,
      secret: minted.secret,
    });
    try {
      await send(minted);
    } catch (error) {
      // Anything but a provider's definite refusal may have reached the recipient.
      if (error instanceof DeliveryFailedError) reportFailure(error, id);
      if (error instanceof DeliveryFailedError && error.outcome === 'refused') {
        await Promise.all([store.delete(minted.secret.key), limits.refund(ticket)]);
      }
      throw error;
    }
    const now = clock.now();
    logger.info(
      { channel: target.channel, target: id, purpose: context.purpose, resend: context.isResend },
      'verification sent',
    );
    return {
      success: true as const,
      status: 'pending' as const,
      channel: target.channel,
      to: target.to,
      expiresAt: minted.expiresAt.toISOString(),
      resendAvailableAt: new Date(now + config.SEND_COOLDOWN_SECONDS * 1000).toISOString(),
    };
  }

  /**
   * The one log line per provider failure, so an operator can tell a wrong auth token from a bad
   * number: codes and fixed reasons only (the failure never holds the number, the text or a
   * credential). A misconfigured provider fails every send, hence `error`.
   */
  function reportFailure(error: DeliveryFailedError, id: string): void {
    const { provider, httpStatus, providerCode, netError, reason } = error.failure;
    const fields = {
      provider,
      channel: error.channel,
      httpStatus,
      providerCode,
      netError,
      reason,
      outcome: error.outcome,
      answered: error.code,
      target: id,
    };
    if (error.code === 'provider_misconfigured') {
      logger.error(fields, 'provider refused our credentials or account');
    } else if (error.outcome === 'unknown') {
      logger.warn(fields, 'provider outcome unknown; the code or link stays valid');
    } else {
      logger.warn(fields, 'provider refused the message');
    }
  }

  function approve(target: Target, purpose: string, userId: string | undefined): string {
    const proof = proofs.issue({
      channel: target.channel,
      sub: target.to,
      purpose,
      ...(userId === undefined ? {} : { userId }),
    });
    logger.info(
      { channel: target.channel, target: idOf(target), purpose },
      'verification approved',
    );
    void webhook?.notify({
      channel: target.channel,
      to: target.to,
      purpose,
      ...(userId === undefined ? {} : { userId }),
    });
    return proof;
  }

  return {
    proofs,
    emailTokens,

    async sendPhoneCode(target: PhoneTarget, context: SendContext): Promise<PendingVerification> {
      const id = idOf(target);
      // A test identity's fixed code is stored without a message or send limits (see there).
      const fixed = testIdentities.lookup(target.to);
      const minted = otp.mint(context.purpose, { to: target.to, id }, context.userId, fixed?.code);
      const pending = fixed
        ? await testIdentities.accept(fixed, minted, { target: id, purpose: context.purpose })
        : await deliver(target, id, context, minted, ({ code, expiresAt }) =>
            deps.sms.send({
              to: target.to,
              body: renderSms(config.SMS_TEMPLATE, code),
              validForSeconds: (expiresAt.getTime() - clock.now()) / 1000,
            }),
          );
      return { ...pending, codeLength: config.OTP_LENGTH, verificationId: minted.verificationId };
    },

    async checkPhoneCode(
      target: PhoneTarget,
      code: string,
      purpose: string,
      userId?: string,
      verificationId?: string,
    ): Promise<Approved> {
      // Without recipient-only checks nothing below is reached without an id, so a stranger who
      // knows only the number learns nothing: not whether a code is pending, nor its attempts.
      if (verificationId === undefined && !config.CHECK_BY_RECIPIENT) {
        throw new VerifydError('invalid_request', 'Invalid request: verificationId is required.', {
          field: 'verificationId',
        });
      }
      const id = idOf(target);
      const path = verificationId === undefined ? 'recipient' : 'verification';
      // The recipient's failure counts are checked and counted by the attempt itself, so no burst
      // of guesses, over any number of codes and purposes, passes them. A check with its id is
      // judged on its own code and the daily count alone (see createTargetLock).
      const result = await otp.check(purpose, { to: target.to, id }, code, {
        failures: locks.failures(id, path),
        ...(verificationId === undefined ? {} : { verificationId }),
      });
      switch (result.status) {
        case 'exhausted':
          // Refused before the comparison: the pending code is neither tried nor used up.
          throw locks.refusal(result.resetMs);
        case 'match':
          await locks.clear(id);
          // The code is used up either way: it was delivered for one user's verification and
          // must not be redeemed for another.
          if (userId !== undefined && userId !== result.userId) throw userMismatch();
          return { verified: true, to: target.to, proof: approve(target, purpose, result.userId) };
        case 'mismatch':
          throw new VerifydError('invalid_code', 'The code is incorrect.', {
            attemptsRemaining: result.attemptsRemaining,
          });
        case 'locked':
          // This lane of the code is dead: nothing was compared, so nothing was counted.
          throw new RateLimitError(
            'too_many_attempts',
            'Too many wrong attempts; request a new code.',
            config.SEND_COOLDOWN_SECONDS,
          );
        case 'missing':
          // With an id, the same answer whether the id is wrong or its code gone or used.
          throw new VerifydError(
            'code_expired',
            path === 'verification'
              ? 'There is no pending code for this verification; request a new one.'
              : 'There is no pending code for this number; request a new one.',
          );
      }
    },

    async sendEmailLink(target: EmailTarget, context: SendContext): Promise<PendingVerification> {
      const id = idOf(target);
      // The link names the address given, so its proof does; its single use is the mailbox's, so
      // a newer link to any variant of the mailbox replaces this one.
      const minted = emailTokens.mint(
        {
          email: target.to,
          purpose: context.purpose,
          ...(context.userId === undefined ? {} : { userId: context.userId }),
        },
        id,
      );
      return deliver(target, id, context, minted, ({ token }) =>
        deps.email.send(
          renderVerificationEmail(
            target.to,
            config.EMAIL_SUBJECT,
            linkWithToken(linkBase, token, context.purpose),
            config.EMAIL_TOKEN_TTL_SECONDS,
          ),
        ),
      );
    },

    async confirmEmailToken(token: string, purpose: string, userId?: string): Promise<Approved> {
      const claims = emailTokens.inspect(token, purpose);
      // The link carries the send's userId in its signed claims, so a mismatch is refused before
      // the link is used: the right user can still open it.
      if (userId !== undefined && userId !== claims.userId) throw userMismatch();
      const target = emailTarget(claims.email);
      const result = await emailTokens.consume(claims, idOf(target));
      switch (result.status) {
        case 'match':
          return {
            verified: true,
            to: target.to,
            proof: approve(target, claims.purpose, claims.userId),
          };
        case 'locked':
          throw new RateLimitError(
            'too_many_attempts',
            'This link was tried too often; request a new one.',
            config.SEND_COOLDOWN_SECONDS,
          );
        case 'superseded':
        case 'missing':
          throw new VerifydError(
            'token_used',
            'This link was already used or replaced by a newer one.',
          );
      }
    },
  };
}

export type VerificationService = ReturnType<typeof createVerificationService>;

/** A check that names another user than the send did. */
function userMismatch(): VerifydError {
  return new VerifydError(
    'user_mismatch',
    'This verification was started for another user; start a new one for this user.',
  );
}
