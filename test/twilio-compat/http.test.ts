import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildTestApp } from '../support/app';
import { ACCOUNT_SID, AUTH_TOKEN } from './support';

/**
 * What the SDK never sends but a hand-written client might: every such request gets Twilio's
 * error shape with the right status, never a 500 and never the native shape.
 */

const auth = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;

function compatApp(env: Record<string, string> = {}) {
  return buildTestApp({
    env: {
      TWILIO_COMPAT: 'on',
      TWILIO_COMPAT_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_COMPAT_AUTH_TOKEN: AUTH_TOKEN,
      ...env,
    },
  }).app;
}

const twilioError = (code: number, status: number) => ({
  code,
  status,
  message: expect.any(String),
  more_info: `https://www.twilio.com/docs/errors/${code}`,
});

/** A new service on `app`, created as the SDK does; answers its sid. */
async function createService(app: ReturnType<typeof compatApp>): Promise<string> {
  const service = await request(app)
    .post('/v2/Services')
    .set('authorization', auth)
    .type('form')
    .send({ FriendlyName: 'Acme' });
  return service.body.sid as string;
}

describe('Twilio-compatible API over plain HTTP', () => {
  it('is not there unless TWILIO_COMPAT=on', async () => {
    const res = await request(buildTestApp().app).get('/v2/Services').set('authorization', auth);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('asks for credentials with 401 20003 and a Basic challenge', async () => {
    for (const header of [
      undefined,
      'Bearer x',
      'Basic !!!',
      `Basic ${Buffer.from(ACCOUNT_SID).toString('base64')}`,
    ]) {
      const req = request(compatApp()).get('/v2/Services');
      const res = await (header === undefined ? req : req.set('authorization', header));
      expect(res.status).toBe(401);
      expect(res.body).toEqual(twilioError(20003, 401));
      expect(res.headers['www-authenticate']).toBe('Basic realm="Twilio API"');
    }
  });

  it('answers a POST without a body as missing parameters, on every endpoint that takes a form', async () => {
    const app = compatApp();
    const sid = await createService(app);
    // Creating needs parameters; an update without any changes nothing, as Twilio's does.
    const cases: Array<[string, number]> = [
      ['/v2/Services', 400],
      [`/v2/Services/${sid}`, 200],
      [`/v2/Services/${sid}/Verifications`, 400],
      [`/v2/Services/${sid}/VerificationCheck`, 400],
      [`/v2/Services/${sid}/Verifications/VE00000000000000000000000000000000`, 400],
    ];
    for (const [path, status] of cases) {
      const res = await request(app).post(path).set('authorization', auth);
      expect({ path, status: res.status }).toEqual({ path, status });
      if (status === 400) expect(res.body).toEqual(twilioError(60200, 400));
    }
  });

  it('refuses a chunked body that is not a form with 415, as one with a length', async () => {
    const server = compatApp().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/v2/Services',
            headers: { authorization: auth, 'content-type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.on('data', (chunk) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        // No Content-Length: Node sends the body chunked.
        req.write('{"FriendlyName":');
        req.end('"Acme"}');
      });
      expect(answer.status).toBe(415);
      expect(JSON.parse(answer.body)).toEqual(twilioError(60200, 415));
    } finally {
      server.close();
    }
  });

  it('answers bad bodies and parameters in Twilio shape', async () => {
    const app = compatApp();
    const json = await request(app)
      .post('/v2/Services')
      .set('authorization', auth)
      .send({ FriendlyName: 'Acme' });
    expect(json.status).toBe(415);
    expect(json.body).toEqual(twilioError(60200, 415));

    const missing = await request(app)
      .post('/v2/Services')
      .set('authorization', auth)
      .type('form')
      .send({});
    expect(missing.body).toEqual(twilioError(60200, 400));
    expect(missing.body.message).toContain('FriendlyName');

    const flag = await request(app)
      .post('/v2/Services')
      .set('authorization', auth)
      .type('form')
      .send({ FriendlyName: 'Acme', CustomCodeEnabled: 'yes' });
    expect(flag.body).toEqual(twilioError(60200, 400));
    expect(flag.body.message).toContain('CustomCodeEnabled');

    const tooLarge = await request(app)
      .post('/v2/Services')
      .set('authorization', auth)
      .type('form')
      .send({ FriendlyName: 'x'.repeat(20_000) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toEqual(twilioError(60200, 413));

    const unknown = await request(app).get('/v2/Nope').set('authorization', auth);
    expect(unknown.body).toEqual(twilioError(20404, 404));
    const badSid = await request(app).get('/v2/Services/VA123').set('authorization', auth);
    expect(badSid.body).toEqual(twilioError(20404, 404));
    // A sid that is not even valid percent-encoding names nothing either; no body was involved.
    const undecodable = await request(app).get('/v2/Services/%').set('authorization', auth);
    expect(undecodable.body).toEqual(twilioError(20404, 404));
  });

  it('checks need To or VerificationSid, and a code of the right form', async () => {
    const app = compatApp();
    const sid = await createService(app);
    const path = `/v2/Services/${sid}/VerificationCheck`;
    const neither = await request(app)
      .post(path)
      .set('authorization', auth)
      .type('form')
      .send({ Code: '123456' });
    expect(neither.body).toEqual(twilioError(60200, 400));
    await request(app)
      .post(`/v2/Services/${sid}/Verifications`)
      .set('authorization', auth)
      .type('form')
      .send({ To: '+15555550123', Channel: 'sms' });
    const letters = await request(app)
      .post(path)
      .set('authorization', auth)
      .type('form')
      .send({ Code: 'abcdef', To: '+15555550123' });
    expect(letters.body).toEqual(twilioError(60200, 400));
    expect(letters.body.message).toContain('Code');
  });
});
