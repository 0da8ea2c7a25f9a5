import { createHash, createHmac } from 'node:crypto';
import { seal, unseal } from '../src/crypto';
import { VerifydError } from '../src/errors';
import { type Channel, keys } from '../src/store/keys';
import type { CompleteStore } from '../src/store/types';
import { recipientId } from './codes';
import type { Clock, RandomSource } from './runtime';
import { parseEmail, parsePhone } from './targets';
import type { VerificationService } from './verification';

/**
 * The Twilio Verify v2 resources (services, verifications, checks) over the verification service.
 * This module keeps only what Twilio's API has and verifyd's flows do not: the service records and
 * a small record per verification that maps its VE sid to the native verification. Every send and
 * every check is the verification service's own flow, with its limits, lock and single use.
 */

export interface TwilioVerifySettings {
  /** TWILIO_COMPAT_ACCOUNT_SID: every resource names it as its account. */
  accountSid: string;
  /** OTP_SECRET: keys the VE sids and seals the records (they hold the recipient). */
  secret: string;
  codeTtlSeconds: number;
  maxAttempts: number;
  /** Accept well-formed but unassigned numbers (mock provider only), as the native flows do. */
  allowUnassignedNumbers: boolean;
}

export interface TwilioVerifyDeps {
  store: CompleteStore;
  clock: Clock;
  random: RandomSource;
  /** The verification service for codes of this length (one per Twilio service's CodeLength). */
  verificationFor(codeLength: number): VerificationService;
}

/**
 * A Twilio service's verifications live under a purpose of their own, derived from its sid (the
 * purpose pattern allows 32 characters; 30 of the sid's 32 random hex digits keep them apart).
 */
export const isTwilioPurpose = (purpose: string) => /^VA[0-9a-f]{30}$/.test(purpose);
const purposeOf = (serviceSid: string) => serviceSid.slice(0, 32);

/** Services stay until deleted; the store contract wants a TTL, so they get ten years. */
const SERVICE_TTL_SECONDS = 10 * 365 * 86_400;
/** The list is read slot by slot, so it is bounded. */
export const MAX_SERVICES = 1000;

export interface ServiceRecord {
  sid: string;
  friendlyName: string;
  codeLength: number;
  doNotShareWarningEnabled: boolean;
  customCodeEnabled: boolean;
  dateCreated: number;
  dateUpdated: number;
  /** Its place in the list (see listServices). */
  slot: number;
}

export type ServiceInput = Partial<
  Pick<
    ServiceRecord,
    'friendlyName' | 'codeLength' | 'doNotShareWarningEnabled' | 'customCodeEnabled'
  >
>;

export interface SendAttempt {
  attempt_sid: string;
  channel: Channel;
  time: string;
}

export interface VerificationRecord {
  sid: string;
  serviceSid: string;
  to: string;
  channel: Channel;
  /** The native verification's id: checks present it, so they use its bound lane. */
  verificationId: string;
  codeLength: number;
  status: 'pending' | 'max_attempts_reached';
  sendCodeAttempts: SendAttempt[];
  dateCreated: number;
  dateUpdated: number;
  amount: string | null;
  payee: string | null;
}

export type VerificationStatus = VerificationRecord['status'] | 'approved' | 'canceled';

export interface VerificationView extends Omit<VerificationRecord, 'status'> {
  status: VerificationStatus;
  valid: boolean;
}

export interface CreateVerification {
  to: string;
  channel: string;
  customFriendlyName?: string | undefined;
  customCode?: string | undefined;
  /** The person's client key, from DeviceIp; without it no per-client limit applies. */
  client?: string | undefined;
  amount?: string | undefined;
  payee?: string | undefined;
}

/** An answer only this API has, with Twilio's code (see src/http/twilio-errors.ts). */
export class TwilioApiError extends Error {
  constructor(
    readonly twilioCode: number,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'TwilioApiError';
  }
}

export const notFound = (what: string) =>
  new TwilioApiError(20404, 404, `The requested resource ${what} was not found`);

