import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import metadata from 'libphonenumber-js/metadata.max.json';
import { z } from 'zod';
import { VerifydError } from '../src/errors';

export type Channel = 'sms' | 'email';

export interface PhoneTarget {
  channel: 'sms';
  /** E.164, e.g. "+15551234567". */
  to: string;
  /** ISO 3166-1 alpha-2 region, when the number maps to one. */
  country: string | undefined;
}

export interface EmailTarget {
  channel: 'email';
  /** Trimmed and lower-cased, so "A@x.com" and "a@x.com" are one target for limits and codes. */
  to: string;
}

export type Target = PhoneTarget | EmailTarget;

export interface PhonePolicy {
  /**
   * Accept numbers that are well-formed but not assigned (like +1 555 numbers). Only the mock
   * provider allows this, so CI pipelines can use fictional numbers without texting anybody.
   */
  allowUnassigned: boolean;
}

const MAIN_COUNTRY: Partial<Record<string, readonly string[]>> = metadata.country_calling_codes;

export function parsePhone(input: string, policy: PhonePolicy): PhoneTarget {
  const parsed = input.length <= 64 ? parsePhoneNumberFromString(input.trim()) : undefined;
  // Every valid number is also possible, so in mock mode the cheaper length check decides alone.
  const acceptable = parsed && (policy.allowUnassigned ? parsed.isPossible() : parsed.isValid());
  if (!parsed || !acceptable) {
    // A real provider refuses +1 555 numbers, so outside mock mode the example is one it takes
    // (libphonenumber's example UK mobile number).
    const example = policy.allowUnassigned ? '+15551234567' : '+447400123456';
    throw new VerifydError(
      'invalid_phone',
      `The phone number is not valid; send it in international format, e.g. ${example}.`,
    );
  }
  // A number that is possible but unassigned (Ofcom's +44 7700 900xxx drama range, NANP's 555)
  // has no region of its own; it belongs to its calling code's main country, which the metadata
  // lists first, so SMS_ALLOWED_COUNTRIES and logs treat it like the country it imitates. (Asking
  // the number for its possible countries instead costs ~25 µs for a +1 number.)
  const country = parsed.country ?? MAIN_COUNTRY[parsed.countryCallingCode]?.[0];
  return { channel: 'sms', to: parsed.number, country };
}

const emailSchema = z.email();

export function parseEmail(input: string): EmailTarget {
  const email = input.trim().toLowerCase();
  if (email.length > 254 || !emailSchema.safeParse(email).success) {
    throw new VerifydError('invalid_email', 'The email address is not valid.');
  }
  return { channel: 'email', to: email };
}

export function assertCountryAllowed(target: PhoneTarget, allowed: readonly string[]): void {
  if (allowed.length === 0) return;
  if (!target.country || !allowed.includes(target.country)) {
    throw new VerifydError(
      'country_not_allowed',
      'SMS verification is not offered for this country.',
      {
        country: target.country ?? 'unknown',
      },
    );
  }
}
