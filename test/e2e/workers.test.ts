/**
 * WORKERS=2 in the built server process: two worker processes answer on one port, a code sent
 * through one worker is accepted by the other (one store, and one set of development secrets made
 * by the primary), /metrics counts every worker's sends whichever worker answers the scrape, and
 * SIGTERM drains both and exits 0. Needs Redis: the memory store is refused with WORKERS.
 */
import http from 'node:http';
import { describeRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/servers';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

interface Answer {
  status: number;
  body: string;
}

/** One request on a connection of its own: the cluster hands each connection to the next worker. */
function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        agent: false,
        headers: {
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const TOKEN = 'workers-metrics-token-0123456789abcdef';

/** The pids in the request log lines for `path`: which workers answered it. */
function answeringPids(output: string, path: string): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { pid?: number; msg?: string; req?: { path?: string } };
    if (entry.msg === 'request completed' && entry.req?.path === path && entry.pid)
      pids.add(entry.pid);
  }
  return pids;
}

describeRedis('WORKERS=2 (needs Redis)', () => {
  let verifyd: VerifydProcess | undefined;

  afterAll(async () => {
    await verifyd?.stop();
  });

  it('answers from two worker processes on one port, shares codes and metrics, and drains on SIGTERM', async () => {
    verifyd = await startVerifyd({
      NODE_ENV: 'test',
      WORKERS: '2',
      STORE: 'redis',
      REDIS_URL: SHARED_REDIS_URL,
      KEY_PREFIX: uniquePrefix('workers'),
      // No OTP_SECRET or JWT_SECRET: the primary makes them once for both workers.
      LOG_LEVEL: 'debug',
      METRICS_TOKEN: TOKEN,
      SEND_COOLDOWN_SECONDS: '0',
      RATE_LIMIT_MAX: '1000',
    });
    const { port } = verifyd;
    // The first worker may answer before the second listens; the primary says when both do.
    for (let i = 0; i < 200 && !verifyd.output().includes('"workers":2'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(verifyd.output()).toContain('with 2 workers');
    for (let i = 0; i < 8; i++) expect((await call(port, 'GET', '/health/live')).status).toBe(200);
    // pino writes asynchronously: give the lines a moment to arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pids = answeringPids(verifyd.output(), '/health/live');
    expect(pids.size).toBe(2);

    // Each send and its check on connections of their own: round robin sends them to different
    // workers, and every check passes only if both workers share the store and the secrets.
    const numbers = Array.from({ length: 4 }, (_, i) => `+1555012${String(3400 + i)}`);
    for (const phone of numbers) {
      const sent = await call(port, 'POST', '/verify-phone', { phone });
      expect(sent.status).toBe(202);
      const { verificationId } = JSON.parse(sent.body) as { verificationId: string };
      // The mock outbox is each worker's own: ask until the worker that sent it answers.
      let code: string | undefined;
      for (let tries = 0; tries < 10 && !code; tries++) {
        const outbox = await call(port, 'GET', `/dev/outbox?to=${encodeURIComponent(phone)}`);
        const messages = (JSON.parse(outbox.body) as { messages: { body: string }[] }).messages;
        code = messages.at(-1)?.body.match(/\d{6}/)?.[0];
      }
      expect(code).toBeDefined();
      const checked = await call(port, 'POST', '/verify-phone-code', {
        phone,
        code,
        verificationId,
      });
      expect(checked.status).toBe(200);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Some code was checked by another worker than the one that sent codes: both took part.
    const senders = answeringPids(verifyd.output(), '/verify-phone');
    const checkers = answeringPids(verifyd.output(), '/verify-phone-code');
    expect(new Set([...senders, ...checkers])).toEqual(pids);
    expect([...checkers].some((pid) => [...senders].some((sender) => sender !== pid))).toBe(true);

    // Whichever worker takes the scrape, the counts are both workers' together.
    for (let i = 0; i < 2; i++) {
      const scrape = await call(port, 'GET', '/metrics', undefined, TOKEN);
      expect(scrape.status).toBe(200);
      const sent = scrape.body.match(/^verifyd_sends_total\{[^}]*outcome="sent"[^}]*\} (\d+)$/m);
      expect(Number(sent?.[1])).toBe(numbers.length);
      const approved = scrape.body.match(
        /^verifyd_approvals_total\{channel="sms",country="US"\} (\d+)$/m,
      );
      expect(Number(approved?.[1])).toBe(numbers.length);
    }

    verifyd.signal('SIGTERM');
    expect(await verifyd.exited).toEqual({ code: 0, signal: null });
    const stopped = verifyd
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"stopped"'));
    // Both workers and the primary.
    expect(stopped).toHaveLength(3);
  }, 90_000);

  it('is refused with the memory store, naming the setting', async () => {
    await expect(startVerifyd({ NODE_ENV: 'test', WORKERS: '2' })).rejects.toThrow(
      /Invalid WORKERS \(got "2"\): the memory store lives in one process/,
    );
  });
});
