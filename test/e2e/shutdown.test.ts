/**
 * Health probes and graceful shutdown of the built server process, as an orchestrator sees them:
 * /health/live never asks the store, /health/ready does; after SIGTERM readiness fails first while
 * requests are still served, then the listener closes, a request already in flight still gets its
 * answer, and the process exits 0. A request that never finishes is cut after
 * SHUTDOWN_TIMEOUT_MS rather than holding the exit forever.
 */
import http from 'node:http';
import net from 'node:net';
import { lastCode, postJson } from '../support/e2e-client';
import { sleep } from '../support/servers';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const SECRETS = {
  OTP_SECRET: 'e2e-otp-secret-0123456789abcdef0123456789',
  JWT_SECRET: 'e2e-jwt-secret-0123456789abcdef0123456789',
};

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One GET on a connection of its own, so that no kept-alive socket hides a closed listener. Fails
 * after 5 s without an answer rather than wait for the test's timeout.
 */
function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} got no answer within 5 s`)));
    req.on('error', reject);
  });
}

/** `promise`, or a clear failure naming `what` once `ms` have passed without it settling. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A POST whose headers and first half of the body are sent now: the server is in the middle of
 * it until `finish()` sends the rest. Resolves `answer` with the raw response text.
 */
function startSlowPost(port: number, path: string, body: string) {
  const socket = net.connect(port, '127.0.0.1');
  let raw = '';
  socket.on('data', (chunk) => {
    raw += chunk.toString();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  const half = Math.floor(body.length / 2);
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
  );
  return {
    finish: () => socket.write(body.slice(half)),
    closed,
    answer: () => raw,
  };
}

/** Asks until `check` holds, with a generous bound: a busy machine only makes it take longer. */
async function eventually<T>(probe: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`never true; last: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

/** A loopback port nobody listens on: a Redis there cannot answer, the process is alive. */
const deadPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const refused = (port: number) =>
  get(port, '/health/live').then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
  );

