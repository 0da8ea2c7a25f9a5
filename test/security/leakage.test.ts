import request from 'supertest';
import { StoreUnavailableError, VerifydError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, lastCode, lastToken } from '../support/app';

const PHONE = '+15551234567';
const EMAIL = 'leak@example.com';

describe('no leakage', () => {
  it('full flows at trace level log no code, token or proof, and responses carry no code or token', async () => {
    const logLines: string[] = [];
    const { app, outbox } = buildTestApp({ logLines });
    const responses: string[] = [];
    const keep = (res: request.Response) => {
      responses.push(JSON.stringify(res.body), JSON.stringify(res.headers));
      return res;
    };
    keep(await request(app).post('/verify-phone').send({ phone: PHONE }));
    const code = lastCode(outbox, PHONE);
    keep(
      await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: '000000' === code ? '111111' : '000000' }),
    );
    const ok = keep(await request(app).post('/verify-phone-code').send({ phone: PHONE, code }));
    keep(await request(app).post('/verify-email').send({ email: EMAIL }));
    const token = lastToken(outbox, EMAIL);
    keep(
      await request(app)
        .get(`/verify-email-token?token=${token}`)
        .set('authorization', 'Bearer secret-header'),
    );
    const confirmed = keep(await request(app).post('/verify-email-token').send({ token }));
    keep(await request(app).post('/verify-email-token').send({ token }));
    keep(await request(app).post('/resend-verification').send({ phone: PHONE }));
    const resent = lastCode(outbox, PHONE);

    expect(logLines.length).toBeGreaterThan(8);
    const log = logLines.join('\n');
    for (const secret of [
      code,
      resent,
      token,
      ok.body.proof,
      confirmed.body.proof,
      'secret-header',
    ]) {
      expect(log).not.toContain(secret);
    }
    // The responses that are not the confirm page never echo a code or token.
    const bodies = responses.join('\n');
    for (const secret of [code, resent, token]) expect(bodies).not.toContain(secret);
  });

  it('5xx bodies carry no stack trace or internals', async () => {
    const store = new MemoryStore();
    store.increment = async () => {
      throw new TypeError('boom at /srv/verifyd/src/store/internal.ts:42');
    };
    const { app } = buildTestApp({ store });
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({
      error: { code: 'internal_error', message: 'Something went wrong on our side.' },
    });
    expect(res.text).not.toMatch(/boom|at |\.ts/);
  });

  it('a store outage is a 503 with only the public message', async () => {
    const store = new MemoryStore();
    store.increment = async () => {
      throw new StoreUnavailableError('redis', new Error('connect ECONNREFUSED 10.1.2.3:6379'));
    };
    const { app } = buildTestApp({ store });
    const res = await request(app).post('/verify-phone').send({ phone: PHONE });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('store_unavailable');
    expect(res.text).not.toContain('ECONNREFUSED');
    expect(new VerifydError('store_unavailable', 'x').status).toBe(503);
  });
});

describe('log redaction', () => {
  it('keeps error codes an operator needs (ECONNREFUSED, ERR_…) and still hides a code field', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void lines.push(line) },
    });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
      code: 'ECONNREFUSED',
    });
    logger.warn({ err: refused }, 'store unreachable');
    logger.warn({ cause: { code: 'ERR_SOCKET_CLOSED' } }, 'socket');
    logger.info({ check: { code: '424242' }, code: '135790' }, 'a code that must not show');
    const [store, socket, leak] = lines.map((line) => JSON.parse(line));
    expect(store.err.code).toBe('ECONNREFUSED');
    expect(socket.cause.code).toBe('ERR_SOCKET_CLOSED');
    expect(leak.check.code).toBe('[redacted]');
    expect(leak.code).toBe('[redacted]');
    expect(lines.join('\n')).not.toMatch(/424242|135790/);
  });
});
