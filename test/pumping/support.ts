import request from 'supertest';
import type { PumpingSignal } from '../../services/pumping';
import type { Store } from '../../src/store/types';
import { solveAltcha } from '../support/altcha-solver';
import { buildTestApp, countingSms, FakeClock } from '../support/app';

/** The defences on (the mock provider alone would leave them off), behind one trusted proxy. */
export const PUMPING_ENV = { SMS_PUMPING_DEFENCES: 'on', TRUST_PROXY: '1' };

/** A GB mobile number: `block` picks the prefix (+447400<block>), `n` the last three digits. */
export const gbMobile = (block: number, n: number) =>
  `+447400${String(block).padStart(3, '0')}${String(n).padStart(3, '0')}`;

/** A US number (fixed line or mobile, as NANP numbers are typed). */
export const usNumber = (n: number) => `+1212555${String(n).padStart(4, '0')}`;

/**
 * A clock at the start of the next real hour: windows start on the hour, so Retry-After is
 * exact, and never behind real time, which altcha-lib checks a challenge's expiry against.
 */
export function aheadClock(): FakeClock {
  const hour = 3_600_000;
  return new FakeClock(Math.ceil((Date.now() + 1) / hour) * hour);
}

export interface PumpingAppOptions {
  env?: Record<string, string>;
  clock?: FakeClock;
  store?: Store;
  logLines?: string[];
}

/**
 * The assembled app with the defences on, an SMS provider that counts its calls, and helpers
 * that send from a new client address each time, so the per-client limits and the adaptive
 * bot-protection allowance stay out of the way of the defence under test.
 */
export function pumpingApp(options: PumpingAppOptions = {}) {
  const clock = options.clock ?? aheadClock();
  const sms = countingSms();
  const signals: PumpingSignal[] = [];
  const built = buildTestApp({
    clock,
    sms: sms.provider,
    env: { ...PUMPING_ENV, ...options.env },
    ...(options.store ? { store: options.store } : {}),
    ...(options.logLines ? { logLines: options.logLines } : {}),
    onPumpingSignal: (event) => signals.push(event),
  });
  let clients = 0;
  const nextClient = () => {
    clients++;
    return `198.51.${(clients >> 8) & 0xff}.${clients & 0xff}`;
  };

  const send = (phone: string, extra: object = {}, client = nextClient()) =>
    request(built.app)
      .post('/verify-phone')
      .set('X-Forwarded-For', client)
      .send({ phone, ...extra });

  /** A send that carries a solved proof-of-work payload. */
  const sendWithProof = async (phone: string) => {
    const client = nextClient();
    const challenge = await request(built.app)
      .get('/challenge')
      .set('X-Forwarded-For', client)
      .expect(200);
    return send(phone, { altcha: await solveAltcha(challenge.body) }, client);
  };

  /** Enters the code the provider was last handed for `phone`, with its verification id. */
  const approve = async (phone: string, verificationId: string) => {
    const body = sms.calls.filter((call) => call.to === phone).at(-1)?.body ?? '';
    const code = /\d{6}/.exec(body)?.[0];
    if (!code) throw new Error(`no code sent to ${phone}`);
    await request(built.app)
      .post('/verify-phone-code')
      .set('X-Forwarded-For', nextClient())
      .send({ phone, code, verificationId })
      .expect(200);
  };

  return { ...built, clock, sms, signals, send, sendWithProof, approve };
}

export const codesOf = (responses: { status: number; body: { error?: { code: string } } }[]) =>
  responses.map((r) => (r.status === 202 ? 'sent' : (r.body.error?.code ?? String(r.status))));

/** How many times each answer occurs, e.g. { sent: 10, prefix_blocked: 20 }. */
export function tally(codes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const code of codes) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
}