describe('health probes and graceful shutdown of the server process', () => {
  let verifyd: VerifydProcess | undefined;

  afterEach(async () => {
    await verifyd?.stop();
    verifyd = undefined;
  });

  it('answers live and ready, then drains on SIGTERM: ready 503 first, in-flight request answered, exit 0', async () => {
    verifyd = await startVerifyd({
      NODE_ENV: 'test',
      ...SECRETS,
      LOG_LEVEL: 'info',
      SHUTDOWN_DELAY_MS: '1500',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    const { port } = verifyd;
    expect(await get(port, '/health/live')).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    const ready = await get(port, '/health/ready');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({
      status: 'ok',
      store: { backend: 'memory', ok: true },
    });

    const inFlight = startSlowPost(
      port,
      '/verify-phone',
      JSON.stringify({ phone: '+15551239876' }),
    );
    // The server has the headers: wait until it has taken the connection before the signal.
    await sleep(100);
    verifyd.signal('SIGTERM');

    // Readiness fails while the listener still takes connections: the balancer's cue.
    const draining = await eventually(
      () => get(port, '/health/ready'),
      (answer) => answer.status === 503,
    );
    expect(JSON.parse(draining.body)).toEqual({ status: 'draining', store: { backend: 'memory' } });
    expect(draining.headers.connection).toBe('close');
    // Liveness does not fail: the process is fine, and a restart now would only drop requests.
    expect((await get(port, '/health/live')).status).toBe(200);

    // Then the listener closes; the request that was in flight all along still gets its answer.
    await eventually(() => refused(port), Boolean);
    expect(inFlight.answer()).toBe('');
    inFlight.finish();
    await within(inFlight.closed, 15_000, "the in-flight request's connection closing");
    // Answered in full, and its connection closed by the server once idle.
    expect(inFlight.answer()).toMatch(/^HTTP\/1\.1 202 /);
    expect(inFlight.answer()).toContain('"status":"pending"');

    expect(await within(verifyd.exited, 15_000, 'the exit')).toEqual({ code: 0, signal: null });
    expect(verifyd.output()).toContain('"msg":"stopped"');
    expect(verifyd.output()).not.toContain('still in flight');
  }, 60_000);

  it('cuts a request that never finishes after SHUTDOWN_TIMEOUT_MS, and exits', async () => {
    verifyd = await startVerifyd({
      NODE_ENV: 'test',
      ...SECRETS,
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    const stuck = startSlowPost(
      verifyd.port,
      '/verify-phone',
      JSON.stringify({ phone: '+15551239875' }),
    );
    await sleep(100);
    verifyd.signal('SIGTERM');
    // verifyd's own bound exits 1 at SHUTDOWN_TIMEOUT_MS + 5 s at the latest, closing the socket.
    await within(stuck.closed, 15_000, 'the stuck connection closing');
    expect(stuck.answer()).toBe('');
    expect(await within(verifyd.exited, 15_000, 'the exit')).toEqual({ code: 0, signal: null });
    expect(verifyd.output()).toContain('requests still in flight after SHUTDOWN_TIMEOUT_MS');
  }, 60_000);

  it('exits on SIGTERM when nobody reads its stdout any more (a log shipper that died)', async () => {
    // With Redis down the stop is quick, so the last lines are still being written at the exit:
    // the case where writing them used to spin for ever on the broken pipe.
    verifyd = await startVerifyd({
      NODE_ENV: 'test',
      ...SECRETS,
      LOG_LEVEL: 'info',
      STORE: 'redis',
      REDIS_URL: `redis://127.0.0.1:${await deadPort()}`,
      STORE_TIMEOUT_MS: '200',
    });
    verifyd.closeOutput();
    verifyd.signal('SIGTERM');
    expect(await within(verifyd.exited, 10_000, 'the exit')).toEqual({ code: 0, signal: null });
  }, 60_000);

  describe('a webhook whose first try failed', () => {
    /** Sends a code to `phone` and checks it: the approval that fires the webhook. */
    async function approve(url: string, phone: string): Promise<void> {
      expect((await postJson(`${url}/verify-phone`, { phone })).status).toBe(202);
      const code = await lastCode(url, phone);
      expect((await postJson(`${url}/verify-phone-code`, { phone, code })).status).toBe(200);
    }
    const webhookEnv = (port: number, timeoutMs: string) => ({
      NODE_ENV: 'test',
      ...SECRETS,
      LOG_LEVEL: 'info',
      VERIFIED_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
      WEBHOOK_SECRET: 'e2e-webhook-secret-0123456789abcdef0123',
      SHUTDOWN_TIMEOUT_MS: timeoutMs,
    });

    it('is retried before the process exits: a rolling deploy does not lose the approval', async () => {
      const port = await deadPort();
      verifyd = await startVerifyd(webhookEnv(port, '10000'));
      await approve(verifyd.url, '+15551230001');
      // Once the first try has failed, the process is told to stop, and the receiver comes up:
      // the retries (due 500 ms, 1 s and 2 s later) must still be made.
      const log = verifyd;
      await eventually(
        async () => log.output(),
        (output) => output.includes('webhook delivery failed'),
      );
      verifyd.signal('SIGTERM');
      const received: string[] = [];
      const receiver = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        req.on('end', () => {
          received.push(body);
          res.end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
      try {
        expect(await within(verifyd.exited, 15_000, 'the exit')).toEqual({ code: 0, signal: null });
        expect(received).toHaveLength(1);
        expect(JSON.parse(received[0] ?? '{}')).toMatchObject({
          event: 'verification.approved',
          to: '+15551230001',
        });
        expect(verifyd.output()).not.toContain('the event is lost');
      } finally {
        await new Promise((resolve) => receiver.close(resolve));
      }
    }, 60_000);

    it('is named in the log when the stop cannot wait for it any longer', async () => {
      verifyd = await startVerifyd(webhookEnv(await deadPort(), '300'));
      await approve(verifyd.url, '+15551230002');
      verifyd.signal('SIGTERM');
      expect(await within(verifyd.exited, 15_000, 'the exit')).toEqual({ code: 0, signal: null });
      const failed = verifyd
        .output()
        .split('\n')
        .filter((line) => line.includes('webhook delivery failed'));
      const lost = verifyd
        .output()
        .split('\n')
        .find((line) => line.includes('the event is lost'));
      // Every line names the event by the id the receiver would have seen, and why it failed.
      const id = JSON.parse(failed[0] ?? '{}').webhookEvent;
      expect(id).toEqual(expect.any(String));
      expect(JSON.parse(failed[0] ?? '{}').err).toMatchObject({ cause: 'ECONNREFUSED' });
      expect(JSON.parse(lost ?? '{}')).toMatchObject({
        webhookEvent: id,
        channel: 'sms',
        purpose: 'verification',
      });
      expect(verifyd.output()).not.toContain('+15551230002');
    }, 60_000);
  });

  it('answers /health/ready 503 while the store is down, and /health/live 200 without asking it', async () => {
    verifyd = await startVerifyd({
      NODE_ENV: 'test',
      ...SECRETS,
      STORE: 'redis',
      REDIS_URL: `redis://127.0.0.1:${await deadPort()}`,
      STORE_TIMEOUT_MS: '200',
    });
    expect((await get(verifyd.port, '/health/live')).status).toBe(200);
    const ready = await get(verifyd.port, '/health/ready');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({
      status: 'unavailable',
      store: { backend: 'redis', ok: false },
    });
  }, 60_000);
});
