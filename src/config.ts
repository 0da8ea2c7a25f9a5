import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';
import { ConfigError } from './errors';
import { PRODUCTION_MAX_DAYS, parseTestIdentities } from './test-identities';

/**
 * What SMS_ALLOWED_NUMBER_TYPES may list: libphonenumber-js's number types, lower-cased; `unknown`
 * for a number it cannot type (only the mock provider accepts such numbers, e.g. +1 555); or
 * `any` alone, which turns the check off.
 */
export const NUMBER_TYPE_SETTINGS = [
  'any',
  'mobile',
  'fixed_line_or_mobile',
  'fixed_line',
  'toll_free',
  'premium_rate',
  'shared_cost',
  'voip',
  'personal_number',
  'pager',
  'uan',
  'voicemail',
  'unknown',
] as const;

/** libphonenumber's region code for numbers outside any country (+800, +870, +881, +882, ...). */
export const NON_GEOGRAPHIC = '001';

export interface CountryLimits {
  /** The limit of every country without an override. */
  every: number | undefined;
  /** Upper-case ISO code (or 001) to its own limit. */
  overrides: Record<string, number>;
}

/**
 * SMS_COUNTRY_HOURLY_LIMIT: "250", "US:800,GB:200" or both ("250,US:800"). Undefined when any item
 * is malformed, names a country libphonenumber does not know, or repeats one.
 */
export function parseCountryLimits(value: string): CountryLimits | undefined {
  const limits: CountryLimits = { every: undefined, overrides: {} };
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) return undefined;
  for (const item of items) {
    const match = /^(?:([A-Za-z]{2}|001):)?(\d{1,9})$/.exec(item);
    const count = Number(match?.[2]);
    if (!match || count < 1) return undefined;
    const country = match[1]?.toUpperCase();
    if (country === undefined) {
      if (limits.every !== undefined) return undefined;
      limits.every = count;
      continue;
    }
    const known = country === NON_GEOGRAPHIC || isSupportedCountry(country);
    if (!known || limits.overrides[country] !== undefined) return undefined;
    limits.overrides[country] = count;
  }
  return limits;
}

const isCountryLimitList = (value: string) => parseCountryLimits(value) !== undefined;

/** Purposes go into store keys and token claims, so they are kept short and plain. */
// Spelt out in both cases rather than with the i flag: JSON Schema patterns have no flags, and the
// OpenAPI document carries this pattern as it is.
export const PURPOSE_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}$/;

/** Secrets shorter than this are refused in production (HMAC-SHA256 keys want 256 bits). */
export const MIN_SECRET_BYTES = 32;

/** An absolute URL with the http or https scheme: every URL verifyd reads is fetched or linked to. */
const httpUrl = () => z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' });

/** An address or a name to listen on; dotted digits that are no IPv4 address (999.1.1.1) are neither. */
function isListenHost(value: string): boolean {
  if (isIP(value) !== 0) return true;
  if (/^[\d.]+$/.test(value)) return false;
  return /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
    value,
  );
}

const int = (min: number, max: number, fallback: number) =>
  z.coerce
    .number(`an integer from ${min} to ${max}`)
    .int(`an integer from ${min} to ${max}`)
    .min(min, `an integer from ${min} to ${max}`)
    .max(max, `an integer from ${min} to ${max}`)
    .default(fallback);

const optionalText = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], 'true or false')
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

/** Optional text that must match `pattern` when it is given. */
const optionalMatching = (pattern: RegExp, expected: string) =>
  optionalText.refine((v) => v === undefined || pattern.test(v), expected);

/** Twilio's own pattern for SIDs (twilio-oai): a two-letter type prefix and 32 hex digits. */
const twilioSid = (prefix: string, what: string) =>
  optionalMatching(
    new RegExp(`^${prefix}[0-9a-fA-F]{32}$`),
    `${what}: ${prefix} followed by 32 hexadecimal digits`,
  );

/**
 * The sender Twilio accepts as From: a number in E.164, or an alphanumeric sender ID, which
 * Twilio limits to 11 characters of ASCII letters, digits and spaces with at least one letter.
 */
const TWILIO_SENDER = /^(?:\+[1-9]\d{1,14}|(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11})$/;

const emailAddress = z.email();

/**
 * A browser origin as the Origin header carries it: scheme, host and an optional port, nothing
 * after. CORS compares origins as exact strings, so a path or a trailing slash would never match.
 */
function isOrigin(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
}

