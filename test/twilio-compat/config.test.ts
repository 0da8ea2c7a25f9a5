import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

const SID = 'AC0123456789abcdef0123456789abcdef';
const STRONG = 'x'.repeat(32);
const production = {
  NODE_ENV: 'production',
  STORE: 'redis',
  SMS_PROVIDER: 'twilio',
  TWILIO_ACCOUNT_SID: SID,
  TWILIO_AUTH_TOKEN: 'token',
  TWILIO_FROM: '+15005550006',
  EMAIL_PROVIDER: 'sendgrid',
  SENDGRID_API_KEY: 'SG.key',
  EMAIL_FROM: 'no-reply@example.com',
  OTP_SECRET: STRONG,
  JWT_SECRET: STRONG,
  PUBLIC_URL: 'https://verify.example.com',
  TWILIO_COMPAT: 'on',
  TWILIO_COMPAT_ACCOUNT_SID: SID,
  TWILIO_COMPAT_AUTH_TOKEN: 'a'.repeat(32),
};

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  return [];
}

describe('Twilio-compatible API settings', () => {
  it('accepts a production setup and is off by default', () => {
    expect(loadConfig(production).TWILIO_COMPAT).toBe('on');
    expect(loadConfig({ NODE_ENV: 'test' }).TWILIO_COMPAT).toBe('off');
  });

  it('needs both credentials when on', () => {
    expect(problems({ NODE_ENV: 'test', TWILIO_COMPAT: 'on' })).toEqual([
      'Missing TWILIO_COMPAT_ACCOUNT_SID: required when TWILIO_COMPAT=on.',
      'Missing TWILIO_COMPAT_AUTH_TOKEN: required when TWILIO_COMPAT=on.',
    ]);
  });

  it('takes an Account SID only as the SDK does (AC and 32 hex digits)', () => {
    expect(problems({ ...production, TWILIO_COMPAT_ACCOUNT_SID: 'AC123' })).toEqual([
      'Invalid TWILIO_COMPAT_ACCOUNT_SID (got "AC123"): expected an Account SID: AC followed by 32 hexadecimal digits.',
    ]);
  });

  it('wants a token of 32 bytes and a PUBLIC_URL in production, and never shows the token', () => {
    const { PUBLIC_URL: _, ...withoutUrl } = production;
    const found = problems({
      ...withoutUrl,
      TWILIO_COMPAT_AUTH_TOKEN: 'short-token',
      EMAIL_LINK_BASE_URL: 'https://app.example.com/confirm',
    });
    expect(found).toEqual([
      'Invalid TWILIO_COMPAT_AUTH_TOKEN: expected at least 32 bytes in production.',
      'Missing PUBLIC_URL: production needs it when TWILIO_COMPAT=on, for the absolute URLs the API answers.',
    ]);
    expect(found.join('\n')).not.toContain('short-token');
  });
});
