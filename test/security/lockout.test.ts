import request from 'supertest';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, FakeClock, lastCode } from '../support/app';

/**
 * The tester's findings: 11 requests from anywhere locked any number out of sending and checking
 * for an hour, five probes killed the owner's live code, and the check answered a stranger whether
 * a code was pending and how many attempts it had left. A check that presents the send's
 * verificationId is now judged on that verification alone.
 */
const OWNER = '+15551234567';
const ENV = { TARGET_MAX_FAILURES: '10', OTP_MAX_ATTEMPTS: '5' };
const HOUR = 3600_000;

type App = Parameters<typeof request>[0];

/** A code of the same length that is not `code`. */
const wrongFor = (code: string, i = 0) =>
  String((Number(code) + 1 + i) % 10 ** code.length).padStart(code.length, '0');

async function send(app: App, phone = OWNER): Promise<string> {
  const res = await request(app).post('/verify-phone').send({ phone });
  expect(res.status).toBe(202);
  return res.body.verificationId;
}

/** `count` simultaneous wrong guesses by number alone, as anybody who knows it can make. */
const strangerBurst = (app: App, code: string, count: number) =>
  Promise.all(
    Array.from({ length: count }, (_, i) =>
      request(app)
        .post('/verify-phone-code')
        .send({ phone: OWNER, code: wrongFor(code, i) }),
    ),
  );

const compared = (answers: request.Response[]) =>
  answers.filter((a) => a.status === 200 || a.body.error?.code === 'invalid_code').length;

describe('a stranger cannot lock an owner out', () => {
  it("11 recipient-only guesses lock recipient-only checks, not the owner's check with its id", async () => {
    const { app, outbox } = buildTestApp({ env: ENV });
    const verificationId = await send(app);
    const code = lastCode(outbox, OWNER);
    await strangerBurst(app, code, 11);
    const byNumber = await request(app).post('/verify-phone-code').send({ phone: OWNER, code });
    expect(byNumber.body.error.code).toBe('too_many_attempts');
    const owner = await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code, verificationId });
    expect(owner.status).toBe(200);
  });

  it("five probes do not kill the owner's live code", async () => {
    const { app, outbox } = buildTestApp({ env: ENV });
    const verificationId = await send(app);
    const code = lastCode(outbox, OWNER);
    await strangerBurst(app, code, 5);
    // Dead for checks by number alone...
    const probe = await request(app).post('/verify-phone-code').send({ phone: OWNER, code });
    expect(probe.body.error.code).toBe('too_many_attempts');
    // ...alive, with all of its own attempts, for the id.
    const miss = await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code: wrongFor(code), verificationId });
    expect(miss.body.error).toMatchObject({ code: 'invalid_code', attemptsRemaining: 4 });
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code, verificationId })
      .expect(200);
  });

  it("a stranger's failed guesses never block the owner's new sends", async () => {
    const { app, outbox } = buildTestApp({ env: ENV });
    await send(app);
    await strangerBurst(app, lastCode(outbox, OWNER), 30);
    const verificationId = await send(app);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code: lastCode(outbox, OWNER), verificationId })
      .expect(200);
  });

  it('a wrong verificationId finds no code, counts nothing and says nothing', async () => {
    const { app, outbox } = buildTestApp({ env: ENV });
    const verificationId = await send(app);
    const code = lastCode(outbox, OWNER);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(app)
          .post('/verify-phone-code')
          .send({
            phone: OWNER,
            code: i === 0 ? code : wrongFor(code, i),
            verificationId: `x${i}`,
          }),
      ),
    );
    const bodies = new Set(answers.map((a) => JSON.stringify([a.status, a.body])));
    expect([...bodies]).toEqual([
      JSON.stringify([
        400,
        {
          error: {
            code: 'code_expired',
            message: 'There is no pending code for this verification; request a new one.',
          },
        },
      ]),
    ]);
    const miss = await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code: wrongFor(code), verificationId });
    expect(miss.body.error.attemptsRemaining).toBe(4);
  });

  it('answers a verificationId of at least 128 bits and stores it only hashed', async () => {
    const store = new MemoryStore({ keyPrefix: 'vid:' });
    const written: string[] = [];
    const original = store.admit.bind(store);
    jest.spyOn(store, 'admit').mockImplementation((admission) => {
      written.push(JSON.stringify(admission));
      return original(admission);
    });
    const { app } = buildTestApp({ store, env: ENV });
    const ids = new Set<string>();
    // Twenty verifications (a resend to one number would join its verification and keep its id).
    for (let i = 0; i < 20; i++) ids.add(await send(app, `+1555555${String(1000 + i)}`));
    expect(ids.size).toBe(20);
    for (const id of ids) {
      expect(Buffer.from(id, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
      expect(written.join('\n')).not.toContain(id);
    }
  });
});

