import { seal, unseal } from '../src/crypto';
import { DeliveryFailedError, RateLimitError, VerifydError } from '../src/errors';
import { INVALID_CLIENT } from '../src/http/client-key';
import type { Logger } from '../src/logger';
import type { VerificationEvents } from '../src/metrics';
import type { EmailProvider, SmsProvider } from '../src/providers/types';
import { type Channel, keys } from '../src/store/keys';
import type { AdmissionOutcome, CompleteStore, SecretWrite } from '../src/store/types';
import type { TestIdentity } from '../src/test-identities';
import type { BotProtection, Proof } from './bot-protection';
import { type Codes, recipientId } from './codes';
import type { CheckPath, FailureLimits } from './failure-limits';
import type { Links } from './links';
import { linkWithToken, renderCodeEmail, renderSms, renderVerificationEmail } from './messages';
import {
  countryOf,
  observeChecks,
  observeGuard,
  observeRefusal,
  observeSend,
} from './observed-verification';
import type { ProofService } from './proof';
import type { PumpingDefence } from './pumping';
import type { Clock } from './runtime';
import type { SendLimits } from './send-limits';
import { emailTarget, type PhoneTarget, parseEmail, parsePhone, type Target } from './targets';
import type { TestIdentities } from './test-identities';
import type { WebhookNotifier } from './webhook';

/** What the verification flows are told, and nothing more (the wiring maps Config onto it). */
export interface VerificationSettings {
  /** OTP_SECRET: keys recipient ids and seals the userId stored beside a code. */
  secret: string;
  /** PURPOSES: the purposes a request may name. */
  purposes: readonly string[];
  /**
   * Purposes accepted besides PURPOSES, for a front door that derives its own (the
   * Twilio-compatible API keeps each of its services' verifications under a purpose of its own).
   */
  extraPurpose?: (purpose: string) => boolean;
  codeTtlSeconds: number;
  maxAttempts: number;
  /** RESEND_MAX: a verification keeps its newest RESEND_MAX + 1 codes or links usable. */
  resendMax: number;
  cooldownSeconds: number;
  checkByRecipient: boolean;
  /** SMS_ALLOWED_COUNTRIES; empty allows all. */
  allowedCountries: readonly string[];
  /** Accept well-formed but unassigned numbers (mock provider only). */
  allowUnassignedNumbers: boolean;
  smsTemplate: string;
  emailSubject: string;
  /** EMAIL_CODE_SUBJECT and EMAIL_CODE_TEMPLATE: the email that carries a code. */
  emailCodeSubject: string;
  emailCodeTemplate: string;
  /** Where email links point (EMAIL_LINK_BASE_URL, else this service's confirm page). */
  linkBase: string;
}

export interface VerificationDeps {
  store: CompleteStore;
  sms: SmsProvider;
  email: EmailProvider;
  logger: Logger;
  clock: Clock;
  codes: Codes;
  links: Links;
  proofs: ProofService;
  limits: SendLimits;
  failures: FailureLimits;
  /** Absent when bot protection is off. */
  botProtection?: Pick<BotProtection, 'check'>;
  /** The SMS pumping defences: a guard around each SMS send, told of each right code. */
  pumping?: Pick<PumpingDefence, 'guard' | 'recordApproved'>;
  webhook?: Pick<WebhookNotifier, 'notify'>;
  /** Told of every send, check and approval (metrics). */
  events?: VerificationEvents;
  /** TEST_IDENTITIES: numbers with a fixed code, no message and no send limit. */
  testIdentities?: TestIdentities;
}

export interface SendRequest {
  purpose: string;
  userId?: string | undefined;
  /**
   * The sender's client key: its IPv4 address or IPv6 network (see src/http/client-key.ts).
   * Undefined only for an authenticated backend that names no device: no per-client limit then.
   */
  client: string | undefined;
  /** Bot protection's proof, when the request carries one. */
  proof?: Proof;
  isResend: boolean;
  /** The pumping defences escalated the send: bot protection asks for a proof in any case. */
  proofRequired?: boolean;
}

export interface PendingVerification {
  success: true;
  status: 'pending';
  channel: Channel;
  to: string;
  expiresAt: string;
  resendAvailableAt: string;
  codeLength?: number;
  /** Codes only: the handle a check presents to be judged on this verification alone. */
  verificationId?: string;
}

export interface Approved {
  verified: true;
  to: string;
  proof: string;
}

