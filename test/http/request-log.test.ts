import { once } from 'node:events';
import { createServer } from 'node:http';
import request from 'supertest';
import { StoreUnavailableError } from '../../src/errors';
import type { DeliveryReceipt, SmsProvider } from '../../src/providers/types';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp, type TestAppOptions } from '../support/app';

const PHONE = '+15555550100';

interface LogLine {
  level: number;
  msg: string;
  req: { id: number; method: string; path: string };
  res: { statusCode: number };
  responseTime: number;
}

/** The assembled app, its log captured at `level`. */
function appLoggingAt(level: string, options: Omit<TestAppOptions, 'env' | 'logLines'> = {}) {
  const raw: string[] = [];
  const { app } = buildTestApp({ ...options, env: { LOG_LEVEL: level }, logLines: raw });
  // The request log's own lines; the app writes others too (deliveries, store warnings).
  const lines = (): LogLine[] =>
    raw
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line.msg === 'request completed' || line.msg === 'request aborted');
  return { app, raw, lines };
}

/**
 * A memory store that can be taken down: once `down` is set, every call fails the way a backend
 * that cannot be reached does, and the app answers 503 store_unavailable.
 */
function storeThatGoesDown(): { store: Store; takeDown: () => void } {
  const memory = new MemoryStore({ keyPrefix: 'test:' });
  let down = false;
  const store = new Proxy(memory, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'close') return value;
      return (...args: unknown[]) =>
        down
          ? Promise.reject(new StoreUnavailableError('test', new Error('connection refused')))
          : value.apply(target, args);
    },
  });
  return {
    store,
    takeDown: () => {
      down = true;
    },
  };
}

/** An SMS provider whose send never settles on its own, so the client gives up first. */
function hangingSms() {
  let called!: () => void;
  const sending = new Promise<void>((resolve) => {
    called = resolve;
  });
  let release: (receipt: DeliveryReceipt) => void = () => {};
  const sms: SmsProvider = {
    name: 'hanging',
    send: () => {
      called();
      return new Promise((resolve) => {
        release = resolve;
      });
    },
  };
  return { sms, sending, release: () => release({ id: 'late' }) };
}

/** Waits for something the server does after the client has gone, for at most a second. */
async function eventually(condition: () => boolean): Promise<void> {
  for (let waited = 0; waited < 1000 && !condition(); waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('request log', () => {
  it('writes one line per request with method, path without the query, status and duration', async () => {
    const { app, raw, lines } = appLoggingAt('debug');
    await request(app).get('/health?token=secret-token-value').expect(200);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({
      level: 20,
      msg: 'request completed',
      req: { id: 1, method: 'GET', path: '/health' },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
    expect(raw.join('\n')).not.toContain('secret-token-value');
  });

  it('never writes the query string, also when the request fails', async () => {
    const { store, takeDown } = storeThatGoesDown();
    const { app, raw, lines } = appLoggingAt('trace', { store });
    await request(app).get('/no-such-route?token=secret-on-a-404').expect(404);
    takeDown();
    await request(app)
      .post('/verify-phone?token=secret-on-a-503')
      .send({ phone: PHONE })
      .expect(503);
    expect(lines().map((line) => line.req.path)).toEqual(['/no-such-route', '/verify-phone']);
    const log = raw.join('\n');
    expect(log).not.toContain('secret-on-a-404');
    expect(log).not.toContain('secret-on-a-503');
  });

  it('logs 2xx at debug, 4xx at info and 5xx at error', async () => {
    const { store, takeDown } = storeThatGoesDown();
    const { app, lines } = appLoggingAt('debug', { store });
    await request(app).get('/health').expect(200);
    await request(app).get('/no-such-route').expect(404);
    takeDown();
    const failed = await request(app).post('/verify-phone').send({ phone: PHONE }).expect(503);
    expect(failed.body.error.code).toBe('store_unavailable');
    expect(lines().map((line) => [line.level, line.res.statusCode])).toEqual([
      [20, 200],
      [30, 404],
      [50, 503],
    ]);
    expect(lines().map((line) => line.req.id)).toEqual([1, 2, 3]);
  });

  it('logs a request the client abandoned as a warning', async () => {
    const { sms, sending, release } = hangingSms();
    const { app, lines } = appLoggingAt('warn', { sms });
    // Listening here rather than through supertest, which never closes its own server for a
    // request that was aborted.
    const server = createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const pending = request(server).post('/verify-phone').send({ phone: PHONE });
      // Starts the request; it never settles, since the client aborts it.
      pending.then(
        () => {},
        () => {},
      );
      // The app is inside the send when the client leaves.
      await sending;
      pending.abort();
      await eventually(() => lines().length > 0);
      expect(lines()).toHaveLength(1);
      expect(lines()[0]).toMatchObject({
        level: 40,
        msg: 'request aborted',
        req: { method: 'POST', path: '/verify-phone' },
      });
    } finally {
      // Lets the abandoned send finish, so nothing is left pending when the file ends.
      release();
      server.closeAllConnections();
      server.close();
    }
  });

  it('writes only the lines the configured level lets through', async () => {
    const { store, takeDown } = storeThatGoesDown();
    const { app, lines } = appLoggingAt('warn', { store });
    await request(app).get('/health').expect(200);
    await request(app).get('/no-such-route').expect(404);
    takeDown();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(503);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({ level: 50, res: { statusCode: 503 } });
  });
});
