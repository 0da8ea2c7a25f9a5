import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { hmac } from '../../src/crypto';
import { buildTestApp, FakeClock, lastCode, lastToken } from '../support/app';

const EMAIL = 'jwt@example.com';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function issued(clock = new FakeClock()) {
  // login is allowed so that a forged login token gets as far as the store.
  const test = buildTestApp({ clock, env: { PURPOSES: 'verification,login' } });
  await request(test.app).post('/verify-email').send({ email: EMAIL });
  const token = lastToken(test.outbox, EMAIL);
  const payload = jwt.decode(token) as jwt.JwtPayload;
  // The email-link key derives from JWT_SECRET; tests use it to forge tokens the service would sign.
  const linkKey = hmac(test.config.JWT_SECRET, 'email-link-signing-key');
  const confirm = (t: string, body: object = {}) =>
    request(test.app)
      .post('/verify-email-token')
      .send({ token: t, ...body });
  return { ...test, token, payload, linkKey, confirm, clock };
}

describe('email token verification rejects', () => {
  it('alg "none"', async () => {
    const { payload, confirm } = await issued();
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    expect((await confirm(unsigned)).body.error.code).toBe('invalid_token');
  });

  it('HS/RS confusion: an RS256 token, and an HS256 token keyed with a public key', async () => {
    const { payload, confirm } = await issued();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs = jwt.sign(payload, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      algorithm: 'RS256',
    });
    expect((await confirm(rs)).body.error.code).toBe('invalid_token');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const confused = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
    const signature = require('node:crypto')
      .createHmac('sha256', pem)
      .update(confused)
      .digest('base64url');
    expect((await confirm(`${confused}.${signature}`)).body.error.code).toBe('invalid_token');
  });

  it('a tampered payload', async () => {
    const { token, payload, confirm } = await issued();
    const [header, , signature] = token.split('.');
    const tampered = `${header}.${b64({ ...payload, sub: 'attacker@example.com' })}.${signature}`;
    expect((await confirm(tampered)).body.error.code).toBe('invalid_token');
  });

  it('a wrong aud, iss or purpose even when correctly signed', async () => {
    const { payload, linkKey, confirm } = await issued();
    for (const change of [{ aud: 'verifyd:proof' }, { iss: 'someone-else' }]) {
      const forged = jwt.sign({ ...payload, ...change }, linkKey, { algorithm: 'HS256' });
      expect((await confirm(forged)).body.error.code).toBe('invalid_token');
    }
    const otherPurpose = jwt.sign({ ...payload, purpose: 'login' }, linkKey, {
      algorithm: 'HS256',
    });
    // Verifies default to purpose "verification", like sends.
    expect((await confirm(otherPurpose)).body.error.code).toBe('invalid_token');
    // Asking for the forged purpose passes the claim check, but the store entry is keyed by
    // purpose, so the jti finds nothing to use.
    expect((await confirm(otherPurpose, { purpose: 'login' })).body.error.code).toBe('token_used');
  });

  it('an expired token', async () => {
    const { token, confirm, clock } = await issued();
    clock.advance(10 * 60_000 + 1000);
    expect((await confirm(token)).body.error.code).toBe('token_expired');
  });

  it('a replay of a re-encoded token: single use keys on jti, not on the string', async () => {
    const { token, payload, linkKey, confirm } = await issued();
    await confirm(token).expect(200);
    // Same claims and jti, different bytes: another header, keys in another order.
    const reordered = Object.fromEntries(Object.entries(payload).reverse());
    const reencoded = jwt.sign(reordered, linkKey, {
      algorithm: 'HS256',
      header: { alg: 'HS256', typ: 'JWT', kid: 'x' } as jwt.JwtHeader,
    });
    expect(reencoded).not.toBe(token);
    const replay = await confirm(reencoded);
    expect(replay.body.error.code).toBe('token_used');
  });
});

describe('token kinds do not cross', () => {
  it('a proof is not accepted as an email token, nor an email token as a proof', async () => {
    const test = buildTestApp();
    await request(test.app).post('/verify-phone').send({ phone: '+15551234567' });
    const proof = (
      await request(test.app)
        .post('/verify-phone-code')
        .send({ phone: '+15551234567', code: lastCode(test.outbox, '+15551234567') })
    ).body.proof as string;
    const asEmail = await request(test.app).post('/verify-email-token').send({ token: proof });
    expect(asEmail.body.error.code).toBe('invalid_token');

    await request(test.app).post('/verify-email').send({ email: EMAIL });
    const emailToken = lastToken(test.outbox, EMAIL);
    const options = {
      algorithms: ['HS256' as const],
      audience: test.config.PROOF_AUDIENCE,
      issuer: test.config.JWT_ISSUER,
    };
    expect(() => jwt.verify(emailToken, test.config.JWT_SECRET, options)).toThrow();
    expect(() => jwt.verify(proof, test.config.JWT_SECRET, options)).not.toThrow();
  });
});
