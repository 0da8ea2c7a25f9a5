import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildTestApp, lastCode } from '../support/app';

const PHONE = '+15551234567';

interface Received {
  body: string;
  signature: string | undefined;
}

async function listen(
  statuses: number[],
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ body, signature: req.headers['x-verifyd-signature'] as string | undefined });
      res.statusCode = statuses.shift() ?? 200;
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

  it('retries a failing webhook and never turns the verification into an error', async () => {
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
      expect(new Set(hook.received.map((r) => r.body)).size).toBe(1);
    } finally {
      hook.server.close();
    }
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
