/**
 * GET /metrics after real flows through the assembled app: each send, check and approval counted
 * under the right channel, country, outcome and reason; provider and store calls timed and their
 * failures counted; HTTP durations by route; nothing identifying in any label; and the token that
 * guards the route outside development.
 */
import request from 'supertest';
import { DeliveryFailedError, StoreUnavailableError } from '../../src/errors';
import type { SmsMessage } from '../../src/providers/types';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp, lastCode, lastToken } from '../support/app';

const TOKEN = 'metrics-token-for-tests-0123456789abcdef';

/** The value of the one sample of `name` whose labels include all of `labels` (0 if none). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? ([^ ]+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => have[key] === value)) {
      total += Number(match[3]);
      found++;
    }
  }
  return found === 0 ? 0 : total;
}

async function scrape(app: Parameters<typeof request>[0]): Promise<string> {
  const res = await request(app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

/** A provider that refuses with Twilio's "invalid To number" (21211), as the real one would. */
const refusingSms = {
  name: 'twilio',
  async send(_message: SmsMessage): Promise<never> {
    throw new DeliveryFailedError('sms', {
      outcome: 'refused',
      code: 'invalid_phone',
      failure: { provider: 'twilio', httpStatus: 400, providerCode: 21211, reason: 'invalid To' },
    });
  },
};

