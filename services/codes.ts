import { hmac, safeEqual, storedHmac } from '../src/crypto';
import type { RandomSource } from './runtime';

export interface CodeSettings {
  /** OTP_SECRET: keys every HMAC, so a store dump reveals neither codes nor usable ids. */
  secret: string;
  /** Digits per code, 4–10. */
  length: number;
}

/** Length of the tag that makes a verificationId unforgeable from what the store holds. */
const TAG_LENGTH = 16;

/**
 * One-time codes and verification ids, as pure functions: nothing here touches storage (the
 * caller owns it, as with oslo's OTP functions).
 *
 * A verificationId is the verification's binding (a random nonce, which the store keeps) followed
 * by an HMAC tag of it. The store alone cannot produce the tag, so a dump of the store yields no id
 * that a check would accept; and a resend that joins a live verification can answer the same id
 * again from the binding the store hands back.
 */
export function createCodes(settings: CodeSettings, random: RandomSource) {
  const { secret, length } = settings;
  const format = new RegExp(`^\\d{${length}}$`);
  const tagOf = (key: string, binding: string) =>
    hmac(secret, 'verification-id', key, binding).slice(0, TAG_LENGTH);

  return {
    length,
    /** A uniformly random code of `length` digits. */
    mint(): string {
      return random
        .int(10 ** length)
        .toString()
        .padStart(length, '0');
    },
    /**
     * The code as typed, without the spaces and dashes people put in, or undefined when it is not
     * `length` digits: a client mistake, not a guess.
     */
    normalise(typed: string): string | undefined {
      const code = typed.replace(/[\s-]/g, '');
      return format.test(code) ? code : undefined;
    },
    /** What the store holds of a code: an HMAC over the purpose and recipient too, so a code can
     * never be replayed for another purpose or number. */
    hash(purpose: string, to: string, code: string): string {
      return storedHmac(secret, 'otp', purpose, to, code);
    },
    /** A fresh binding for a verification that a send starts (at least 128 random bits). */
    newBinding(): string {
      return random.id();
    },
    /** The id a client presents to check within the verification at `key`. */
    verificationId(key: string, binding: string): string {
      return `${binding}${tagOf(key, binding)}`;
    },
    /** The binding inside a presented id, or undefined when its tag is wrong. */
    bindingOf(key: string, verificationId: string): string | undefined {
      const binding = verificationId.slice(0, -TAG_LENGTH);
      const tag = verificationId.slice(-TAG_LENGTH);
      if (binding.length === 0 || tag.length !== TAG_LENGTH) return undefined;
      return safeEqual(tag, tagOf(key, binding)) ? binding : undefined;
    },
  };
}

export type Codes = ReturnType<typeof createCodes>;

/** A stable, non-reversible id for a phone number or mailbox, used in store keys. */
export function recipientId(secret: string, to: string): string {
  return storedHmac(secret, 'target', to);
}
