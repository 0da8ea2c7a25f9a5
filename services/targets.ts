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
  /** Where the mail goes and what the proof names: the address as given, trimmed and lower-cased. */
  to: string;
  /** The mailbox behind `to` (see mailboxOf): what every limit and the link's single use count. */
  mailbox: string;
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

/**
 * What a written phone number is made of: digits, a leading +, and the spaces, dots, dashes and
 * brackets people group digits with. libphonenumber also finds a number inside other text ("call
 * +1 555…") and drops an extension ("ext. 123", "x123"); a verification must not guess which
 * number was meant, so any other character refuses the input.
 */
const PHONE_CHARACTERS = /^\+?[\d\s().\-\u00a0\u2010-\u2015\u2212]+$/;

export function parsePhone(input: string, policy: PhonePolicy): PhoneTarget {
  const given = input.trim();
  const parsed =
    given.length <= 64 && PHONE_CHARACTERS.test(given)
      ? parsePhoneNumberFromString(given)
      : undefined;
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
  return emailTarget(email);
}

/** The target of an address parseEmail accepted before, e.g. the one a link was sent to. */
export function emailTarget(address: string): EmailTarget {
  return { channel: 'email', to: address, mailbox: mailboxOf(address) };
}

/** Gmail's own domains: dots in the local part are ignored, and googlemail.com is gmail.com. */
const GMAIL_DOMAINS = new Set(['gmail.com', 'googlemail.com']);

/**
 * The mailbox an address delivers to, so that variants of one inbox count as one recipient for
 * every limit (before, 20 variants of one address put 20 mails in one inbox within seconds):
 *
 * - lower case: domains are case-insensitive (RFC 5321 §2.4), and no mail provider in wide use
 *   treats local parts differently by case (parseEmail lower-cases the address anyway);
 * - everything from the first "+" in the local part goes: subaddressing (RFC 5233) with "+" is
 *   on by default at Gmail, Outlook.com, iCloud, Fastmail, Proton and many more, so anybody can
 *   invent unlimited names for their one inbox. A domain where "+" is part of a real, separate
 *   mailbox name is rare; there its users share limits, which errs on the safe side;
 * - at gmail.com and googlemail.com only, dots in the local part go and googlemail.com becomes
 *   gmail.com: Google delivers a.b@, ab@ and ab@googlemail.com to one inbox. Elsewhere dots name
 *   different mailboxes (Outlook.com, and Google Workspace domains we cannot tell apart), so they
 *   stay.
 *
 * Other separators ("-" at Yahoo and Fastmail) are left alone: those aliases must be set up by
 * the owner one by one, and "-" is common in real, separate names.
 */
export function mailboxOf(address: string): string {
  const at = address.lastIndexOf('@');
  let local = address.slice(0, at).toLowerCase();
  let domain = address.slice(at + 1).toLowerCase();
  const plus = local.indexOf('+');
  // "+x@…" has no mailbox name before its tag: keep it whole rather than invent an empty one.
  if (plus > 0) local = local.slice(0, plus);
  if (GMAIL_DOMAINS.has(domain)) {
    domain = 'gmail.com';
    local = local.replaceAll('.', '');
  }
  return `${local}@${domain}`;
}
