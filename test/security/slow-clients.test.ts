/**
 * Slowloris: a client that sends its request a few bytes at a time holds a connection (and a file
 * descriptor, and Node's per-connection state) for as long as the server waits. Node waits 60 s
 * for headers and 300 s for a whole request, and looks only every 30 s; verifyd sets its own
 * limits, and these tests set small ones to see each enforced on a real socket.
 */
import net from 'node:net';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { type RunningServer, startServer } from '../../src/server';

const HEADERS_MS = 500;
const REQUEST_MS = 1000;
const KEEP_ALIVE_MS = 300;
/** Node sweeps every quarter of the shorter timeout (see src/server.ts), plus scheduling slack. */
const SLACK_MS = HEADERS_MS / 4 + 400;
/** How long a test waits for the server to hang up before it calls the connection held. */
const GIVE_UP_MS = 5000;
const BURST = 20;

let running: RunningServer;
let port: number;

beforeAll(async () => {
  running = await startServer(
    loadConfig({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
      HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
    }),
    createLogger({ level: 'silent' }),
  );
  port = (running.server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await running?.close();
});

interface Held {
  /** Milliseconds from connecting until the server closed the connection, or undefined. */
  closedAfterMs: number | undefined;
  /** Everything the server wrote. */
  received: string;
}

/**
 * Connects, writes `first`, then `drip` every 100 ms, until the server closes the connection or
 * GIVE_UP_MS pass.
 */
function hold(first: string, drip: string | undefined): Promise<Held> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const started = performance.now();
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs: closed ? performance.now() - started : undefined, received });
    };
    const giveUp = setTimeout(() => finish(false), GIVE_UP_MS);
    socket.on('connect', () => {
      socket.write(first);
      if (drip !== undefined) {
        timer = setInterval(() => {
          if (!socket.destroyed) socket.write(drip);
        }, 100);
      }
    });
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

describe('slow clients', () => {
  it(`cuts ${BURST} clients that trickle their headers after HTTP_HEADERS_TIMEOUT_MS`, async () => {
    const held = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        hold(`POST /verify-phone HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-${i}: a`, 'a'),
      ),
    );
    for (const { closedAfterMs, received } of held) {
      expect(closedAfterMs).toBeDefined();
      expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
      expect(closedAfterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      expect(bodyOf(received)).toEqual({
        error: { code: 'request_timeout', message: expect.any(String) },
      });
    }
  });

  it('cuts a client that connects and sends nothing', async () => {
    const { closedAfterMs } = await hold('', undefined);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });

  it(`cuts ${BURST} clients that trickle their body after HTTP_REQUEST_TIMEOUT_MS`, async () => {
    const held = await Promise.all(
      Array.from({ length: BURST }, () =>
        hold(
          'POST /verify-phone HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
            'Content-Length: 5000\r\n\r\n{"phone":"',
          '1',
        ),
      ),
    );
    for (const { closedAfterMs, received } of held) {
      expect(closedAfterMs).toBeDefined();
      expect(closedAfterMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
      expect(closedAfterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    }
  });

  it('closes an idle keep-alive connection after HTTP_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const { closedAfterMs, received } = await hold(
      'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n',
      undefined,
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeGreaterThanOrEqual(KEEP_ALIVE_MS);
    // Node 20 waits a second beyond keepAliveTimeout before it closes (measured: 300 ms → 1.3 s).
    expect(closedAfterMs).toBeLessThan(KEEP_ALIVE_MS + 1000 + SLACK_MS);
  });

  it('serves a normal request on the same server', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
  });
});

/** The JSON body of a raw HTTP answer. */
function bodyOf(received: string): unknown {
  return JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
}

describe("requests Node's HTTP layer refuses before any route", () => {
  it.each([
    [
      'malformed',
      'POST /verify-phone HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      400,
      'invalid_request',
    ],
    ['not HTTP at all', 'HELLO\r\n\r\n', 400, 'invalid_request'],
    [
      'with 20 kB of headers',
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'headers_too_large',
    ],
    [
      'with an Expect it does not know',
      'POST /verify-phone HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}',
      417,
      'expectation_failed',
    ],
  ])('answers a request %s with a JSON error', async (_label, raw, status, code) => {
    const { received } = await hold(raw, undefined);
    expect(received).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(received).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
    expect(bodyOf(received)).toEqual({ error: { code, message: expect.any(String) } });
  });
});