export const invalidParameter = (name: string, why = '') =>
  new TwilioApiError(60200, 400, `Invalid parameter: ${name}${why ? ` (${why})` : ''}`);

export function createTwilioVerify(settings: TwilioVerifySettings, deps: TwilioVerifyDeps) {
  const { store, clock, random } = deps;
  const services = new Map<number, VerificationService>();
  const verificationFor = (codeLength: number) => {
    let service = services.get(codeLength);
    if (!service) {
      service = deps.verificationFor(codeLength);
      services.set(codeLength, service);
    }
    return service;
  };

  /** 32 hex digits from the injected randomness, so tests can predict sids. */
  const randomHex = () => createHash('sha256').update(random.id()).digest('hex').slice(0, 32);
  /**
   * A VE sid names the native verification: the same id (a send that joins a pending
   * verification answers the same one) gives the same sid, and nobody without OTP_SECRET can
   * derive one from the other.
   */
  const verificationSid = (verificationId: string) =>
    `VE${createHmac('sha256', settings.secret).update(`twilio-ve\u0000${verificationId}`).digest('hex').slice(0, 32)}`;

  async function readSealed<T>(key: string): Promise<T | undefined> {
    const sealed = await store.get(key);
    const plain = sealed === undefined ? undefined : unseal(settings.secret, key, sealed);
    return plain === undefined ? undefined : (JSON.parse(plain) as T);
  }

  const writeSealed = (key: string, value: unknown, ttlSeconds: number) =>
    store.set(key, seal(settings.secret, key, JSON.stringify(value)), ttlSeconds);

  /** The recipient as the native flows normalise it, and its key among a service's pending ones. */
  function recipientOf(to: string, channel: Channel) {
    const target =
      channel === 'sms'
        ? parsePhone(to, { allowUnassigned: settings.allowUnassignedNumbers })
        : parseEmail(to);
    const subject = target.channel === 'sms' ? target.to : target.mailbox;
    return { to: target.to, id: recipientId(settings.secret, `twilio:${channel}:${subject}`) };
  }

  async function fetchService(sid: string): Promise<ServiceRecord> {
    const found = /^VA[0-9a-f]{32}$/.test(sid)
      ? await readSealed<ServiceRecord>(keys.twilioService(sid))
      : undefined;
    if (!found) throw notFound(sid);
    return found;
  }

  async function pendingRecord(
    service: ServiceRecord,
    by: { sid?: string | undefined; to?: string | undefined },
  ): Promise<VerificationRecord | undefined> {
    let sid = by.sid;
    if (sid === undefined && by.to !== undefined) {
      const channel: Channel = by.to.includes('@') ? 'email' : 'sms';
      const recipient = recipientOf(by.to, channel);
      sid = await store.get(keys.twilioPending(service.sid, channel, recipient.id));
    }
    if (sid === undefined || !/^VE[0-9a-f]{32}$/.test(sid)) return undefined;
    const record = await readSealed<VerificationRecord>(keys.twilioVerification(sid));
    return record?.serviceSid === service.sid ? record : undefined;
  }

  /** A verification is gone once it is approved, canceled, expired or used up. */
  async function forget(record: VerificationRecord): Promise<void> {
    const recipient = recipientOf(record.to, record.channel);
    await Promise.all([
      store.delete(keys.twilioVerification(record.sid)),
      store.delete(keys.twilioPending(record.serviceSid, record.channel, recipient.id)),
    ]);
  }

  const view = (record: VerificationRecord, status: VerificationStatus = record.status) => ({
    ...record,
    status,
    valid: status === 'approved',
  });

  return {
    accountSid: settings.accountSid,

    async createService(input: ServiceInput & { friendlyName: string }): Promise<ServiceRecord> {
      // A slot number from a counter: concurrent creates each get their own, with primitives only.
      const { count: slot } = await store.increment(keys.twilioServiceSlots(), SERVICE_TTL_SECONDS);
      if (slot > MAX_SERVICES) {
        await store.decrement(keys.twilioServiceSlots());
        throw new TwilioApiError(20429, 429, `At most ${MAX_SERVICES} services can be created`);
      }
      const now = clock.now();
      const record: ServiceRecord = {
        sid: `VA${randomHex()}`,
        friendlyName: input.friendlyName,
        codeLength: input.codeLength ?? 6,
        doNotShareWarningEnabled: input.doNotShareWarningEnabled ?? false,
        customCodeEnabled: input.customCodeEnabled ?? false,
        dateCreated: now,
        dateUpdated: now,
        slot,
      };
      await writeSealed(keys.twilioService(record.sid), record, SERVICE_TTL_SECONDS);
      await store.set(keys.twilioServiceSlot(slot), record.sid, SERVICE_TTL_SECONDS);
      return record;
    },

    fetchService,

    /** Services in the order they were created, one page of them. */
    async listServices(page: number, pageSize: number) {
      const slots = Number((await store.get(keys.twilioServiceSlots())) ?? 0);
      const sids = await Promise.all(
        Array.from({ length: Math.min(slots, MAX_SERVICES) }, (_, i) =>
          store.get(keys.twilioServiceSlot(i + 1)),
        ),
      );
      const live = sids.filter((sid): sid is string => sid !== undefined);
      const chosen = live.slice(page * pageSize, (page + 1) * pageSize);
      const records = await Promise.all(
        chosen.map((sid) => readSealed<ServiceRecord>(keys.twilioService(sid))),
      );
      return {
        services: records.filter((r): r is ServiceRecord => r !== undefined),
        hasMore: live.length > (page + 1) * pageSize,
      };
    },

    async updateService(sid: string, input: ServiceInput): Promise<ServiceRecord> {
      const record = await fetchService(sid);
      const defined = Object.fromEntries(
        Object.entries(input).filter(([, value]) => value !== undefined),
      );
      // Last writer wins, as with any settings form; a service changes rarely and by its owner.
      const updated = { ...record, ...defined, dateUpdated: clock.now() };
      await writeSealed(keys.twilioService(sid), updated, SERVICE_TTL_SECONDS);
      return updated;
    },

    async deleteService(sid: string): Promise<void> {
      const record = await fetchService(sid);
      await store.delete(keys.twilioServiceSlot(record.slot));
      await store.delete(keys.twilioService(sid));
    },

    async createVerification(serviceSid: string, input: CreateVerification) {
      const service = await fetchService(serviceSid);
      if (input.channel !== 'sms' && input.channel !== 'email') {
        throw invalidParameter('Channel', 'verifyd sends sms and email');
      }
      const channel: Channel = input.channel;
      if (input.customCode !== undefined && !service.customCodeEnabled) {
        throw new TwilioApiError(60204, 403, 'Service does not support this feature: CustomCode');
      }
      // The code is checked as the service's codes are: its CodeLength in digits.
      if (
        input.customCode !== undefined &&
        !new RegExp(`^\\d{${service.codeLength}}$`).test(input.customCode)
      ) {
        throw invalidParameter('CustomCode', `${service.codeLength} digits`);
      }
      const recipient = recipientOf(input.to, channel);
      const pointer = keys.twilioPending(service.sid, channel, recipient.id);
      const earlier = await store.get(pointer);
      const verification = verificationFor(service.codeLength);
      const purpose = purposeOf(service.sid);
      const send = {
        purpose,
        client: input.client,
        // Another create for a pending verification is a resend, and counts as one.
        isResend: earlier !== undefined,
        code: input.customCode,
      };
      const name = input.customFriendlyName ?? service.friendlyName;
      const warning = service.doNotShareWarningEnabled
        ? " Don't share this code with anyone; we will never ask for it."
        : '';
      const pending =
        channel === 'sms'
          ? await verification.sendPhoneCode({
              ...send,
              phone: input.to,
              // Braces in a name must not become a second place for the code.
              template: `Your ${name.replaceAll('{', '(').replaceAll('}', ')')} verification code is: {code}.${warning}`,
            })
          : await verification.sendEmailCode({ ...send, email: input.to });
      const verificationId = pending.verificationId ?? '';
      const sid = verificationSid(verificationId);
      const now = clock.now();
      const attempt: SendAttempt = {
        attempt_sid: `VL${randomHex()}`,
        channel,
        time: new Date(now).toISOString(),
      };
      // The send joined the pending verification when its id is the same: one more attempt on it.
      // Two creates at once are one cooldown apart (the native gate), so this read-then-write
      // does not race unless SEND_COOLDOWN_SECONDS is 0.
      const joined = await readSealed<VerificationRecord>(keys.twilioVerification(sid));
      const record: VerificationRecord = joined
        ? {
            ...joined,
            sendCodeAttempts: [...joined.sendCodeAttempts, attempt],
            dateUpdated: now,
          }
        : {
            sid,
            serviceSid: service.sid,
            to: recipient.to,
            channel,
            verificationId,
            codeLength: service.codeLength,
            status: 'pending',
            sendCodeAttempts: [attempt],
            dateCreated: now,
            dateUpdated: now,
            amount: input.amount ?? null,
            payee: input.payee ?? null,
          };
      await writeSealed(keys.twilioVerification(sid), record, settings.codeTtlSeconds);
      await store.set(pointer, sid, settings.codeTtlSeconds);
      return view(record);
    },

    async fetchVerification(serviceSid: string, sid: string) {
      const service = await fetchService(serviceSid);
      const record = await pendingRecord(service, { sid });
      // A verification that used up its attempts is gone, as an approved one is.
      if (record?.status !== 'pending') throw notFound(sid);
      return view(record);
    },

    /** Cancels or approves a pending verification by hand; either way its codes die. */
    async updateVerification(serviceSid: string, sid: string, status: 'canceled' | 'approved') {
      const service = await fetchService(serviceSid);
      const record = await pendingRecord(service, { sid });
      if (record?.status !== 'pending') throw notFound(sid);
      const ended = await verificationFor(record.codeLength).endCodeVerification({
        channel: record.channel,
        to: record.to,
        purpose: purposeOf(service.sid),
      });
      await forget(record);
      // The native verification expired or was used meanwhile: nothing was canceled.
      if (!ended) throw notFound(sid);
      return view({ ...record, dateUpdated: clock.now() }, status);
    },

    async check(
      serviceSid: string,
      input: { code: string; to?: string | undefined; verificationSid?: string | undefined },
    ) {
      const service = await fetchService(serviceSid);
      const record = await pendingRecord(service, { sid: input.verificationSid, to: input.to });
      if (!record) throw notFound(input.verificationSid ?? 'VerificationCheck');
      const verification = verificationFor(record.codeLength);
      const check = {
        code: input.code,
        purpose: purposeOf(service.sid),
        verificationId: record.verificationId,
      };
      try {
        if (record.channel === 'sms')
          await verification.checkPhoneCode({ ...check, phone: record.to });
        else await verification.checkEmailCode({ ...check, email: record.to });
      } catch (error) {
        if (!(error instanceof VerifydError)) throw error;
        if (error.code === 'invalid_code') {
          // A wrong code is an answer, not an error; the last allowed one says so.
          const maxed = error.details.attemptsRemaining === 0;
          const updated: VerificationRecord = {
            ...record,
            status: maxed ? 'max_attempts_reached' : 'pending',
            dateUpdated: clock.now(),
          };
          if (maxed)
            await writeSealed(
              keys.twilioVerification(record.sid),
              updated,
              settings.codeTtlSeconds,
            );
          return view(updated);
        }
        // Expired or used meanwhile: the record goes too.
        if (error.code === 'code_expired') {
          await forget(record);
          throw notFound(record.sid);
        }
        throw error;
      }
      await forget(record);
      return view({ ...record, dateUpdated: clock.now() }, 'approved');
    },
  };
}

export type TwilioVerify = ReturnType<typeof createTwilioVerify>;
