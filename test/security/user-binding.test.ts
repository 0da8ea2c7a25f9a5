import jwt from 'jsonwebtoken';
import request from 'supertest';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, lastCode, lastToken } from '../support/app';

/**
 * The tester's finding: the proof named whichever userId the CHECK gave (sent with alice,
 * checked with mallory, proof says mallory). The proof must name the user the code was sent for.
 */
const PHONE = '+15551234567';
const EMAIL = 'bound@example.com';

const claims = (proof: string) => jwt.decode(proof) as jwt.JwtPayload;

describe('a code is bound to the userId of its send', () => {
  it('refuses a check that names another user, and uses the code up', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE, userId: 'alice' }).expect(202);
    const code = lastCode(outbox, PHONE);
    const mallory = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code, userId: 'mallory' });
    expect(mallory.status).toBe(403);
    expect(mallory.body.error.code).toBe('user_mismatch');
    expect(mallory.body.proof).toBeUndefined();
    // A code delivered for alice's verification, presented for mallory, is not redeemed later.
    const again = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code, userId: 'alice' });
    expect(again.body.error.code).toBe('code_expired');
  });

  it("puts the send's userId in the proof, whether or not the check repeats it", async () => {
    const { app, outbox } = buildTestApp();
    for (const checkUser of [undefined, 'alice']) {
      await request(app).post('/verify-phone').send({ phone: PHONE, userId: 'alice' }).expect(202);
      const res = await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: lastCode(outbox, PHONE), userId: checkUser });
      expect(res.status).toBe(200);
      expect(claims(res.body.proof).userId).toBe('alice');
    }
  });

  it('refuses a userId at the check when the send named none', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const res = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE), userId: 'mallory' });
    expect(res.body.error.code).toBe('user_mismatch');
  });

  it('stores the userId sealed: nothing handed to the store holds it', async () => {
    const store = new MemoryStore({ keyPrefix: 'seal:' });
    const written: string[] = [];
    for (const method of ['admit', 'set', 'setIfAbsent'] as const) {
      const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
      jest.spyOn(store, method).mockImplementation(((...args: unknown[]) => {
        written.push(JSON.stringify(args));
        return original(...args);
      }) as never);
    }
    const { app, outbox } = buildTestApp({ store });
    const userId = 'user-4711-alice@example.org';
    await request(app).post('/verify-phone').send({ phone: PHONE, userId }).expect(202);
    expect(written.join('\n')).not.toContain(userId);
    expect(written.join('\n')).not.toContain('4711');
    const res = await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: lastCode(outbox, PHONE) });
    expect(claims(res.body.proof).userId).toBe(userId);
  });
});

describe('an email link is bound to the userId of its send', () => {
  it("refuses a confirmation that names another user, leaving the link usable; the proof names the send's user", async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL, userId: 'alice' }).expect(202);
    const token = lastToken(outbox, EMAIL);
    const mallory = await request(app)
      .post('/verify-email-token')
      .send({ token, userId: 'mallory' });
    expect(mallory.status).toBe(403);
    expect(mallory.body.error.code).toBe('user_mismatch');
    const ok = await request(app).post('/verify-email-token').send({ token });
    expect(ok.status).toBe(200);
    expect(claims(ok.body.proof).userId).toBe('alice');
  });
});
