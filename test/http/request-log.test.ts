import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import request from 'supertest';
import { requestLog } from '../../src/http/request-log';

function appLoggingAt(level: string) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = express();
  app.use(requestLog(pino({ level }, destination)));
  app.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/missing', (_req, res) => {
    res.status(404).json({});
  });
  app.get('/broken', (_req, res) => {
    res.status(503).json({});
  });
  app.get('/never', () => {
    // Never answers, so the client gives up first.
  });
  return { app, lines };
}

describe('request log', () => {
  it('writes one line per request with method, path without the query, status and duration', async () => {
    const { app, lines } = appLoggingAt('debug');
    await request(app).get('/ok?token=secret-token-value');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 20,
      msg: 'request completed',
      req: { id: 1, method: 'GET', path: '/ok' },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
    expect(JSON.stringify(lines)).not.toContain('secret-token-value');
  });

  it('logs 2xx at debug, 4xx at info and 5xx at error', async () => {
    const { app, lines } = appLoggingAt('debug');
    await request(app).get('/ok');
    await request(app).get('/missing');
    await request(app).get('/broken');
    expect(
      lines.map((line) => [line.level, (line.res as { statusCode: number }).statusCode]),
    ).toEqual([
      [20, 200],
      [30, 404],
      [50, 503],
    ]);
    expect(lines.map((line) => (line.req as { id: number }).id)).toEqual([1, 2, 3]);
  });

  it('logs a request the client abandoned as a warning', async () => {
    const { app, lines } = appLoggingAt('warn');
    await expect(request(app).get('/never').timeout(100)).rejects.toThrow();
    for (let i = 0; i < 50 && lines.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'request aborted', req: { path: '/never' } });
  });

  it('writes only the lines the configured level lets through', async () => {
    const { app, lines } = appLoggingAt('warn');
    await request(app).get('/ok');
    await request(app).get('/missing');
    await request(app).get('/broken');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, res: { statusCode: 503 } });
  });
});
