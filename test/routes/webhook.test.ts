import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildTestApp, lastCode } from '../support/app';

const PHONE = '+15551234567';
const OTHER_PHONE = '+15551234568';

interface Received {
  method: string | undefined;
  body: string;
  signature: string | undefined;
}

/** A receiver on loopback answering `statuses` in turn, then 200; `location` for redirects. */
async function listen(
  statuses: number[],
  location?: string,
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({
        method: req.method,
        body,
        signature: req.headers['x-verifyd-signature'] as string | undefined,
      });
      res.statusCode = statuses.shift() ?? 200;
      if (location !== undefined) res.setHeader('location', location);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, received, server };
}

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('verification webhook', () => {
  it('POSTs a signed verification.approved event that the README recipe validates', async () => {
    const hook = await listen([]);
    try {
      const { app, outbox } = buildTestApp({
        env: { VERIFIED_WEBHOOK_URL: hook.url, WEBHOOK_SECRET: 'hook-secret' },
      });
      await request(app).post('/verify-phone').send({ phone: PHONE, userId: 'u-9' });
      await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: lastCode(outbox, PHONE), userId: 'u-9' });
      await waitFor(() => hook.received.length === 1);
      const [event] = hook.received;
      expect(JSON.parse(event!.body)).toEqual({
        id: expect.stringMatching(/^[\w-]{22,}$/),
        event: 'verification.approved',
        channel: 'sms',
        to: PHONE,
        userId: 'u-9',
        purpose: 'verification',
        at: expect.any(String),
      });
      const { t, v1 } = Object.fromEntries(
        event!.signature!.split(',').map((part) => part.split('=')),
      ) as Record<string, string>;
      expect(v1).toBe(
        createHmac('sha256', 'hook-secret').update(`${t}.${event!.body}`).digest('hex'),
      );
    } finally {
      hook.server.close();
    }
  });

  it('retries a failing webhook with the same event id, and never turns the verification into an error', async () => {
    const hook = await listen([500, 503]);
    try {
      const { app, outbox } = buildTestApp({
        env: { VERIFIED_WEBHOOK_URL: hook.url, WEBHOOK_RETRIES: '3' },
      });
      await request(app).post('/verify-phone').send({ phone: PHONE });
      const res = await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
      expect(res.status).toBe(200);
      await waitFor(() => hook.received.length === 3);
      // One event, three tries: the same body, so the same id and time, for the receiver to
      // recognise a try it already handled.
      expect(new Set(hook.received.map((r) => r.body)).size).toBe(1);
      const first = JSON.parse(hook.received[0]!.body);
      expect(first.id).toEqual(expect.any(String));
      expect(first.at).toEqual(expect.any(String));

      // The next event is another id.
      await request(app).post('/verify-phone').send({ phone: OTHER_PHONE });
      await request(app)
        .post('/verify-phone-code')
        .send({ phone: OTHER_PHONE, code: lastCode(outbox, OTHER_PHONE) })
        .expect(200);
      await waitFor(() => hook.received.length === 4);
      const next = JSON.parse(hook.received[3]!.body);
      expect(next.to).toBe(OTHER_PHONE);
      expect(next.id).toEqual(expect.any(String));
      expect(next.id).not.toBe(first.id);
    } finally {
      hook.server.close();
    }
  });

  it('never follows a redirect with the signed body, nor retries it', async () => {
    await Promise.all(
      [301, 302, 303, 307, 308].map(async (status) => {
        const elsewhere = await listen([]);
        const redirecting = await listen([status], elsewhere.url);
        const logLines: string[] = [];
        try {
          const { app, outbox } = buildTestApp({
            env: { VERIFIED_WEBHOOK_URL: redirecting.url, WEBHOOK_RETRIES: '2', LOG_LEVEL: 'warn' },
            logLines,
          });
          await request(app).post('/verify-phone').send({ phone: PHONE });
          await request(app)
            .post('/verify-phone-code')
            .send({ phone: PHONE, code: lastCode(outbox, PHONE) })
            .expect(200);
          // The notifier logs this when it gives up on the redirect, so everything it sent is in.
          await waitFor(() =>
            logLines.some((line) => line.includes('webhook answered with a redirect')),
          );
          expect(redirecting.received.map((r) => r.method)).toEqual(['POST']);
          expect(elsewhere.received).toEqual([]);
        } finally {
          elsewhere.server.close();
          redirecting.server.close();
        }
      }),
    );
  });

  it('answers the verification even when the webhook is unreachable', async () => {
    const { app, outbox } = buildTestApp({
      env: { VERIFIED_WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_RETRIES: '0' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE });
    const res = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(res.status).toBe(200);
  });
});
