import type { parsePhoneNumberFromString as Parse } from 'libphonenumber-js/max';

/**
 * TEST_IDENTITIES, as configured: phone numbers that verify with a fixed code until an expiry
 * date, for CI suites and app-store review accounts. Parsed here, in one place, for the
 * configuration check (src/config.ts) and the service that applies them
 * (services/test-identities.ts).
 *
 * Syntax: comma-separated `number=code`, each optionally followed by `:expiry`, where expiry is a
 * date (`2027-03-01`: the entry stops working at 00:00 UTC that day) or an ISO 8601 time with
 * its zone (`2027-03-01T12:00:00Z`). An entry without its own expiry takes TEST_IDENTITIES_EXPIRE;
 * one with neither is refused, so no fixed code can be forgotten for good.
 */
export interface TestIdentity {
  /** The number in E.164, as the routes normalise it. */
  to: string;
  /** The fixed code, OTP_LENGTH digits. */
  code: string;
  /** Epoch milliseconds at which the entry stops working. */
  expiresAt: number;
}

export interface TestIdentityRules {
  /** TEST_IDENTITIES_EXPIRE: the expiry of entries that name none. */
  defaultExpiry: string | undefined;
  /** OTP_LENGTH: a fixed code must be one a check accepts. */
  otpLength: number;
  /** Mock SMS provider: fictional numbers (+1 555) pass, as they do at the send route. */
  allowUnassigned: boolean;
  /** Production: no entry may expire later than this many days after `now`. */
  maxDays?: number;
  now: number;
}

/** Production refuses fixed codes that outlive a review cycle: 90 days at most. */
export const PRODUCTION_MAX_DAYS = 90;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of an expiry as written, or undefined when it is no date or time. */
export function parseExpiry(value: string): number | undefined {
  const date = DATE.exec(value);
  if (date) {
    const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const at = Date.UTC(year, month - 1, day);
    // Date.UTC rolls 2027-02-30 over into March; a date that does not exist is a typo.
    const back = new Date(at);
    return back.getUTCMonth() === month - 1 && back.getUTCDate() === day ? at : undefined;
  }
  if (TIME.test(value)) {
    const at = Date.parse(value);
    return Number.isFinite(at) ? at : undefined;
  }
  return undefined;
}

/**
 * The entries, and one problem line per mistake, each naming its variable. Entries are named by
 * position, never by number or code: these lines go to stderr and into logs.
 */
export function parseTestIdentities(
  raw: string | undefined,
  rules: TestIdentityRules,
): { entries: TestIdentity[]; problems: string[] } {
  const entries: TestIdentity[] = [];
  const problems: string[] = [];
  const fallback = rules.defaultExpiry === undefined ? undefined : parseExpiry(rules.defaultExpiry);
  if (rules.defaultExpiry !== undefined && fallback === undefined) {
    problems.push(
      `Invalid TEST_IDENTITIES_EXPIRE (got ${JSON.stringify(rules.defaultExpiry)}): expected a date such as 2027-03-01 or an ISO 8601 time with its zone.`,
    );
  }
  if (raw === undefined) return { entries, problems };
  const items = raw.split(',').map((item) => item.trim());
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    const which = `entry ${index + 1} of ${items.length}`;
    const parsed = parseEntry(item, rules, fallback);
    if (typeof parsed === 'string') {
      problems.push(`Invalid TEST_IDENTITIES: ${which}: expected ${parsed}.`);
    } else if (parsed === undefined) {
      // No expiry: none set, or one left to an invalid TEST_IDENTITIES_EXPIRE (its own line above).
      if (rules.defaultExpiry === undefined) {
        problems.push(
          `Missing TEST_IDENTITIES_EXPIRE: ${which} of TEST_IDENTITIES has no expiry; set TEST_IDENTITIES_EXPIRE (e.g. 2027-03-01) or write number=code:2027-03-01.`,
        );
      }
    } else if (seen.has(parsed.to)) {
      problems.push(`Invalid TEST_IDENTITIES: ${which}: expected each number once.`);
    } else {
      seen.add(parsed.to);
      entries.push(parsed);
    }
  }
  return { entries, problems };
}

/**
 * One entry, or what was expected instead of it, or undefined when it names no expiry and the
 * default is missing or invalid.
 */
function parseEntry(
  item: string,
  rules: TestIdentityRules,
  fallback: number | undefined,
): TestIdentity | string | undefined {
  const match = /^([^=]+)=(\d+)(?::(.+))?$/.exec(item);
  if (!match) return 'number=code or number=code:expiry, e.g. +15551230099=135790';
  const [, recipient = '', code = '', expiry] = match;
  if (recipient.includes('@')) {
    return 'a phone number: email verification sends signed single-use links, which no fixed code can stand for, so an address cannot be a test identity (read its link from GET /dev/outbox/latest in CI)';
  }
  const phone = parsePhone()(recipient.trim());
  const acceptable = phone && (rules.allowUnassigned ? phone.isPossible() : phone.isValid());
  if (!phone || !acceptable) {
    return rules.allowUnassigned
      ? 'a phone number in international format, e.g. +15551230099'
      : 'a valid, assigned phone number in international format: the send route refuses any other with the real SMS provider';
  }
  if (code.length !== rules.otpLength) return `a code of OTP_LENGTH (${rules.otpLength}) digits`;
  const expiresAt = expiry === undefined ? fallback : parseExpiry(expiry);
  if (expiry !== undefined && expiresAt === undefined) {
    return 'an expiry after ":" such as 2027-03-01 or an ISO 8601 time with its zone';
  }
  if (expiresAt === undefined) return undefined;
  if (rules.maxDays !== undefined && expiresAt > rules.now + rules.maxDays * 86_400_000) {
    const limit = new Date(rules.now + rules.maxDays * 86_400_000).toISOString().slice(0, 10);
    return `an expiry at most ${rules.maxDays} days away in production (by ${limit}): a fixed code is a standing way in`;
  }
  return { to: phone.number, code, expiresAt };
}

/**
 * libphonenumber's full metadata takes 100-200 ms to load; every start reads the configuration
 * (the CLI too), and only one with TEST_IDENTITIES needs it here, so it is loaded on first use.
 */
let parser: typeof Parse | undefined;
function parsePhone(): typeof Parse {
  parser ??= (require('libphonenumber-js/max') as { parsePhoneNumberFromString: typeof Parse })
    .parsePhoneNumberFromString;
  return parser;
}
