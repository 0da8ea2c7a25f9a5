import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { NON_GEOGRAPHIC, type NUMBER_TYPE_SETTINGS } from '../../src/config';

/** A number's type as SMS_ALLOWED_NUMBER_TYPES names it; `unknown` when libphonenumber cannot tell. */
export type NumberType = Exclude<(typeof NUMBER_TYPE_SETTINGS)[number], 'any'>;

/** What the pumping defences need to know about a number, worked out once per send. */
export interface NumberFacts {
  type: NumberType;
  /** ISO 3166-1 alpha-2 code, or 001 for a number outside any country (+800, +870, +881, ...). */
  country: string;
  /** The number without its last `dropped` digits, in E.164 form: "+447400123". */
  prefix: string;
  /** How many digits the prefix leaves off: SMS_PREFIX_DROP_DIGITS, or fewer for a short number. */
  dropped: number;
}

/**
 * Type, country and prefix of a number parsePhone accepted. Parsing with the full ("max")
 * metadata is what tells a mobile range from a premium-rate one; hand-written ranges would be
 * wrong the day a regulator moves one.
 *
 * The prefix never drops the calling code or the first digit of the national number: with a
 * setting longer than a number (a 5-digit Pacific number and SMS_PREFIX_DROP_DIGITS=8), the
 * number counts under its calling code and first national digit, the widest prefix there is,
 * rather than under a prefix of some other country or under none at all.
 */
export function numberFacts(
  e164: string,
  country: string | undefined,
  dropDigits: number,
): NumberFacts {
  const parsed = parsePhoneNumberFromString(e164);
  const type = (parsed?.getType()?.toLowerCase() as NumberType | undefined) ?? 'unknown';
  // Only a number parsePhone accepted gets here, so it parses; the fallback keeps the answer
  // defined (the whole digit string as the national number) if it ever does not.
  const callingCode = parsed?.countryCallingCode ?? '';
  const national = parsed ? String(parsed.nationalNumber) : e164.replace(/\D/g, '');
  const kept = Math.max(1, national.length - dropDigits);
  return {
    type,
    country: country ?? NON_GEOGRAPHIC,
    prefix: `+${callingCode}${national.slice(0, kept)}`,
    dropped: national.length - kept,
  };
}

/** The prefix as logs and the CLI show it: "+447400123xxx", so nobody reads it as a number. */
export function shownPrefix(facts: Pick<NumberFacts, 'prefix' | 'dropped'>): string {
  return `${facts.prefix}${'x'.repeat(facts.dropped)}`;
}

/** Whether SMS_SAFE_LIST names the number or a prefix of it. */
export function isSafeListed(e164: string, safeList: readonly string[]): boolean {
  return safeList.some((entry) => e164.startsWith(entry));
}

/** `any` lets every type through; otherwise the type must be listed (`unknown` included). */
export function typeAllowed(type: NumberType, allowed: ReadonlySet<string> | 'any'): boolean {
  return allowed === 'any' || allowed.has(type);
}