/**
 * Links cannot be guessed once their signature checks, so their misses are only old links and a
 * cap would let somebody clicking old links kill the newest. The cap stays finite because the
 * store contract takes a number, and high enough that no person reaches it.
 */
const LINK_ATTEMPT_CAP = 1_000_000;

/** Without the pumping defences (embedders wiring the service themselves) a send goes as it is. */
const NO_PUMPING: Pick<PumpingDefence, 'guard'> = { guard: (_target, send) => send(false) };

/**
 * The verification flows, independent of HTTP. Each flow is owned here: this module decides it,
 * makes its store calls (one admission per send, one attempt per check) and turns their outcome
 * into the answer. The code, link and limit modules it uses are pure.
 */
export function createVerificationService(settings: VerificationSettings, deps: VerificationDeps) {
  const { store, logger, clock, codes, links, proofs, limits, failures } = deps;
  const phonePolicy = { allowUnassigned: settings.allowUnassignedNumbers };
  const keep = settings.resendMax + 1;

  // An address counts as its mailbox (see mailboxOf): one recipient for every limit, and one
  // verification for the links to any of its variants.
  const idOf = (target: Target) =>
    recipientId(
      settings.secret,
      `${target.channel}:${target.channel === 'email' ? target.mailbox : target.to}`,
    );

  function assertPurpose(purpose: string): void {
    // Each purpose holds a verification of its own, so a caller free to name any purpose could
    // keep as many codes live for one number as it likes.
    if (!settings.purposes.includes(purpose) && !settings.extraPurpose?.(purpose)) {
      throw new VerifydError(
        'invalid_request',
        `Invalid request: purpose must be one of ${settings.purposes.join(', ')}.`,
        { field: 'purpose' },
      );
    }
  }

  function assertCountry(target: PhoneTarget): void {
    const allowed = settings.allowedCountries;
    if (allowed.length === 0) return;
    if (!target.country || !allowed.includes(target.country)) {
      throw new VerifydError(
        'country_not_allowed',
        'SMS verification is not offered for this country.',
        { country: target.country ?? 'unknown' },
      );
    }
  }

  // Every send that passed its input checks is reported: sent, refused by which limit, or failed.
  const send: typeof sendUnobserved = (target, ...rest) =>
    observeSend(deps.events, target, () => sendUnobserved(target, ...rest));

  /**
   * The send flow: bot protection, then every limit and the new code or link as one store step
   * (so a refused send leaves the recipient's verification alone), then the provider. Wrong
   * guesses never refuse a send: they are anybody's to make. When the provider refused the
   * message, the limits are given back and a verification this send started is removed; when
   * the outcome is unknown (a timeout, a lost connection, a 5xx) the message may still arrive, so
   * the code stays valid and the limits stay charged (see src/providers/types.ts).
   */
  async function sendUnobserved(
    target: Target,
    request: SendRequest,
    secret: Omit<SecretWrite, 'key' | 'keep' | 'binding'> & { binding?: string },
    deliver: () => Promise<unknown>,
    kind: SecretKind = target.channel,
    testIdentity?: TestIdentity,
  ): Promise<{ binding: string | undefined; key: string }> {
    if (deps.botProtection) {
      await deps.botProtection.check(
        request.proof ?? {},
        request.client ?? INVALID_CLIENT,
        request.proofRequired,
      );
    }
    const id = idOf(target);
    const plan = limits.plan({
      channel: target.channel,
      recipient: id,
      client: request.client,
      isResend: request.isResend,
    });
    // A test identity gets no message: its code is stored with no send limit and nothing is sent.
    const admission = testIdentity ? { counters: [] } : plan.admission;
    const key = verificationKey(kind, request.purpose, id);
    const outcome = await store.admit({
      ...admission,
      secret: { ...secret, key, keep, binding: secret.binding ?? codes.newBinding() },
    });
    if (outcome.status !== 'admitted') throw plan.refusal(outcome);
    if (testIdentity) {
      deps.testIdentities?.reportUse(testIdentity, { target: id, purpose: request.purpose });
      return { binding: outcome.binding, key };
    }
    try {
      await deliver();
    } catch (error) {
      if (error instanceof DeliveryFailedError) reportFailure(error, id);
      if (error instanceof DeliveryFailedError && error.outcome === 'refused') {
        await refund(plan.admission, outcome, key);
      }
      throw error;
    }
    logger.info(
      { channel: target.channel, target: id, purpose: request.purpose, resend: request.isResend },
      'verification sent',
    );
    return { binding: outcome.binding, key };
  }

  /**
   * Gives back what a refused delivery consumed: the person got no message, so it must cost them
   * neither a resend nor a cooldown. A recipient's marker goes with its count, so the recipient is
   * counted again next time. The code dies with a verification it started; one that joined a live
   * verification stays in it (it cannot be told apart there), one more never-sent code among its
   * newest RESEND_MAX + 1.
   */
  async function refund(
    admission: ReturnType<SendLimits['plan']>['admission'],
    outcome: Extract<AdmissionOutcome, { status: 'admitted' }>,
    key: string,
  ): Promise<void> {
    await Promise.all([
      admission.gate ? store.delete(admission.gate.key) : undefined,
      ...admission.counters.flatMap((counter, i) =>
        outcome.counted[i]
          ? [store.decrement(counter.key), counter.distinct && store.delete(counter.distinct.key)]
          : [],
      ),
      outcome.joined ? undefined : store.delete(key),
    ]);
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

  function pending(target: Target, expiresAt: Date): PendingVerification {
    return {
      success: true,
      status: 'pending',
      channel: target.channel,
      to: target.to,
      expiresAt: expiresAt.toISOString(),
      resendAvailableAt: new Date(clock.now() + settings.cooldownSeconds * 1000).toISOString(),
    };
  }

  function approve(target: Target, purpose: string, userId: string | undefined): string {
    deps.events?.approve({ channel: target.channel, country: countryOf(target) });
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
    void deps.webhook?.notify({
      channel: target.channel,
      to: target.to,
      purpose,
      ...(userId === undefined ? {} : { userId }),
    });
    return proof;
  }

  /** Where a target's codes live: a phone's verification, or an address's emailed codes. */
  function codeKey(target: Target, purpose: string): string {
    return verificationKey(target.channel === 'sms' ? 'sms' : 'email-code', purpose, idOf(target));
  }

  /** What a code's HMAC names besides the code: the number, or the mailbox behind an address. */
  const codeSubject = (target: Target) =>
    target.channel === 'sms' ? target.to : `email:${target.mailbox}`;

  /**
   * The code flows, shared by phone and email: one code minted (or the caller's own, where a
   * front door allows one), admitted with the send's limits, then delivered.
   */
  async function sendCode(
    target: Target,
    input: SendRequest & { code?: string | undefined },
    deliver: (code: string, validForSeconds: number) => Promise<unknown>,
  ): Promise<PendingVerification> {
    // A test identity's code is fixed, and dies where the identity ends.
    const identities = deps.testIdentities;
    const fixed = target.channel === 'sms' ? identities?.lookup(target.to) : undefined;
    const code =
      fixed?.code ?? (input.code === undefined ? codes.mint() : codes.normalise(input.code));
    if (code === undefined) {
      throw new VerifydError(
        'invalid_request',
        `Invalid request: code must be ${codes.length} digits.`,
        { field: 'code' },
      );
    }
    const ttlSeconds =
      fixed && identities
        ? identities.ttlSeconds(fixed, settings.codeTtlSeconds)
        : settings.codeTtlSeconds;
    const expiresAt = new Date(clock.now() + ttlSeconds * 1000);
    const key = codeKey(target, input.purpose);
    const deliverTo = (proofRequired: boolean) =>
      send(
        target,
        { ...input, proofRequired },
        {
          hash: codes.hash(input.purpose, codeSubject(target), code),
          ttlSeconds,
          maxAttempts: settings.maxAttempts,
          // The send's userId goes with its code, so that the proof names the user the code was
          // sent for, not whichever user a check names. Sealed: a store dump must not show it.
          ...(input.userId === undefined ? {} : { data: seal(settings.secret, key, input.userId) }),
        },
        () => deliver(code, (expiresAt.getTime() - clock.now()) / 1000),
        target.channel === 'sms' ? 'sms' : 'email-code',
        fixed,
      );
    // The pumping defences guard SMS sends: they may refuse one, or escalate it to a required
    // proof. A test identity sends no message, so there is nothing for them to guard.
    const sent = await (fixed || target.channel !== 'sms'
      ? deliverTo(false)
      : observeGuard(deps.events, target, () =>
          (deps.pumping ?? NO_PUMPING).guard(target, deliverTo),
        ));
    return {
      ...pending(target, expiresAt),
      codeLength: codes.length,
      verificationId: codes.verificationId(sent.key, sent.binding ?? ''),
    };
  }

  async function checkCode(target: Target, input: CodeCheck): Promise<Approved> {
    const code = codes.normalise(input.code);
    // A malformed code is a client mistake, not a guess: refused before it reaches the store,
    // so it uses up none of the verification's attempts.
    if (code === undefined) {
      throw new VerifydError(
        'invalid_request',
        `Invalid request: code must be ${codes.length} digits.`,
        { field: 'code' },
      );
    }
    // Without recipient-only checks nothing below is reached without an id, so a stranger who
    // knows only the number learns nothing: not whether a code is pending, nor its attempts.
    if (input.verificationId === undefined && !settings.checkByRecipient) {
      throw new VerifydError('invalid_request', 'Invalid request: verificationId is required.', {
        field: 'verificationId',
      });
    }
    const id = idOf(target);
    const key = codeKey(target, input.purpose);
    const path: CheckPath = input.verificationId === undefined ? 'recipient' : 'verification';
    const binding =
      input.verificationId === undefined ? undefined : codes.bindingOf(key, input.verificationId);
    const recipient = target.channel === 'sms' ? 'number' : 'address';
    const noCode = () =>
      new VerifydError(
        'code_expired',
        path === 'verification'
          ? 'There is no pending code for this verification; request a new one.'
          : `There is no pending code for this ${recipient}; request a new one.`,
      );
    // A forged id is answered as a wrong one: the same as no verification.
    if (path === 'verification' && binding === undefined) throw noCode();
    // The recipient's failure counts are checked and counted by the attempt itself, so no burst
    // of guesses, over any number of codes and purposes, passes them.
    const result = await store.attempt({
      key,
      hash: codes.hash(input.purpose, codeSubject(target), code),
      maxAttempts: settings.maxAttempts,
      failures: failures.failures(id, path),
      // A success starts the recipient's failure window over, in the same step.
      clearOnMatch: [failures.clearedOnSuccess(id)],
      ...(binding === undefined ? {} : { binding }),
    });
    switch (result.status) {
      case 'exhausted':
        // Refused before the comparison: the verification is neither tried nor used up.
        throw failures.refusal(result.resetMs);
      case 'match': {
        const userId =
          result.data === undefined ? undefined : unseal(settings.secret, key, result.data);
        // The verification is used up either way: it was for one user and must not be
        // redeemed for another.
        if (input.userId !== undefined && input.userId !== userId) throw userMismatch();
        if (target.channel === 'sms') await deps.pumping?.recordApproved(target);
        return { verified: true, to: target.to, proof: approve(target, input.purpose, userId) };
      }
      case 'mismatch':
        throw new VerifydError('invalid_code', 'The code is incorrect.', {
          attemptsRemaining: result.remaining,
        });
      case 'locked':
        // This lane is dead: nothing was compared, so nothing was counted.
        throw new RateLimitError(
          'too_many_attempts',
          'Too many wrong attempts; request a new code.',
          settings.cooldownSeconds,
        );
      case 'missing':
        throw noCode();
    }
  }

  return observeChecks(deps.events, {
    proofs,

    sendPhoneCode(input: SendRequest & PhoneCodeOptions & { phone: string }) {
      assertPurpose(input.purpose);
      const target = parsePhone(input.phone, phonePolicy);
      observeRefusal(deps.events, target, () => assertCountry(target));
      return sendCode(target, input, (code, validForSeconds) =>
        deps.sms.send({
          to: target.to,
          body: renderSms(input.template ?? settings.smsTemplate, code),
          validForSeconds,
        }),
      );
    },

    checkPhoneCode(input: CodeCheck & { phone: string }): Promise<Approved> {
      assertPurpose(input.purpose);
      return checkCode(parsePhone(input.phone, phonePolicy), input);
    },

    /** A code by email, for whoever cannot open a link on the device they sign up on. */
    sendEmailCode(input: SendRequest & { email: string; code?: string }) {
      assertPurpose(input.purpose);
      const target = parseEmail(input.email);
      return sendCode(target, input, (code, validForSeconds) =>
        deps.email.send(
          renderCodeEmail(
            target.to,
            settings.emailCodeSubject,
            settings.emailCodeTemplate,
            code,
            validForSeconds,
          ),
        ),
      );
    },

    checkEmailCode(input: CodeCheck & { email: string }): Promise<Approved> {
      assertPurpose(input.purpose);
      return checkCode(parseEmail(input.email), input);
    },

    /**
     * Ends a code verification without a check (the Twilio-compatible API's cancel and manual
     * approval): its codes die at once. Resolves whether there was one to end.
     */
    endCodeVerification(input: {
      channel: Channel;
      to: string;
      purpose: string;
    }): Promise<boolean> {
      assertPurpose(input.purpose);
      const target =
        input.channel === 'sms' ? parsePhone(input.to, phonePolicy) : parseEmail(input.to);
      return store.delete(codeKey(target, input.purpose));
    },

    async sendEmailLink(input: SendRequest & { email: string }): Promise<PendingVerification> {
      assertPurpose(input.purpose);
      const target = parseEmail(input.email);
      // The link names the address given, so its proof does; its single use is the mailbox's.
      const link = links.mint({
        email: target.to,
        purpose: input.purpose,
        ...(input.userId === undefined ? {} : { userId: input.userId }),
      });
      await send(
        target,
        input,
        { hash: links.hash(link.jti), ttlSeconds: links.ttlSeconds, maxAttempts: LINK_ATTEMPT_CAP },
        () =>
          deps.email.send(
            renderVerificationEmail(
              target.to,
              settings.emailSubject,
              linkWithToken(settings.linkBase, link.token, input.purpose),
              links.ttlSeconds,
            ),
          ),
      );
      return pending(target, link.expiresAt);
    },

    /**
     * Why a link cannot confirm, judged from its signed token alone, for the page the link opens:
     * expired, or not valid for this purpose. Undefined when it may; whether it was used is only
     * known at the click, since opening the page asks the store nothing and changes nothing.
     */
    linkProblem(token: string, purpose: string): VerifydError | undefined {
      try {
        links.inspect(token, purpose);
        return undefined;
      } catch (error) {
        if (error instanceof VerifydError) return error;
        throw error;
      }
    },

    async confirmEmailToken(input: {
      token: string;
      purpose: string;
      userId?: string | undefined;
    }): Promise<Approved> {
      assertPurpose(input.purpose);
      const claims = links.inspect(input.token, input.purpose);
      // The link carries the send's userId in its signed claims, so a mismatch is refused before
      // the link is used: the right user can still open it.
      if (input.userId !== undefined && input.userId !== claims.userId) throw userMismatch();
      const target = emailTarget(claims.email);
      // A phone number's wrong codes never lock a link: the signed token cannot be guessed, so it
      // is judged on itself alone.
      const result = await store.attempt({
        key: keys.verification('email', claims.purpose, idOf(target)),
        hash: links.hash(claims.jti),
        maxAttempts: LINK_ATTEMPT_CAP,
      });
      switch (result.status) {
        case 'match':
          return {
            verified: true,
            to: target.to,
            proof: approve(target, claims.purpose, claims.userId),
          };
        case 'locked':
        case 'exhausted':
          throw new RateLimitError(
            'too_many_attempts',
            'This link was tried too often; request a new one.',
            settings.cooldownSeconds,
          );
        default:
          throw new VerifydError(
            'token_used',
            'This link was already used or replaced by newer ones.',
          );
      }
    },
  });
}

export type VerificationService = ReturnType<typeof createVerificationService>;

/** A phone send's options that only a front door of its own sets (the Twilio-compatible API). */
export interface PhoneCodeOptions {
  /** The caller's own code, where its service allows one, instead of a minted one. */
  code?: string | undefined;
  /** The SMS text, with {code} where the code goes, instead of SMS_TEMPLATE. */
  template?: string | undefined;
}

export interface CodeCheck {
  code: string;
  purpose: string;
  userId?: string | undefined;
  verificationId?: string | undefined;
}

/** Which secrets a verification holds: phone codes, email links, or emailed codes. */
type SecretKind = Channel | 'email-code';

function verificationKey(kind: SecretKind, purpose: string, recipient: string): string {
  return kind === 'email-code'
    ? keys.emailCode(purpose, recipient)
    : keys.verification(kind, purpose, recipient);
}

/** A check that names another user than the send did. */
function userMismatch(): VerifydError {
  return new VerifydError(
    'user_mismatch',
    'This verification was started for another user; start a new one for this user.',
  );
}