/** "address" or "Display Name <address>", the two forms SendGrid's client splits a sender into. */
function isEmailFrom(value: string): boolean {
  const named = /^([^<>]*)<([^<>]*)>$/.exec(value);
  // SendGrid's client splits at the first "<", so the name may not contain one, nor ">".
  const address = named ? named[2]?.trim() : value;
  if (named && named[1]?.trim() === '') return false;
  return emailAddress.safeParse(address).success;
}

/**
 * What the Redis client accepts: redis:// or rediss:// with a host and an optional database
 * number as the path, or unix:// with a socket path. Anything else fails only at the first
 * connection, with a message that does not name REDIS_URL.
 */
function isRedisUrl(value: string): boolean {
  if (value.startsWith('unix:')) return /^unix:\/\/(?:[^@/]*@)?\/[^?#]+(?:\?[^#]*)?$/.test(value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'redis:' || url.protocol === 'rediss:') &&
    url.hostname !== '' &&
    /^(?:\/\d*)?$/.test(url.pathname)
  );
}

/** node-postgres takes a libpq-style URL; its query may carry options such as search_path. */
function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.pathname !== '';
  } catch {
    return false;
  }
}

/** Express's names for address ranges in "trust proxy" (from proxy-addr). */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * One item of a TRUST_PROXY list as Express's proxy-addr accepts it: a range name, an IP address,
 * or an address with a prefix length (or, for IPv4, a netmask). Express refuses anything else only
 * when the app is built, with a message that does not name TRUST_PROXY.
 */
function isProxyItem(item: string): boolean {
  if (PROXY_RANGE_NAMES.has(item)) return true;
  const slash = item.lastIndexOf('/');
  const address = slash === -1 ? item : item.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return false;
  if (slash === -1) return true;
  const range = item.slice(slash + 1);
  const max = version === 4 ? 32 : 128;
  if (/^\d+$/.test(range)) return Number(range) >= 1 && Number(range) <= max;
  return version === 4 && isIP(range) === 4 && isNetmask(range);
}

/** A dotted IPv4 netmask: ones then zeros, not all zeros (proxy-addr refuses a zero range). */
function isNetmask(mask: string): boolean {
  const bits = mask
    .split('.')
    .map((octet) => Number(octet).toString(2).padStart(8, '0'))
    .join('');
  return /^1+0*$/.test(bits);
}

/**
 * TRUST_PROXY is handed to Express's "trust proxy" setting: a hop count, true/false,
 * or a comma-separated list of addresses/subnets of the proxies in front of the service.
 */
const trustProxy = z
  .string()
  .default('false')
  .refine(
    (v) => /^(?:true|false|\d+)$/.test(v) || v.split(',').every((item) => isProxyItem(item.trim())),
    'false, true, a hop count, or comma-separated proxy IP addresses, CIDR subnets, loopback, linklocal or uniquelocal',
  )
  .transform((v): boolean | number | string => {
    if (v === 'true') return true;
    if (v === 'false' || v === '') return false;
    if (/^\d+$/.test(v)) return Number(v);
    return v;
  });