describe('GET /metrics', () => {
  it('counts sends, checks and approvals of real flows by channel, country and outcome', async () => {
    const { app, outbox, sms } = buildTestApp({
      env: {
        METRICS_TOKEN: TOKEN,
        SEND_COOLDOWN_SECONDS: '30',
        SMS_ALLOWED_COUNTRIES: 'US,CA',
      },
    });
    const us = ['+15551230001', '+15551230002', '+15551230003'];
    for (const phone of us) await request(app).post('/verify-phone').send({ phone }).expect(202);
    // The cooldown refuses the second send to one number.
    await request(app).post('/verify-phone').send({ phone: us[0] }).expect(429);
    // The allow-list refuses a UK number before the service is reached.
    await request(app).post('/verify-phone').send({ phone: '+447400123456' }).expect(403);
    // The provider refuses one send, and leaves another unknown.
    sms.failNext(1, { outcome: 'refused' });
    await request(app).post('/verify-phone').send({ phone: '+15551230004' }).expect(502);
    sms.failNext(1, { outcome: 'unknown' });
    await request(app).post('/verify-phone').send({ phone: '+15551230005' }).expect(502);

    // One wrong code, two right ones.
    const code = lastCode(outbox, us[0] as string);
    const wrong = code === '000000' ? '111111' : '000000';
    await request(app).post('/verify-phone-code').send({ phone: us[0], code: wrong }).expect(400);
    await request(app).post('/verify-phone-code').send({ phone: us[0], code }).expect(200);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: us[1], code: lastCode(outbox, us[1] as string) })
      .expect(200);

    // An email link, sent and used.
    await request(app).post('/verify-email').send({ email: 'ada@example.com' }).expect(202);
    await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, 'ada@example.com') })
      .expect(200);

    const text = await scrape(app);
    const sends = (labels: Record<string, string>) => sample(text, 'verifyd_sends_total', labels);
    expect(sends({ channel: 'sms', country: 'US', outcome: 'sent' })).toBe(3);
    expect(sends({ channel: 'sms', country: 'US', outcome: 'refused', reason: 'cooldown' })).toBe(
      1,
    );
    expect(sends({ channel: 'sms', country: 'GB', outcome: 'refused', reason: 'country' })).toBe(1);
    expect(sends({ channel: 'sms', country: 'US', outcome: 'delivery_failed' })).toBe(1);
    expect(sends({ channel: 'sms', country: 'US', outcome: 'unknown' })).toBe(1);
    expect(sends({ channel: 'email', country: '', outcome: 'sent' })).toBe(1);
    expect(sends({})).toBe(8);

    const checks = (labels: Record<string, string>) => sample(text, 'verifyd_checks_total', labels);
    expect(checks({ channel: 'sms', outcome: 'invalid_code' })).toBe(1);
    expect(checks({ channel: 'sms', outcome: 'approved' })).toBe(2);
    expect(checks({ channel: 'email', outcome: 'approved' })).toBe(1);
    // Approvals by country, to divide by sends for the conversion.
    expect(sample(text, 'verifyd_approvals_total', { channel: 'sms', country: 'US' })).toBe(2);
    expect(sample(text, 'verifyd_approvals_total', { channel: 'email', country: '' })).toBe(1);

    // Provider calls: five reached the mock SMS provider (two failed), one the email provider.
    const provider = 'verifyd_provider_request_duration_seconds_count';
    expect(sample(text, provider, { provider: 'mock', channel: 'sms', outcome: 'ok' })).toBe(3);
    expect(sample(text, provider, { provider: 'mock', channel: 'sms', outcome: 'refused' })).toBe(
      1,
    );
    expect(sample(text, provider, { provider: 'mock', channel: 'sms', outcome: 'unknown' })).toBe(
      1,
    );
    expect(sample(text, provider, { provider: 'mock', channel: 'email', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'verifyd_provider_errors_total', { provider: 'mock' })).toBe(2);

    // Store calls by operation: each send that passed the country check ran one admit.
    const store = 'verifyd_store_operation_duration_seconds_count';
    expect(sample(text, store, { backend: 'memory', operation: 'admit' })).toBe(7);
    expect(sample(text, store, { backend: 'memory', operation: 'increment' })).toBeGreaterThan(0);
    expect(sample(text, 'verifyd_store_errors_total')).toBe(0);

    // HTTP durations by route and status.
    const http = 'verifyd_http_request_duration_seconds_count';
    expect(sample(text, http, { method: 'POST', route: '/verify-phone', status: '202' })).toBe(3);
    expect(sample(text, http, { method: 'POST', route: '/verify-phone', status: '429' })).toBe(1);
    expect(sample(text, http, { method: 'POST', route: '/verify-phone-code', status: '200' })).toBe(
      2,
    );

    // The process's own metrics come along. Their CPU counts only from the registry's start, and
    // the kernel may account a short run's CPU in whole ticks, so a quick test can read 0.
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^process_cpu_system_seconds_total \d/m);
    expect(text).toContain('nodejs_eventloop_lag_seconds');

    // No number, address, code, token or client address in any label.
    const labels = text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.slice(0, line.lastIndexOf(' ')));
    for (const secret of [...us.map((p) => p.slice(1)), '7400123456', 'ada', code, '127.0.0.1']) {
      expect(labels.filter((line) => line.includes(secret))).toEqual([]);
    }
  });

  it("labels provider errors with the provider's own code", async () => {
    const { app } = buildTestApp({ env: { METRICS_TOKEN: TOKEN }, sms: refusingSms });
    await request(app).post('/verify-phone').send({ phone: '+15551230009' }).expect(400);
    const text = await scrape(app);
    expect(
      sample(text, 'verifyd_provider_errors_total', {
        provider: 'twilio',
        channel: 'sms',
        outcome: 'refused',
        error: '21211',
      }),
    ).toBe(1);
    expect(
      sample(text, 'verifyd_sends_total', { outcome: 'delivery_failed', reason: 'invalid_phone' }),
    ).toBe(1);
  });

  it('labels a provider call that timed out ETIMEDOUT', async () => {
    const { app } = buildTestApp({ env: { METRICS_TOKEN: TOKEN, PROVIDER_TIMEOUT_MS: '100' } });
    // The mock's fault number that never answers.
    await request(app).post('/verify-phone').send({ phone: '+15005550013' }).expect(502);
    const text = await scrape(app);
    expect(
      sample(text, 'verifyd_provider_errors_total', {
        provider: 'mock',
        outcome: 'unknown',
        error: 'ETIMEDOUT',
      }),
    ).toBe(1);
  });

  it('counts refusals by each send limit and by the per-client request limit', async () => {
    const { app } = buildTestApp({
      env: { METRICS_TOKEN: TOKEN, IP_MAX_TARGETS_PER_HOUR: '2', SEND_MAX_PER_TARGET: '1' },
    });
    await request(app).post('/verify-phone').send({ phone: '+15551230011' }).expect(202);
    await request(app).post('/verify-phone').send({ phone: '+15551230011' }).expect(429);
    await request(app).post('/verify-phone').send({ phone: '+15551230012' }).expect(202);
    await request(app).post('/verify-phone').send({ phone: '+15551230013' }).expect(429);
    const text = await scrape(app);
    expect(sample(text, 'verifyd_sends_total', { outcome: 'refused', reason: 'recipient' })).toBe(
      1,
    );
    expect(
      sample(text, 'verifyd_sends_total', { outcome: 'refused', reason: 'client_recipients' }),
    ).toBe(1);

    const limited = buildTestApp({ env: { METRICS_TOKEN: TOKEN, RATE_LIMIT_MAX: '1' } });
    await request(limited.app).post('/verify-email').send({ email: 'bo@example.com' }).expect(202);
    await request(limited.app).post('/verify-email').send({ email: 'bo@example.com' }).expect(429);
    const second = await scrape(limited.app);
    expect(
      sample(second, 'verifyd_sends_total', {
        channel: 'email',
        outcome: 'refused',
        reason: 'client_requests',
      }),
    ).toBe(1);
    // Each app counts for itself: the first app's sends are not in the second's registry.
    expect(sample(second, 'verifyd_sends_total', { outcome: 'sent' })).toBe(1);
  });

  it('counts a send the SMS pumping defences refused as refused, by the code it answered', async () => {
    const { app } = buildTestApp({ env: { METRICS_TOKEN: TOKEN, SMS_PUMPING_DEFENCES: 'on' } });
    // A premium-rate number: refused for its number type.
    await request(app).post('/verify-phone').send({ phone: '+449090123456' }).expect(403);
    // A mobile goes through the same guard, and is counted once.
    await request(app).post('/verify-phone').send({ phone: '+447400123456' }).expect(202);
    const text = await scrape(app);
    expect(sample(text, 'verifyd_sends_total', { outcome: 'sent' })).toBe(1);
    expect(
      sample(text, 'verifyd_sends_total', {
        country: 'GB',
        outcome: 'refused',
        reason: 'number_type_not_allowed',
      }),
    ).toBe(1);
    expect(
      sample(text, 'verifyd_pumping_signals_total', {
        country: 'GB',
        signal: 'number_type',
        action: 'refused',
      }),
    ).toBe(1);
  });

  it('counts store failures by operation and backend', async () => {
    const inner = new MemoryStore({ keyPrefix: 'metrics:' });
    const store = new Proxy(inner, {
      get(target, property) {
        if (property === 'admit') {
          return async () => {
            throw new StoreUnavailableError('memory');
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const { app } = buildTestApp({ env: { METRICS_TOKEN: TOKEN }, store });
    await request(app).post('/verify-phone').send({ phone: '+15551230021' }).expect(503);
    const text = await scrape(app);
    expect(
      sample(text, 'verifyd_store_errors_total', {
        backend: 'memory',
        operation: 'admit',
        kind: 'unavailable',
      }),
    ).toBe(1);
    expect(
      sample(text, 'verifyd_sends_total', { outcome: 'error', reason: 'store_unavailable' }),
    ).toBe(1);
    await inner.close();
  });

  it('needs the bearer token outside development, and is open in development', async () => {
    const guarded = buildTestApp({ env: { METRICS_TOKEN: TOKEN } }).app;
    const none = await request(guarded).get('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    expect(none.body.error.code).toBe('unauthorized');
    await request(guarded).get('/metrics').set('Authorization', `Bearer ${TOKEN}x`).expect(401);
    await request(guarded).get('/metrics').set('Authorization', TOKEN).expect(401);
    // Without a token, /metrics is not served outside development at all.
    await request(buildTestApp().app).get('/metrics').expect(404);
    const open = await request(buildTestApp({ env: { NODE_ENV: 'development' } }).app).get(
      '/metrics',
    );
    expect(open.status).toBe(200);
    expect(open.text).toContain('verifyd_http_request_duration_seconds');
  });
});
