import twilio from 'twilio';
import { RedisStore } from '../../src/store/redis';
import type { Store } from '../../src/store/types';
import { lastCode } from '../support/app';
import { describeRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/servers';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  type CompatServer,
  clientFor,
  specProblems,
  startCompatServer,
} from './support';

/**
 * The official twilio SDK, unchanged but for the Verify domain's base URL, against a running
 * verifyd: every endpoint and every error of the Twilio-compatible API, on the memory store and on
 * Redis. Every exchange the SDK made is held to Twilio's OpenAPI description at the end.
 */

const PHONE = '+15555550123';
const OTHER_PHONE = '+15555550124';

/** The RestException the SDK rejected with, for its code and status. */
async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(twilio.RestException);
    const e = error as InstanceType<typeof twilio.RestException>;
    return { status: e.status, code: e.code, message: e.message, moreInfo: e.moreInfo };
  }
  throw new Error('expected the SDK to reject');
}

function wrongCode(code: string): string {
  return code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
}

function suite(name: string, makeStore: (() => Promise<Store>) | undefined) {
  describe(`Twilio-compatible API through the twilio SDK (${name})`, () => {
    let server: CompatServer;
    const start = async (env: Record<string, string> = {}) => {
      const store = await makeStore?.();
      server = await startCompatServer({ env, ...(store ? { store } : {}) });
      return server;
    };
    afterEach(async () => {
      // Every request the SDK made, and every answer, as Twilio's description has them.
      const problems = server.exchanges.flatMap((exchange) =>
        specProblems(exchange).map((p) => `${exchange.method} ${exchange.url}: ${p}`),
      );
      await server.close();
      expect(problems).toEqual([]);
    });

    it('runs an app-style signup: service, send, wrong code, right code, then the verification is gone', async () => {
      const { client, app, base } = await start();
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      expect(service.sid).toMatch(/^VA[0-9a-f]{32}$/);
      expect(service.accountSid).toBe(ACCOUNT_SID);
      expect(service.url).toBe(`${base}/v2/Services/${service.sid}`);
      expect(service.codeLength).toBe(6);

      const sent = await client.verify.v2
        .services(service.sid)
        .verifications.create({ to: PHONE, channel: 'sms' });
      expect(sent).toMatchObject({
        status: 'pending',
        valid: false,
        to: PHONE,
        channel: 'sms',
        serviceSid: service.sid,
        accountSid: ACCOUNT_SID,
      });
      expect(sent.sid).toMatch(/^VE[0-9a-f]{32}$/);
      expect(sent.url).toBe(`${base}/v2/Services/${service.sid}/Verifications/${sent.sid}`);
      expect(sent.sendCodeAttempts).toHaveLength(1);
      // The code is read from /dev/outbox, as an app's CI reads it.
      const outbox = await fetch(`${base}/dev/outbox?to=${encodeURIComponent(PHONE)}`);
      const { messages } = (await outbox.json()) as { messages: { body: string }[] };
      expect(messages).toHaveLength(1);
      expect(messages[0]?.body).toMatch(/^Your Acme verification code is: \d{6}\.$/);
      const code = messages[0]?.body.match(/\d{6}/)?.[0] ?? '';
      expect(code).toBe(lastCode(app.outbox, PHONE));

      const wrong = await client.verify.v2
        .services(service.sid)
        .verificationChecks.create({ to: PHONE, code: wrongCode(code) });
      expect(wrong).toMatchObject({ status: 'pending', valid: false, sid: sent.sid });

      const right = await client.verify.v2
        .services(service.sid)
        .verificationChecks.create({ to: PHONE, code });
      expect(right).toMatchObject({ status: 'approved', valid: true, sid: sent.sid, to: PHONE });

      // Approved means gone: no second check, no fetch.
      const again = await failure(
        client.verify.v2.services(service.sid).verificationChecks.create({ to: PHONE, code }),
      );
      expect(again).toMatchObject({ status: 404, code: 20404 });
      expect(again.moreInfo).toBe('https://www.twilio.com/docs/errors/20404');
      const fetched = await failure(
        client.verify.v2.services(service.sid).verifications(sent.sid).fetch(),
      );
      expect(fetched).toMatchObject({ status: 404, code: 20404 });
    });

    it('joins a pending verification on a second create: same VE sid, one more send attempt, earlier code still valid', async () => {
      const { client, app } = await start();
      const service = await client.verify.v2.services.create({
        friendlyName: 'Acme',
        codeLength: 8,
      });
      const verifications = client.verify.v2.services(service.sid).verifications;
      const first = await verifications.create({ to: PHONE, channel: 'sms' });
      const firstCode = lastCode(app.outbox, PHONE);
      expect(firstCode).toHaveLength(8);
      const second = await verifications.create({ to: PHONE, channel: 'sms' });
      expect(second.sid).toBe(first.sid);
      expect(second.sendCodeAttempts).toHaveLength(2);
      const fetched = await client.verify.v2.services(service.sid).verifications(first.sid).fetch();
      expect(fetched.sendCodeAttempts).toHaveLength(2);
      // verifyd keeps earlier codes of the verification valid (see README).
      const check = await client.verify.v2
        .services(service.sid)
        .verificationChecks.create({ verificationSid: first.sid, code: firstCode });
      expect(check).toMatchObject({ status: 'approved', valid: true });
    });

    it('answers max_attempts_reached on the last allowed miss, then 429 60202; the verification is gone for fetch', async () => {
      const { client, app } = await start({ OTP_MAX_ATTEMPTS: '3' });
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      const sent = await client.verify.v2
        .services(service.sid)
        .verifications.create({ to: PHONE, channel: 'sms' });
      const code = lastCode(app.outbox, PHONE);
      const checks = client.verify.v2.services(service.sid).verificationChecks;
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await checks.create({ to: PHONE, code: wrongCode(code) })).status);
      }
      expect(statuses).toEqual(['pending', 'pending', 'max_attempts_reached']);
      // Even the right code: the verification's attempts are spent.
      const maxed = await failure(checks.create({ verificationSid: sent.sid, code }));
      expect(maxed).toMatchObject({ status: 429, code: 60202 });
      const fetched = await failure(
        client.verify.v2.services(service.sid).verifications(sent.sid).fetch(),
      );
      expect(fetched).toMatchObject({ status: 404, code: 20404 });
    });

    it('a burst of wrong checks compares at most OTP_MAX_ATTEMPTS codes', async () => {
      const { client, app } = await start({ OTP_MAX_ATTEMPTS: '3' });
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      await client.verify.v2
        .services(service.sid)
        .verifications.create({ to: PHONE, channel: 'sms' });
      const code = lastCode(app.outbox, PHONE);
      const checks = client.verify.v2.services(service.sid).verificationChecks;
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, () => checks.create({ to: PHONE, code: wrongCode(code) })),
      );
      const answered = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      expect(answered).toHaveLength(3);
      for (const r of refused) expect((r.reason as { code: number }).code).toBe(60202);
    });

    it('cancels and approves by hand; either way the verification is gone', async () => {
      const { client, app } = await start();
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      const verifications = client.verify.v2.services(service.sid).verifications;
      const sent = await verifications.create({ to: PHONE, channel: 'sms' });
      const code = lastCode(app.outbox, PHONE);
      const canceled = await client.verify.v2
        .services(service.sid)
        .verifications(sent.sid)
        .update({ status: 'canceled' });
      expect(canceled).toMatchObject({ sid: sent.sid, status: 'canceled', valid: false });
      const check = await failure(
        client.verify.v2.services(service.sid).verificationChecks.create({ to: PHONE, code }),
      );
      expect(check).toMatchObject({ status: 404, code: 20404 });

      const other = await verifications.create({ to: OTHER_PHONE, channel: 'sms' });
      const approved = await client.verify.v2
        .services(service.sid)
        .verifications(other.sid)
        .update({ status: 'approved' });
      expect(approved).toMatchObject({ status: 'approved', valid: true });
      const twice = await failure(
        client.verify.v2
          .services(service.sid)
          .verifications(other.sid)
          .update({ status: 'canceled' }),
      );
      expect(twice).toMatchObject({ status: 404, code: 20404 });
    });

    it('takes a CustomCode only where the service allows it (60204 elsewhere)', async () => {
      const { client } = await start();
      const plain = await client.verify.v2.services.create({ friendlyName: 'Plain' });
      const refused = await failure(
        client.verify.v2
          .services(plain.sid)
          .verifications.create({ to: PHONE, channel: 'sms', customCode: '123456' }),
      );
      expect(refused).toMatchObject({ code: 60204 });
      const custom = await client.verify.v2.services.create({
        friendlyName: 'Custom',
        customCodeEnabled: true,
      });
      expect(custom.customCodeEnabled).toBe(true);
      const short = await failure(
        client.verify.v2
          .services(custom.sid)
          .verifications.create({ to: PHONE, channel: 'sms', customCode: '4242' }),
      );
      expect(short).toMatchObject({ status: 400, code: 60200 });
      expect(short.message).toContain('CustomCode');
      await client.verify.v2
        .services(custom.sid)
        .verifications.create({ to: PHONE, channel: 'sms', customCode: '424242' });
      const check = await client.verify.v2
        .services(custom.sid)
        .verificationChecks.create({ to: PHONE, code: '424242' });
      expect(check.status).toBe('approved');
    });

    it('sends a code by email and checks it by To', async () => {
      const { client, app } = await start();
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      const sent = await client.verify.v2
        .services(service.sid)
        .verifications.create({ to: 'Ada@Example.org', channel: 'email' });
      expect(sent).toMatchObject({ channel: 'email', to: 'ada@example.org', status: 'pending' });
      const mail = app.outbox.list({ to: 'ada@example.org' }).at(-1);
      const code = mail?.body.match(/\d{6}/)?.[0] ?? '';
      expect(code).toHaveLength(6);
      const check = await client.verify.v2
        .services(service.sid)
        .verificationChecks.create({ to: 'ada@example.org', code });
      expect(check).toMatchObject({ status: 'approved', valid: true, channel: 'email' });
    });

    it('keeps services: fetch, update, list with paging the SDK follows, delete', async () => {
      const { client, base } = await start();
      const created = [];
      for (let i = 0; i < 5; i++) {
        created.push(await client.verify.v2.services.create({ friendlyName: `Service ${i}` }));
      }
      const updated = await client.verify.v2.services(created[0]?.sid ?? '').update({
        friendlyName: 'Renamed',
        doNotShareWarningEnabled: true,
      });
      expect(updated).toMatchObject({ friendlyName: 'Renamed', doNotShareWarningEnabled: true });
      expect((await client.verify.v2.services(created[0]?.sid ?? '').fetch()).friendlyName).toBe(
        'Renamed',
      );

      const page = await client.verify.v2.services.page({ pageSize: 2 });
      expect(page.instances).toHaveLength(2);
      expect(page.nextPageUrl).toBe(`${base}/v2/Services?PageSize=2&Page=1`);
      // list() follows next_page_url as given until there is none.
      const all = await client.verify.v2.services.list({ pageSize: 2 });
      expect(all.map((s) => s.sid)).toEqual(created.map((s) => s.sid));

      expect(await client.verify.v2.services(created[1]?.sid ?? '').remove()).toBe(true);
      const gone = await failure(client.verify.v2.services(created[1]?.sid ?? '').fetch());
      expect(gone).toMatchObject({ status: 404, code: 20404 });
      expect((await client.verify.v2.services.list()).map((s) => s.sid)).toHaveLength(4);
    });

    it('refuses a wrong credential with 401 20003', async () => {
      const { base } = await start();
      for (const client of [
        clientFor(base, ACCOUNT_SID, `${AUTH_TOKEN}x`),
        clientFor(base, 'AC0123456789abcdef0123456789abcdee', AUTH_TOKEN),
      ]) {
        const refused = await failure(client.verify.v2.services.list());
        expect(refused).toMatchObject({ status: 401, code: 20003 });
      }
    });

    it('names the invalid parameter (60200) and refuses an unknown service (20404)', async () => {
      const { client } = await start();
      const badLength = await failure(
        client.verify.v2.services.create({ friendlyName: 'Acme', codeLength: 11 }),
      );
      expect(badLength).toMatchObject({ status: 400, code: 60200 });
      expect(badLength.message).toContain('CodeLength');
      const service = await client.verify.v2.services.create({ friendlyName: 'Acme' });
      const badTo = await failure(
        client.verify.v2.services(service.sid).verifications.create({ to: '12', channel: 'sms' }),
      );
      expect(badTo).toMatchObject({ status: 400, code: 60200 });
      expect(badTo.message).toContain('To');
      const badChannel = await failure(
        client.verify.v2.services(service.sid).verifications.create({ to: PHONE, channel: 'call' }),
      );
      expect(badChannel).toMatchObject({ status: 400, code: 60200 });
      expect(badChannel.message).toContain('Channel');
      const unknown = await failure(
        client.verify.v2
          .services('VA00000000000000000000000000000000')
          .verifications.create({ to: PHONE, channel: 'sms' }),
      );
      expect(unknown).toMatchObject({ status: 404, code: 20404 });
    });
  });
}

suite('memory', undefined);
describeRedis('on Redis', () => {
  // A generous timeout: the machine is shared, and this suite is about the API, not outages.
  suite('redis', async () => {
    const store = new RedisStore({
      url: SHARED_REDIS_URL,
      keyPrefix: uniquePrefix('twc'),
      timeoutMs: 5000,
    });
    await store.waitUntilReady(5000);
    return store;
  });
});