export const configSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'], 'development, production or test')
    .default('development'),
  PORT: int(0, 65535, 3000),
  HOST: z
    .string()
    .refine(isListenHost, 'an IP address (127.0.0.1, 0.0.0.0, ::) or a host name')
    .default('127.0.0.1'),
  LOG_LEVEL: z
    .enum(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'fatal, error, warn, info, debug, trace or silent',
    )
    .default('info'),
  TRUST_PROXY: trustProxy,
  // An ISP hands a subscriber a /48 to /64; /56 is the most common (RIPE-690). Shorter than /32
  // would put whole ISPs under one key, longer than /64 would let a host pick new addresses.
  IPV6_SUBNET: int(32, 64, 56),
  PUBLIC_URL: httpUrl().optional(),
  // Node's own limits (60 s for headers, 300 s for a whole request, checked every 30 s) let a
  // client that trickles bytes hold a connection for minutes; a verification request is a few
  // hundred bytes.
  HTTP_HEADERS_TIMEOUT_MS: int(100, 300_000, 10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000, 30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(100, 600_000, 5000),
  // A load balancer needs a moment to see /health/ready fail before the listener goes away.
  SHUTDOWN_DELAY_MS: int(0, 600_000, 0),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000, 10_000),
  WORKERS: z
    .string()
    .default('1')
    .refine((v) => v === 'auto' || (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 256), {
      message: 'auto or a number of processes from 1 to 256',
    }),
  CORS_ORIGINS: list.pipe(
    z.array(
      z
        .string()
        .refine(
          isOrigin,
          'comma-separated exact origins such as https://app.example.com (scheme, host and port, no path)',
        ),
    ),
  ),
  METRICS_TOKEN: optionalText,
  METRICS_PORT: int(1, 65535, 0)
    .optional()
    .transform((v) => (v === 0 ? undefined : v)),

  STORE: z
    .enum(
      ['memory', 'redis', 'memcached', 'postgres', 'sqlite'],
      'memory, redis, memcached, postgres or sqlite',
    )
    .default('memory'),
  REDIS_URL: z
    .string()
    .refine(isRedisUrl, 'a redis://, rediss:// or unix:// URL')
    .default('redis://127.0.0.1:6379'),
  // Set means Redis Cluster: these are only seeds, the client discovers the other nodes.
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^,\s/@]+:\d+(,[^,\s/@]+:\d+)*$/, 'a comma-separated list of host:port')
    .optional(),
  // Each entry host:port, with the user:password@ memjs takes in front (the port is not left to
  // memjs's default: a list that names some ports and not others is a typo more often than not).
  MEMCACHED_SERVERS: z
    .string()
    .regex(
      /^([^,\s@]+@)?[^,\s@:]+:\d{1,5}(,([^,\s@]+@)?[^,\s@:]+:\d{1,5})*$/,
      'a comma-separated list of host:port',
    )
    .default('127.0.0.1:11211'),
  DATABASE_URL: z.string().refine(isPostgresUrl, 'a postgres:// or postgresql:// URL').optional(),
  DATABASE_POOL_SIZE: int(1, 1000, 10),
  SQLITE_PATH: z
    .string()
    .min(1, 'a file path')
    // An in-memory database lives and dies with one process: that is STORE=memory.
    .refine(
      (v) => v !== ':memory:' && !v.startsWith('file::memory:'),
      'a file path, not :memory: (use STORE=memory)',
    )
    .default('verifyd.sqlite'),
  KEY_PREFIX: z
    .string()
    .max(64, 'at most 64 characters')
    .regex(/^\S*$/, 'no spaces')
    .default('verifyd:'),
  STORE_TIMEOUT_MS: int(50, 60_000, 1000),
  CLEANUP_INTERVAL_SECONDS: int(1, 86_400, 60),

  OTP_SECRET: optionalText,
  JWT_SECRET: optionalText,
  WEBHOOK_SECRET: optionalText,

  OTP_LENGTH: int(4, 10, 6),
  OTP_TTL_SECONDS: int(30, 86_400, 600),
  OTP_MAX_ATTEMPTS: int(1, 20, 5),
  // Each purpose holds a live code of its own per recipient, so the list bounds how many codes a
  // caller can have pending for one number at once.
  PURPOSES: z
    .string()
    .default('verification')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(
          z
            .string()
            .regex(
              PURPOSE_PATTERN,
              'comma-separated purposes of 1-32 letters, digits, "_", "-" or "."',
            ),
        )
        .min(1, 'at least one purpose'),
    ),
  SMS_TEMPLATE: z
    .string()
    .refine((v) => v.includes('{code}'), 'text containing {code}')
    .default('Your verification code is {code}'),

  EMAIL_TOKEN_TTL_SECONDS: int(60, 7 * 86_400, 600),
  EMAIL_LINK_BASE_URL: httpUrl().optional(),
  EMAIL_SUBJECT: z.string().min(1).default('Confirm your email address'),
  EMAIL_CODE_SUBJECT: z.string().min(1).default('Your verification code'),
  EMAIL_CODE_TEMPLATE: z
    .string()
    .refine((v) => v.includes('{code}'), 'text containing {code}')
    .default('Your verification code is {code}'),
  JWT_ISSUER: z.string().min(1).default('verifyd'),
  PROOF_AUDIENCE: z.string().min(1).default('verifyd:proof'),
  PROOF_TTL_SECONDS: int(30, 86_400, 300),

  RESEND_MAX: int(0, 1000, 3),
  RESEND_WINDOW_SECONDS: int(1, 86_400, 300),
  SEND_COOLDOWN_SECONDS: int(0, 3600, 30),
  SEND_MAX_PER_TARGET: int(1, 1000, 5),
  SEND_TARGET_WINDOW_SECONDS: int(1, 86_400, 600),
  TARGET_MAX_FAILURES: int(1, 10_000, 10),
  TARGET_FAILURE_WINDOW_SECONDS: int(1, 86_400, 3600),
  // NIST SP 800-63B: no more than 100 failed attempts per account, over every path.
  TARGET_MAX_DAILY_FAILURES: int(1, 1_000_000, 100),
  CHECK_BY_RECIPIENT: bool(true),
  IP_MAX_TARGETS_PER_HOUR: int(1, 1_000_000, 20),
  SMS_ALLOWED_COUNTRIES: list.pipe(
    z.array(
      z
        .string()
        .transform((c) => c.toUpperCase())
        // A code libphonenumber does not know (UK for GB) would silently refuse a whole country.
        .refine(
          (c) => /^[A-Z]{2}$/.test(c) && isSupportedCountry(c),
          'two-letter ISO country codes libphonenumber knows (GB, not UK), comma-separated',
        ),
    ),
  ),
  SMS_HOURLY_BUDGET: int(1, 100_000_000, 1000),

  // SMS pumping defences (services/pumping). With the mock provider nothing is paid for, and CI
  // suites send to fictional numbers in sequence, which the prefix defence would block; so auto
  // means on only with a real provider.
  SMS_PUMPING_DEFENCES: z.enum(['auto', 'on', 'off'], 'auto, on or off').default('auto'),
  SMS_ALLOWED_NUMBER_TYPES: list
    .pipe(
      z
        .array(z.enum(NUMBER_TYPE_SETTINGS, `any, or a list of ${NUMBER_TYPE_SETTINGS.join(', ')}`))
        .min(1, `any, or a list of ${NUMBER_TYPE_SETTINGS.join(', ')}`),
    )
    .default(['mobile', 'fixed_line_or_mobile'])
    .refine(
      (types) => !types.includes('any') || types.length === 1,
      'any alone, or a list of number types',
    ),
  SMS_COUNTRY_HOURLY_LIMIT: z
    .string()
    .default('250')
    .refine(
      isCountryLimitList,
      'a number for every country and/or COUNTRY:number overrides, e.g. 250,US:800,GB:200 (known ISO codes, or 001 for numbers outside any country)',
    ),
  SMS_COUNTRY_REFUSE_FACTOR: int(1, 100, 2),
  SMS_PREFIX_DROP_DIGITS: int(1, 8, 3),
  SMS_PREFIX_HOURLY_DISTINCT: int(1, 1_000_000, 10),
  SMS_PREFIX_BLOCK_SECONDS: int(60, 7 * 86_400, 43_200),
  SMS_CONVERSION_FLOOR: z.coerce
    .number('a fraction from 0.01 to 0.99')
    .min(0.01, 'a fraction from 0.01 to 0.99')
    .max(0.99, 'a fraction from 0.01 to 0.99')
    .default(0.3),
  SMS_CONVERSION_MIN_SAMPLE: int(5, 1_000_000, 20),
  SMS_CONVERSION_WINDOW_SECONDS: int(300, 86_400, 3600),
  SMS_CONVERSION_HOLD_SECONDS: int(60, 7 * 86_400, 43_200),
  SMS_DAILY_SOFT_BUDGET: int(0, 1_000_000_000, 5000),
  SMS_SAFE_LIST: list.pipe(
    z.array(
      z
        .string()
        .regex(/^\+[1-9]\d{0,14}$/, 'comma-separated numbers or prefixes in E.164, e.g. +4474001'),
    ),
  ),

  RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400, 60),
  RATE_LIMIT_MAX: int(1, 10_000_000, 60),

  VERIFIED_WEBHOOK_URL: httpUrl().optional(),
  WEBHOOK_TIMEOUT_MS: int(100, 60_000, 5000),
  WEBHOOK_RETRIES: int(0, 10, 3),

  SMS_PROVIDER: z.enum(['mock', 'twilio'], 'mock or twilio').default('mock'),
  EMAIL_PROVIDER: z.enum(['mock', 'sendgrid'], 'mock or sendgrid').default('mock'),
  PROVIDER_TIMEOUT_MS: int(100, 120_000, 10_000),
  TWILIO_ACCOUNT_SID: twilioSid('AC', 'an Account SID'),
  TWILIO_AUTH_TOKEN: optionalText,
  TWILIO_FROM: optionalMatching(
    TWILIO_SENDER,
    'a number in E.164 (+ and up to 15 digits) or an alphanumeric sender ID (up to 11 letters, digits and spaces, at least one letter)',
  ),
  TWILIO_MESSAGING_SERVICE_SID: twilioSid('MG', 'a Messaging Service SID'),
  SENDGRID_API_KEY: optionalText,
  EMAIL_FROM: optionalText.refine(
    (v) => v === undefined || isEmailFrom(v),
    'an email address, optionally with a display name: Name <no-reply@example.com>',
  ),
  TWILIO_API_BASE_URL: httpUrl().default('https://api.twilio.com'),
  SENDGRID_API_BASE_URL: httpUrl().default('https://api.sendgrid.com'),
  MOCK_OUTBOX_SIZE: int(1, 100_000, 1000),
  DEV_ROUTES_PUBLIC: bool(false),
  // Parsed and checked with the variables they depend on, in checkTestIdentities.
  TEST_IDENTITIES: optionalText,
  TEST_IDENTITIES_EXPIRE: optionalText,

  TWILIO_COMPAT: z.enum(['on', 'off'], 'on or off').default('off'),
  TWILIO_COMPAT_ACCOUNT_SID: twilioSid('AC', 'an Account SID'),
  TWILIO_COMPAT_AUTH_TOKEN: optionalText,

  // The image captcha was removed (a script using svg-captcha itself read every image back), so
  // a deployment that still asks for it is told what to use instead of being told "invalid".
  BOT_PROTECTION: z
    .enum(['off', 'pow'], {
      error: (issue) =>
        issue.input === 'captcha'
          ? 'off or pow; the image captcha was removed because a script reads it back in milliseconds: use pow (proof-of-work)'
          : 'off or pow',
    })
    .default('off'),
  BOT_PROTECTION_MODE: z.enum(['always', 'adaptive'], 'always or adaptive').default('adaptive'),
  BOT_PROTECTION_FREE_SENDS: int(0, 1_000_000, 3),
  // altcha-lib encodes the counter as a 32-bit integer, so no bound may pass 2^32 - 1.
  CHALLENGE_MAX_NUMBER: int(1000, 100_000_000, 1_000_000),
  CHALLENGE_DOUBLE_EVERY: int(1, 1000, 5),
  CHALLENGE_MAX_NUMBER_CAP: int(1000, 4_000_000_000, 16_000_000),
  CHALLENGE_TTL_SECONDS: int(10, 3600, 300),
  CHALLENGE_SESSION_TTL_SECONDS: int(60, 86_400, 3600),
  CHALLENGE_SESSION_MAX_SENDS: int(1, 100, 3),
});

