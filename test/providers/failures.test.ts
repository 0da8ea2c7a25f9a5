import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_STATUS } from '../../src/errors';
import {
  outcomeOfNetError,
  outcomeOfStatus,
  PROVIDER_ERRORS,
  retryAfterSeconds,
} from '../../src/providers/failures';

const README = readFileSync(join(__dirname, '../../README.md'), 'utf8');

describe('the provider error table', () => {
  it('is the README table, row for row', () => {
    const table = README.split('<!-- provider-errors:start -->')[1]?.split(
      '<!-- provider-errors:end -->',
    )[0];
    const rows = (table ?? '')
      .trim()
      .split('\n')
      .slice(2)
      .map((line) => line.trim());
    const names = { twilio: 'Twilio', sendgrid: 'SendGrid' };
    expect(rows).toEqual(
      PROVIDER_ERRORS.map(
        (row) =>
          `| ${names[row.provider]} | ${row.providerCode ?? `HTTP ${row.httpStatus}`} | \`${ERROR_STATUS[row.answer]} ${row.answer}\` | ${row.reason} |`,
      ),
    );
  });

  it('maps each provider error once', () => {
    const keys = PROVIDER_ERRORS.map(
      (row) => `${row.provider} ${row.providerCode ?? row.httpStatus}`,
    );
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('outcomes', () => {
  it('calls a 4xx refused and a 5xx unknown', () => {
    expect(outcomeOfStatus(400)).toBe('refused');
    expect(outcomeOfStatus(429)).toBe('refused');
    expect(outcomeOfStatus(500)).toBe('unknown');
    expect(outcomeOfStatus(504)).toBe('unknown');
  });

  it('calls only errors before the request was written refused', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'CERT_HAS_EXPIRED']) {
      expect(outcomeOfNetError(code)).toBe('refused');
    }
    for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_SOMETHING_NEW']) {
      expect(outcomeOfNetError(code)).toBe('unknown');
    }
  });
});

describe('retryAfterSeconds', () => {
  const now = Date.UTC(2026, 10, 21, 12, 0, 0);

  it('reads delay-seconds and HTTP-dates', () => {
    expect(retryAfterSeconds('17', now)).toBe(17);
    expect(retryAfterSeconds(['5'], now)).toBe(5);
    expect(retryAfterSeconds('Sat, 21 Nov 2026 12:01:30 GMT', now)).toBe(90);
  });

  it('falls back to 30 s when absent or unreadable, and keeps within 1 s to 1 h', () => {
    expect(retryAfterSeconds(undefined, now)).toBe(30);
    expect(retryAfterSeconds('soon', now)).toBe(30);
    expect(retryAfterSeconds('0', now)).toBe(1);
    expect(retryAfterSeconds('Sat, 21 Nov 2026 11:00:00 GMT', now)).toBe(1);
    expect(retryAfterSeconds('999999', now)).toBe(3600);
  });
});
