import { z } from 'zod';
import { ConfigError } from './errors';

/** Secrets shorter than this are refused in production (HMAC-SHA256 keys want 256 bits). */
export const MIN_SECRET_BYTES = 32;

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

const hexColor = z.string().regex(/^#[0-9a-fA-F]{3,8}$/, 'a colour like #f4f4f4');

/**
 * TRUST_PROXY is handed to Express's "trust proxy" setting: a hop count, true/false,
 * or a comma-separated list of addresses/subnets of the proxies in front of the service.
 */
const trustProxy = z
  .string()
  .default('false')
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
  HOST: z.string().min(1, 'a host name or address').default('127.0.0.1'),
  LOG_LEVEL: z
    .enum(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'fatal, error, warn, info, debug, trace or silent',
    )
    .default('info'),
  TRUST_PROXY: trustProxy,
  PUBLIC_URL: z.url('an absolute http(s) URL').optional(),

  STORE: z.enum(['memory', 'redis', 'memcached'], 'memory, redis or memcached').default('memory'),
  REDIS_URL: z.url('a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  MEMCACHED_SERVERS: z
    .string()
    .regex(/^[^,\s]+(,[^,\s]+)*$/, 'a comma-separated list of host:port')
    .default('127.0.0.1:11211'),
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
  SMS_TEMPLATE: z
    .string()
    .refine((v) => v.includes('{code}'), 'text containing {code}')
    .default('Your verification code is {code}'),

  EMAIL_TOKEN_TTL_SECONDS: int(60, 7 * 86_400, 600),
  EMAIL_LINK_BASE_URL: z.url('an absolute http(s) URL').optional(),
  EMAIL_SUBJECT: z.string().min(1).default('Confirm your email address'),
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
  IP_MAX_TARGETS_PER_HOUR: int(1, 1_000_000, 20),
  SMS_ALLOWED_COUNTRIES: list.pipe(
    z
      .array(z.string().regex(/^[A-Za-z]{2}$/, 'two-letter ISO country codes, comma-separated'))
      .transform((a) => a.map((c) => c.toUpperCase())),
  ),
  SMS_HOURLY_BUDGET: int(1, 100_000_000, 1000),

  RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400, 60),
  RATE_LIMIT_MAX: int(1, 10_000_000, 60),

  VERIFIED_WEBHOOK_URL: z.url('an absolute http(s) URL').optional(),
  WEBHOOK_TIMEOUT_MS: int(100, 60_000, 5000),
  WEBHOOK_RETRIES: int(0, 10, 3),

  SMS_PROVIDER: z.enum(['mock', 'twilio'], 'mock or twilio').default('mock'),
  EMAIL_PROVIDER: z.enum(['mock', 'sendgrid'], 'mock or sendgrid').default('mock'),
  PROVIDER_TIMEOUT_MS: int(100, 120_000, 10_000),
  TWILIO_ACCOUNT_SID: optionalText,
  TWILIO_AUTH_TOKEN: optionalText,
  TWILIO_FROM: optionalText,
  TWILIO_MESSAGING_SERVICE_SID: optionalText,
  SENDGRID_API_KEY: optionalText,
  EMAIL_FROM: optionalText,
  TWILIO_API_BASE_URL: z.url('an absolute http(s) URL').default('https://api.twilio.com'),
  SENDGRID_API_BASE_URL: z.url('an absolute http(s) URL').default('https://api.sendgrid.com'),
  MOCK_OUTBOX_SIZE: int(1, 100_000, 1000),

  BOT_PROTECTION: z.enum(['off', 'captcha', 'pow'], 'off, captcha or pow').default('off'),
  BOT_PROTECTION_MODE: z.enum(['always', 'adaptive'], 'always or adaptive').default('adaptive'),
  BOT_PROTECTION_FREE_SENDS: int(0, 1_000_000, 3),
  CAPTCHA_LENGTH: int(4, 10, 6),
  CAPTCHA_WIDTH: int(60, 1000, 150),
  CAPTCHA_HEIGHT: int(30, 500, 50),
  CAPTCHA_NOISE: int(0, 20, 2),
  CAPTCHA_COLOR: bool(true),
  CAPTCHA_BACKGROUND: hexColor.default('#f4f4f4'),
  CAPTCHA_TTL_SECONDS: int(30, 3600, 300),
  CHALLENGE_MAX_NUMBER: int(1000, 10_000_000, 100_000),
  CHALLENGE_TTL_SECONDS: int(10, 3600, 300),
  CHALLENGE_SESSION_TTL_SECONDS: int(60, 86_400, 3600),
});

type Parsed = z.infer<typeof configSchema>;