type Parsed = z.infer<typeof configSchema>;
type Variable = keyof typeof configSchema.shape;

export type Config = Omit<Parsed, 'OTP_SECRET' | 'JWT_SECRET' | 'WEBHOOK_SECRET'> & {
  OTP_SECRET: string;
  JWT_SECRET: string;
  WEBHOOK_SECRET: string;
  /**
   * Names of secrets that were not set, got a random key at this start and sign something in this
   * configuration (WEBHOOK_SECRET only with VERIFIED_WEBHOOK_URL): for the warning, and for the
   * workers of one start to share.
   */
  devSecrets: string[];
};

/**
 * A missing secret outside production: a fresh random key of full strength, never a value written
 * in the source. A fixed default lets anybody who has read the source sign proofs, webhooks and
 * proof-of-work challenges that an exposed development instance (or an app checking its proofs)
 * accepts. The price: keys change at every start, and local instances sharing a store disagree
 * until they are given the same secrets; the start-up warning says so.
 */
function randomSecret(): string {
  return randomBytes(MIN_SECRET_BYTES).toString('base64url');
}

/** The secrets a deployment sets; each is an HMAC or HS256 key. */
type SecretName = 'OTP_SECRET' | 'JWT_SECRET' | 'WEBHOOK_SECRET';

