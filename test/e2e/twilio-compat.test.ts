/**
 * "Replacing Twilio Verify", as an app would do it: the README's app code, exactly as printed,
 * run with the official SDK against the built server process in mock mode. The app signs a user
 * up; its CI reads the code from GET /dev/outbox.
 */
import vm from 'node:vm';
import twilio from 'twilio';
import { lastCode } from '../support/e2e-client';
import { firstBlock } from '../support/readme';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const ACCOUNT_SID = 'ACfedcba9876543210fedcba9876543210';
const AUTH_TOKEN = 'e2e-compat-token-0123456789abcdef0123456789';
const PHONE = '+15555550177';

let verifyd: VerifydProcess | undefined;

beforeAll(async () => {
  verifyd = await startVerifyd((port) => ({
    NODE_ENV: 'test',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    TWILIO_COMPAT: 'on',
    TWILIO_COMPAT_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_COMPAT_AUTH_TOKEN: AUTH_TOKEN,
  }));
}, 30_000);

afterAll(async () => {
  await verifyd?.stop();
});

/** The README's block, run as a module of the app would run, with the app's environment. */
function readmeApp(env: Record<string, string>) {
  const code = firstBlock('## Replacing Twilio Verify (Twilio Verify compatible API)', ['js']);
  const context = { require, process: { env } };
  vm.runInNewContext(code, context);
  return context as unknown as {
    startSignup(phone: string): Promise<void>;
    finishSignup(phone: string, code: string): Promise<boolean>;
  };
}

it('signs a user up with the README app code, unchanged but for its client construction', async () => {
  const url = verifyd?.url ?? '';
  // The one-off setup the README mentions, with the SDK.
  const admin = twilio(ACCOUNT_SID, AUTH_TOKEN);
  admin.verify.baseUrl = url;
  const service = await admin.verify.v2.services.create({ friendlyName: 'Acme' });

  const app = readmeApp({
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    VERIFYD_URL: url,
    VERIFY_SERVICE_SID: service.sid,
  });
  await app.startSignup(PHONE);
  const code = await lastCode(url, PHONE);
  const wrong = code === '000000' ? '111111' : '000000';
  expect(await app.finishSignup(PHONE, wrong)).toBe(false);
  expect(await app.finishSignup(PHONE, code)).toBe(true);
  // Approved, then gone: the same code does not sign anybody up again.
  await expect(app.finishSignup(PHONE, code)).rejects.toMatchObject({ status: 404, code: 20404 });
});