describe("the attacker's guess budget per recipient per day", () => {
  // A day of attack: every hour the attacker asks for fresh codes and fires bursts at them.
  async function day(
    hourly: (app: App, outbox: ReturnType<typeof buildTestApp>['outbox']) => Promise<number>,
  ) {
    const clock = new FakeClock();
    const { app, outbox } = buildTestApp({ clock, env: ENV });
    let total = 0;
    for (let hour = 0; hour < 24; hour++) {
      if (hour > 0) clock.advance(HOUR);
      total += await hourly(app, outbox);
    }
    return { app, outbox, total };
  }

  it('by number alone: at most TARGET_MAX_FAILURES an hour and 100 a day', async () => {
    const { total } = await day(async (app, outbox) => {
      let hour = 0;
      // Two codes an hour: the per-code limit (5) would otherwise stop the attacker first.
      for (let round = 0; round < 2; round++) {
        await request(app).post('/verify-phone').send({ phone: OWNER });
        hour += compared(await strangerBurst(app, lastCode(outbox, OWNER), 8));
      }
      expect(hour).toBeLessThanOrEqual(10);
      return hour;
    });
    if (process.env.VERIFYD_MEASURE)
      console.log('recipient path, guesses compared in a day:', total);
    expect(total).toBe(100);
  }, 60_000);

  it('with verification ids of its own sends: 100 a day, and then no path compares anything', async () => {
    const { app, outbox, total } = await day(async (app, outbox) => {
      let hour = 0;
      for (let round = 0; round < 5; round++) {
        const sent = await request(app).post('/verify-phone').send({ phone: OWNER });
        const verificationId = sent.body.verificationId;
        const code = lastCode(outbox, OWNER);
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            request(app)
              .post('/verify-phone-code')
              .send({ phone: OWNER, code: wrongFor(code, i), verificationId }),
          ),
        );
        hour += compared(answers);
      }
      return hour;
    });
    if (process.env.VERIFYD_MEASURE) console.log('id path, guesses compared in a day:', total);
    expect(total).toBe(100);
    // The daily bound holds on every path, the owner's id included, until the day ends.
    const verificationId = await send(app);
    const owner = await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code: lastCode(outbox, OWNER), verificationId });
    expect(owner.body.error.code).toBe('too_many_attempts');
  }, 60_000);
});

describe('CHECK_BY_RECIPIENT=false', () => {
  it('refuses every check without a verificationId alike, revealing nothing', async () => {
    const { app, outbox } = buildTestApp({ env: { ...ENV, CHECK_BY_RECIPIENT: 'false' } });
    const verificationId = await send(app);
    const code = lastCode(outbox, OWNER);
    const probes = [
      { phone: OWNER, code },
      { phone: OWNER, code: wrongFor(code) },
      { phone: '+15557654321', code },
    ];
    const answers = [];
    for (const probe of probes) {
      const res = await request(app).post('/verify-phone-code').send(probe);
      answers.push(JSON.stringify([res.status, res.body]));
    }
    expect(new Set(answers).size).toBe(1);
    expect(JSON.parse(answers[0] as string)).toEqual([
      400,
      {
        error: {
          code: 'invalid_request',
          message: 'Invalid request: verificationId is required.',
          field: 'verificationId',
        },
      },
    ]);
    // The probes used nothing up: the code has its five attempts and works with its id.
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: OWNER, code, verificationId })
      .expect(200);
  });
});