/** What the variable-by-variable parse found, for the rules that combine several variables. */
interface Findings {
  readonly values: Partial<Parsed>;
  /** Variables already reported as invalid: no rule adds a second line about them. */
  readonly failed: ReadonlySet<string>;
  readonly problems: string[];
}

/** Unset, and not because its value was refused (that has its own line already). */
function absent(findings: Findings, name: Variable): boolean {
  return findings.values[name] === undefined && !findings.failed.has(name);
}

/**
 * Reads and validates the environment. Every problem is collected before anything is refused, so
 * one start reports them all: throws one ConfigError whose `problems` holds one line per problem,
 * each naming its variable. Secret values are never repeated in a line.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value means "use the default", so a copied .env.example works as it is.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const values: Record<string, unknown> = {};
  const failed = new Set<string>();
  const problems: string[] = [];
  // Each variable is parsed on its own: one line per bad variable even when a value breaks
  // several of its rules, and the rules below still see every variable that is fine.
  for (const [name, schema] of Object.entries(configSchema.shape) as [Variable, z.ZodType][]) {
    const result = schema.safeParse(given[name]);
    if (result.success) {
      values[name] = result.data;
    } else {
      failed.add(name);
      const expected = result.error.issues[0]?.message ?? 'a valid value';
      problems.push(`Invalid ${name}${shown(name, env[name])}: expected ${expected}.`);
    }
  }
  const findings: Findings = { values: values as Partial<Parsed>, failed, problems };
  const secrets = resolveSecrets(findings);
  if (findings.values.NODE_ENV === 'production') checkProductionReady(findings);
  checkProvidersConfigured(findings);
  checkTwilioCompat(findings);
  checkChallengeDifficulty(findings);
  checkHttpTimeouts(findings);
  checkClusterPrefix(findings);
  checkSqlStore(findings);
  checkOperations(findings);
  checkTestIdentities(findings);
  if (problems.length > 0) throw new ConfigError(problems);

  // Every variable parsed on its own above, so the whole object parses too; this gives it its type.
  return { ...configSchema.parse(given), ...secrets };
}

function resolveSecrets(findings: Findings): Pick<Config, SecretName | 'devSecrets'> {
  const { values, problems } = findings;
  const production = values.NODE_ENV === 'production';
  const devSecrets: string[] = [];
  // `used`: whether anything signs with it in this configuration; an unused one is not worth a
  // warning that codes stop working at the next start.
  const secret = (name: SecretName, why: string | undefined, used = true): string => {
    const own = values[name];
    if (own !== undefined) {
      if (production && Buffer.byteLength(own) < MIN_SECRET_BYTES) {
        problems.push(
          `Invalid ${name}: expected at least ${MIN_SECRET_BYTES} bytes in production.`,
        );
      }
      return own;
    }
    if (!production && used) devSecrets.push(name);
    else if (why !== undefined) problems.push(`Missing ${name}: ${why}`);
    return randomSecret();
  };
  const webhook = !absent(findings, 'VERIFIED_WEBHOOK_URL');
  const needed = `production needs a secret of at least ${MIN_SECRET_BYTES} bytes.`;
  const resolved = {
    OTP_SECRET: secret('OTP_SECRET', needed),
    JWT_SECRET: secret('JWT_SECRET', needed),
    // Its own key, never another's: the webhook's receiver holds it, and with JWT_SECRET a
    // receiver (or whoever reads its settings) could sign proofs. Unused without a webhook.
    WEBHOOK_SECRET: secret(
      'WEBHOOK_SECRET',
      webhook
        ? `production needs a secret of its own (at least ${MIN_SECRET_BYTES} bytes) to sign webhooks when VERIFIED_WEBHOOK_URL is set.`
        : undefined,
      webhook,
    ),
    devSecrets,
  };
  const shared = (['JWT_SECRET', 'OTP_SECRET'] as const).filter(
    (name) => values[name] !== undefined && values[name] === values.WEBHOOK_SECRET,
  );
  if (production && webhook && shared.length > 0) {
    problems.push(
      `Invalid WEBHOOK_SECRET: production needs a secret of its own, not the value of ${shared.join(' and ')}: the webhook's receiver holds it.`,
    );
  }
  return resolved;
}

function checkProductionReady(findings: Findings): void {
  const { values, problems } = findings;
  // true trusts every X-Forwarded-For entry, so the client's own leftmost entry becomes its
  // address even behind a real proxy: each request can claim a new address and pass every limit.
  if (values.TRUST_PROXY === true) {
    problems.push(
      'Invalid TRUST_PROXY: production refuses true, which lets clients choose their address in X-Forwarded-For; set the number of proxies in front (e.g. 1) or their addresses.',
    );
  }
  if (values.STORE === 'memory') {
    problems.push(
      'Invalid STORE: production needs redis, memcached, postgres or sqlite, not the per-process memory store.',
    );
  }
  if (values.OTP_LENGTH !== undefined && values.OTP_LENGTH < 6) {
    // NIST SP 800-63B asks for at least 20 bits of entropy in a one-time code: six digits.
    problems.push('Invalid OTP_LENGTH: production needs at least 6 digits.');
  }
  if (values.SMS_PROVIDER === 'mock') {
    problems.push('Invalid SMS_PROVIDER: production refuses the mock provider; set twilio.');
  }
  if (values.EMAIL_PROVIDER === 'mock') {
    problems.push('Invalid EMAIL_PROVIDER: production refuses the mock provider; set sendgrid.');
  }
  // Without either, the service cannot know the address users reach it at, and email links
  // would carry the address it listens on (e.g. http://0.0.0.0:8080).
  if (absent(findings, 'PUBLIC_URL') && absent(findings, 'EMAIL_LINK_BASE_URL')) {
    problems.push(
      'Missing PUBLIC_URL: production needs PUBLIC_URL or EMAIL_LINK_BASE_URL, the public address email links point at.',
    );
  }
}

/**
 * On Redis Cluster a key's slot comes from its first {...}. Services put the recipient or the
 * client in braces so that their keys share a slot; braces in the prefix would come first and put
 * every key of the deployment on one shard.
 */
