import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderEnvExample, renderTable } from '../scripts/config-docs';
import { buildConfig, loadConfig } from '../src/config';
import { ConfigError } from '../src/errors';

const STRONG = 'x'.repeat(32);
const productionEnv = {
  NODE_ENV: 'production',
  STORE: 'redis',
  SMS_PROVIDER: 'twilio',
  TWILIO_ACCOUNT_SID: 'AC123',
  TWILIO_AUTH_TOKEN: 'token',
  TWILIO_FROM: '+15005550006',
  EMAIL_PROVIDER: 'sendgrid',
  SENDGRID_API_KEY: 'SG.key',
  EMAIL_FROM: 'no-reply@example.com',
  OTP_SECRET: STRONG,
  JWT_SECRET: STRONG,
};

function failure(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('serves local development with defaults: memory store, mock providers, port 3000', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      STORE: 'memory',
      SMS_PROVIDER: 'mock',
      EMAIL_PROVIDER: 'mock',
    });
    expect(config.devSecrets).toEqual(['OTP_SECRET', 'JWT_SECRET', 'WEBHOOK_SECRET']);
    expect(config.OTP_TTL_SECONDS).toBe(600);
  });

  it('stops on a bad value with one line naming the variable and what it accepts', () => {
    expect(failure({ OTP_LENGTH: '12' })).toBe(
      'Invalid OTP_LENGTH (got "12"): expected an integer from 4 to 10.',
    );
    expect(failure({ STORE: 'mongo' })).toBe(
      'Invalid STORE (got "mongo"): expected memory, redis or memcached.',
    );
    expect(failure({ PORT: 'http' })).toMatch(/^Invalid PORT .*integer/);
    expect(failure({ SMS_ALLOWED_COUNTRIES: 'US,USA' })).toMatch(/^Invalid SMS_ALLOWED_COUNTRIES/);
    expect(failure({ OTP_SECRET: 'x'.repeat(3), NODE_ENV: 'production' })).not.toContain('xxx');
    for (const message of [failure({ OTP_LENGTH: 'abc' })])
      expect(message.split('\n')).toHaveLength(1);
  });

  it('accepts a production setup', () => {
    expect(loadConfig(productionEnv).devSecrets).toEqual([]);
  });

  it.each([
    ['STORE', 'memory', /STORE: production needs redis or memcached/],
    ['SMS_PROVIDER', 'mock', /SMS_PROVIDER: production refuses the mock/],
    ['EMAIL_PROVIDER', 'mock', /EMAIL_PROVIDER: production refuses the mock/],
    ['OTP_SECRET', 'short', /OTP_SECRET: expected at least 32 bytes/],
    ['JWT_SECRET', '', /Missing JWT_SECRET/],
  ])('refuses production with %s=%j', (name, value, message) => {
    expect(failure({ ...productionEnv, [name]: value })).toMatch(message);
  });

  it('wants the provider credentials of the chosen provider', () => {
    expect(failure({ SMS_PROVIDER: 'twilio' })).toMatch(/TWILIO_ACCOUNT_SID/);
    expect(failure({ EMAIL_PROVIDER: 'sendgrid', SENDGRID_API_KEY: 'k' })).toMatch(/EMAIL_FROM/);
  });

  it('treats empty values as unset, so a copied .env.example works', () => {
    expect(buildConfig({ EMAIL_LINK_BASE_URL: '', PORT: '' }).PORT).toBe(3000);
  });

  it('is documented in .env.example and the README, generated from the schema', () => {
    const root = join(__dirname, '..');
    expect(readFileSync(join(root, '.env.example'), 'utf8')).toBe(renderEnvExample());
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(renderTable());
  });
});