export type Config = Omit<Parsed, 'OTP_SECRET' | 'JWT_SECRET' | 'WEBHOOK_SECRET'> & {
  OTP_SECRET: string;
  JWT_SECRET: string;
  WEBHOOK_SECRET: string;
  /** Names of secrets that fell back to a development default, for a start-up warning. */
  devSecrets: string[];
};

/**
 * Development defaults are deterministic so that several local instances sharing a store agree;
 * production refuses to start without real secrets.
 */
const DEV_SECRETS = {
  OTP_SECRET: 'verifyd-development-otp-secret-do-not-use-in-production',
  JWT_SECRET: 'verifyd-development-jwt-secret-do-not-use-in-production',
  WEBHOOK_SECRET: 'verifyd-development-webhook-secret-do-not-use-in-production',
} as const;

/** Reads and validates the environment; throws ConfigError with a one-line message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value means "use the default", so a copied .env.example works as it is.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = configSchema.safeParse(given);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue?.path[0] ?? 'configuration');
    const value = env[name];
    const shown =
      value === undefined
        ? ''
        : ` (got "${name.includes('SECRET') || name.includes('TOKEN') || name.includes('KEY') ? '***' : value}")`;
    throw new ConfigError(
      `Invalid ${name}${shown}: expected ${issue?.message ?? 'a valid value'}.`,
    );
  }
  const parsed = result.data;
  const production = parsed.NODE_ENV === 'production';
  const devSecrets: string[] = [];
  const secret = (name: keyof typeof DEV_SECRETS, fallback?: string): string => {
    const value = parsed[name] ?? fallback;
    if (value !== undefined) {
      if (production && Buffer.byteLength(value) < MIN_SECRET_BYTES) {
        throw new ConfigError(
          `Invalid ${name}: expected at least ${MIN_SECRET_BYTES} bytes in production.`,
        );
      }
      return value;
    }
    if (production) {
      throw new ConfigError(
        `Missing ${name}: production needs a secret of at least ${MIN_SECRET_BYTES} bytes.`,
      );
    }
    devSecrets.push(name);
    return DEV_SECRETS[name];
  };
  const config: Config = {
    ...parsed,
    OTP_SECRET: secret('OTP_SECRET'),
    JWT_SECRET: secret('JWT_SECRET'),
    // The webhook signature may reuse the JWT secret when no dedicated one is given.
    WEBHOOK_SECRET: secret('WEBHOOK_SECRET', parsed.JWT_SECRET),
    devSecrets,
  };
  if (production) assertProductionReady(config);
  assertProvidersConfigured(config);
  return config;
}

function assertProductionReady(config: Config): void {
  if (config.STORE === 'memory') {
    throw new ConfigError(
      'Invalid STORE: production needs redis or memcached, not the per-process memory store.',
    );
  }
  if (config.OTP_LENGTH < 6) {
    // NIST SP 800-63B asks for at least 20 bits of entropy in a one-time code: six digits.
    throw new ConfigError('Invalid OTP_LENGTH: production needs at least 6 digits.');
  }
  if (config.SMS_PROVIDER === 'mock') {
    throw new ConfigError(
      'Invalid SMS_PROVIDER: production refuses the mock provider; set twilio.',
    );
  }
  if (config.EMAIL_PROVIDER === 'mock') {
    throw new ConfigError(
      'Invalid EMAIL_PROVIDER: production refuses the mock provider; set sendgrid.',
    );
  }
}

function assertProvidersConfigured(config: Config): void {
  if (config.SMS_PROVIDER === 'twilio') {
    if (!config.TWILIO_ACCOUNT_SID)
      throw new ConfigError('Missing TWILIO_ACCOUNT_SID: required when SMS_PROVIDER=twilio.');
    if (!config.TWILIO_AUTH_TOKEN)
      throw new ConfigError('Missing TWILIO_AUTH_TOKEN: required when SMS_PROVIDER=twilio.');
    if (!config.TWILIO_FROM && !config.TWILIO_MESSAGING_SERVICE_SID) {
      throw new ConfigError(
        'Missing TWILIO_FROM: set it or TWILIO_MESSAGING_SERVICE_SID when SMS_PROVIDER=twilio.',
      );
    }
  }
  if (config.EMAIL_PROVIDER === 'sendgrid') {
    if (!config.SENDGRID_API_KEY)
      throw new ConfigError('Missing SENDGRID_API_KEY: required when EMAIL_PROVIDER=sendgrid.');
    if (!config.EMAIL_FROM)
      throw new ConfigError('Missing EMAIL_FROM: required when EMAIL_PROVIDER=sendgrid.');
  }
}

/** A config for tests and embedding: schema defaults plus overrides, without reading process.env. */
export function buildConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...overrides });
}