function checkClusterPrefix(findings: Findings): void {
  const { values, problems } = findings;
  if (values.REDIS_CLUSTER_NODES !== undefined && /[{}]/.test(values.KEY_PREFIX ?? '')) {
    problems.push(
      'Invalid KEY_PREFIX: with REDIS_CLUSTER_NODES it must not contain { or }, which would place every key on one shard.',
    );
  }
}

/**
 * The SQL stores' own needs, found before anything connects: PostgreSQL's address, and SQLite's
 * driver, an optional peer dependency that a deployment without STORE=sqlite never installs.
 */
function checkSqlStore(findings: Findings): void {
  const { values, problems } = findings;
  if (values.STORE === 'postgres' && absent(findings, 'DATABASE_URL')) {
    problems.push('Missing DATABASE_URL: required when STORE=postgres.');
  }
  if (values.STORE === 'sqlite' && !resolvable('better-sqlite3')) {
    problems.push(
      'Invalid STORE (got "sqlite"): it needs better-sqlite3, which is not installed; install it beside verifyd with npm install better-sqlite3@12 (version 13 needs Node 22).',
    );
  }
}

function resolvable(module: string): boolean {
  try {
    require.resolve(module);
    return true;
  } catch {
    return false;
  }
}

/** Workers, metrics and shutdown settings that depend on each other or on the store. */
function checkOperations(findings: Findings): void {
  const { values, problems } = findings;
  // The memory store lives inside one process: every worker would hold codes and limits of its
  // own, so a code sent through one worker would fail on the next and every limit would multiply.
  if (values.STORE === 'memory' && values.WORKERS !== undefined && values.WORKERS !== '1') {
    problems.push(
      `Invalid WORKERS (got "${values.WORKERS}"): the memory store lives in one process; set STORE to redis, memcached, postgres or sqlite to run several workers.`,
    );
  }
  if (values.METRICS_PORT !== undefined && values.METRICS_PORT === values.PORT) {
    problems.push(
      `Invalid METRICS_PORT (got "${values.METRICS_PORT}"): expected a port other than PORT.`,
    );
  }
  if (
    values.NODE_ENV === 'production' &&
    values.METRICS_TOKEN !== undefined &&
    Buffer.byteLength(values.METRICS_TOKEN) < MIN_SECRET_BYTES
  ) {
    problems.push(
      `Invalid METRICS_TOKEN: expected at least ${MIN_SECRET_BYTES} bytes in production.`,
    );
  }
}

