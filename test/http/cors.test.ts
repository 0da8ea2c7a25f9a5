/**
 * CORS_ORIGINS: browsers on the listed origins (exact match) may call the API, without
 * credentials; everybody else gets no CORS headers, so their pages cannot read an answer. None by
 * default.
 */
import request from 'supertest';
import { buildConfig } from '../../src/config';
import { MemoryStore } from '../../src/store/memory';
import type { Store } from '../../src/store/types';
import { buildTestApp } from '../support/app';

const ALLOWED = 'https://app.example.com';
const env = { CORS_ORIGINS: `${ALLOWED},http://localhost:5173` };

function preflight(app: Parameters<typeof request>[0], origin: string) {
  return request(app)
    .options('/verify-phone')
    .set('Origin', origin)
    .set('Access-Control-Request-Method', 'POST')
    .set('Access-Control-Request-Headers', 'content-type');
}

describe('CORS', () => {
  it('allows no origin by default', async () => {
    const { app } = buildTestApp();
    const answer = await preflight(app, ALLOWED);
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    const sent = await request(app)
      .post('/verify-phone')
      .set('Origin', ALLOWED)
      .send({ phone: '+15551238000' })
      .expect(202);
    expect(sent.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers a preflight from a listed origin, without credentials and without a store call', async () => {
    const inner = new MemoryStore({ keyPrefix: 'cors:' });
    const calls: string[] = [];
    const store = new Proxy(inner, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(property));
          return value.apply(target, args);
        };
      },
    }) as Store;
    const { app } = buildTestApp({ env, store });
    const answer = await preflight(app, ALLOWED).expect(204);
    expect(answer.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(answer.headers['access-control-allow-methods']).toContain('POST');
    expect(answer.headers['access-control-allow-headers']).toBe('Content-Type');
    expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    expect(answer.headers.vary).toContain('Origin');
    expect(calls).toEqual([]);
    await inner.close();
  });

  it('lets a listed origin read answers, Retry-After included', async () => {
    const { app } = buildTestApp({ env: { ...env, SEND_COOLDOWN_SECONDS: '30' } });
    const sent = await request(app)
      .post('/verify-phone')
      .set('Origin', 'http://localhost:5173')
      .send({ phone: '+15551238001' })
      .expect(202);
    expect(sent.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(sent.headers['access-control-allow-credentials']).toBeUndefined();
    const refused = await request(app)
      .post('/verify-phone')
      .set('Origin', ALLOWED)
      .send({ phone: '+15551238001' })
      .expect(429);
    expect(refused.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(refused.headers['access-control-expose-headers']).toContain('Retry-After');
  });

  it.each([
    'https://evil.example',
    'https://app.example.com.evil.example',
    'http://app.example.com',
    'https://APP.example.com',
    'null',
  ])('gives %s no CORS headers', async (origin) => {
    const { app } = buildTestApp({ env });
    expect((await preflight(app, origin)).headers['access-control-allow-origin']).toBeUndefined();
    const sent = await request(app)
      .post('/verify-phone')
      .set('Origin', origin)
      .send({ phone: '+15551238002' });
    expect(sent.headers['access-control-allow-origin']).toBeUndefined();
    expect(sent.headers.vary).toContain('Origin');
  });

  it.each(['*', 'https://app.example.com/', 'https://app.example.com/path', 'app.example.com'])(
    'refuses CORS_ORIGINS=%s at start',
    (value) => {
      expect(() => buildConfig({ CORS_ORIGINS: value })).toThrow(/Invalid CORS_ORIGINS/);
    },
  );
});