function checkProvidersConfigured(findings: Findings): void {
  const { values, problems } = findings;
  if (values.SMS_PROVIDER === 'twilio') {
    if (absent(findings, 'TWILIO_ACCOUNT_SID'))
      problems.push('Missing TWILIO_ACCOUNT_SID: required when SMS_PROVIDER=twilio.');
    if (absent(findings, 'TWILIO_AUTH_TOKEN'))
      problems.push('Missing TWILIO_AUTH_TOKEN: required when SMS_PROVIDER=twilio.');
    if (absent(findings, 'TWILIO_FROM') && absent(findings, 'TWILIO_MESSAGING_SERVICE_SID')) {
      problems.push(
        'Missing TWILIO_FROM: set it or TWILIO_MESSAGING_SERVICE_SID when SMS_PROVIDER=twilio.',
      );
    }
  }
  if (values.EMAIL_PROVIDER === 'sendgrid') {
    if (absent(findings, 'SENDGRID_API_KEY'))
      problems.push('Missing SENDGRID_API_KEY: required when EMAIL_PROVIDER=sendgrid.');
    if (absent(findings, 'EMAIL_FROM'))
      problems.push('Missing EMAIL_FROM: required when EMAIL_PROVIDER=sendgrid.');
  }
}

/** The Twilio-compatible API is its clients' one credential check: it needs both halves. */
function checkTwilioCompat(findings: Findings): void {
  const { values, problems } = findings;
  if (values.TWILIO_COMPAT !== 'on') return;
  if (absent(findings, 'TWILIO_COMPAT_ACCOUNT_SID'))
    problems.push('Missing TWILIO_COMPAT_ACCOUNT_SID: required when TWILIO_COMPAT=on.');
  const token = values.TWILIO_COMPAT_AUTH_TOKEN;
  if (absent(findings, 'TWILIO_COMPAT_AUTH_TOKEN')) {
    problems.push('Missing TWILIO_COMPAT_AUTH_TOKEN: required when TWILIO_COMPAT=on.');
  } else if (
    token !== undefined &&
    values.NODE_ENV === 'production' &&
    Buffer.byteLength(token) < MIN_SECRET_BYTES
  ) {
    problems.push(
      `Invalid TWILIO_COMPAT_AUTH_TOKEN: expected at least ${MIN_SECRET_BYTES} bytes in production.`,
    );
  }
  // Every url the API answers is one the SDK will follow as it is.
  if (values.NODE_ENV === 'production' && absent(findings, 'PUBLIC_URL')) {
    problems.push(
      'Missing PUBLIC_URL: production needs it when TWILIO_COMPAT=on, for the absolute URLs the API answers.',
    );
  }
}

function checkChallengeDifficulty(findings: Findings): void {
  const { values, problems } = findings;
  const base = values.CHALLENGE_MAX_NUMBER;
  const cap = values.CHALLENGE_MAX_NUMBER_CAP;
  // A cap below the base would make the first challenge harder than the cap says any may be.
  if (base !== undefined && cap !== undefined && cap < base) {
    problems.push(
      `Invalid CHALLENGE_MAX_NUMBER_CAP (got ${cap}): expected at least CHALLENGE_MAX_NUMBER (${base}).`,
    );
  }
}

function checkHttpTimeouts({ values, problems }: Findings): void {
  const { HTTP_HEADERS_TIMEOUT_MS: headers, HTTP_REQUEST_TIMEOUT_MS: request } = values;
  // The whole request includes its headers; Node refuses to start a server otherwise.
  if (headers !== undefined && request !== undefined && headers > request) {
    problems.push(
      `Invalid HTTP_HEADERS_TIMEOUT_MS (got "${headers}"): expected at most HTTP_REQUEST_TIMEOUT_MS (${request}).`,
    );
  }
}

/**
 * TEST_IDENTITIES: well-formed entries, each with an expiry, codes a check accepts, and in
 * production no entry that lives more than 90 days: a fixed code is a standing way in.
 */
function checkTestIdentities(findings: Findings): void {
  const { values, problems } = findings;
  const production = values.NODE_ENV === 'production';
  const { problems: found } = parseTestIdentities(values.TEST_IDENTITIES, {
    defaultExpiry: values.TEST_IDENTITIES_EXPIRE,
    otpLength: values.OTP_LENGTH ?? 6,
    allowUnassigned: values.SMS_PROVIDER === 'mock',
    ...(production ? { maxDays: PRODUCTION_MAX_DAYS } : {}),
    now: Date.now(),
  });
  problems.push(...found);
}

/** Names of variables whose values are secrets: a problem line names them but never shows them. */
const SECRET_NAME = /(?:SECRET|TOKEN|API_KEY)$/;
/** URLs and server lists may carry user:password@ in front of the host. */
const MAY_CARRY_CREDENTIALS = /_URL$|^MEMCACHED_SERVERS$|^REDIS_CLUSTER_NODES$/;
const SHOWN_MAX_CHARS = 80;

/** The refused value as a problem line shows it: secrets and credentials left out, one line. */
function shown(name: string, value: string | undefined): string {
  if (value === undefined || value === '' || SECRET_NAME.test(name)) return '';
  let text = MAY_CARRY_CREDENTIALS.test(name) ? maskCredentials(value) : value;
  if (text.length > SHOWN_MAX_CHARS) text = `${text.slice(0, SHOWN_MAX_CHARS)}…`;
  // JSON quoting escapes newlines and control characters, so the problem stays one line.
  return ` (got ${JSON.stringify(text)})`;
}

/** Replaces everything before the last @ of each comma-separated item, after its scheme. */
function maskCredentials(value: string): string {
  return value
    .split(',')
    .map((item) => {
      const at = item.lastIndexOf('@');
      if (at === -1) return item;
      const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(item)?.[0] ?? '';
      return `${scheme}***${item.slice(at)}`;
    })
    .join(',');
}

/** A config for tests and embedding: schema defaults plus overrides, without reading process.env. */
export function buildConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...overrides });
}
