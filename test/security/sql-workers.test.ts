/**
 * Single use across worker processes: two verifyd servers, each its own process started as
 * `npm start` starts it, sharing one PostgreSQL schema or one SQLite file. A code sent through one
 * is checked 100 times at once through both; exactly one check succeeds.
 */
import { randomBytes } from 'node:crypto';
import { lastCode, lastMessage, postJson } from '../support/e2e-client';
import { uniquePrefix } from '../support/servers';
import { describePostgres, describeSqlite, sqliteTestPath, testDatabaseUrl } from '../support/sql';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const PHONE = '+15551234567';
const EMAIL = 'workers@example.com';

function workersSuite(storeEnv: () => Record<string, string>) {
  let a: VerifydProcess;
  let b: VerifydProcess;

  beforeAll(async () => {
    const env = {
      NODE_ENV: 'test',
      ...storeEnv(),
      KEY_PREFIX: uniquePrefix('workers'),
      OTP_SECRET: randomBytes(32).toString('hex'),
      JWT_SECRET: randomBytes(32).toString('hex'),
      // The race is the point, not the deadline or the per-client limit: 100 checks come from
      // one address, on a machine busy with two servers and the burst.
      STORE_TIMEOUT_MS: '15000',
      RATE_LIMIT_MAX: '100000',
      SEND_COOLDOWN_SECONDS: '30',
    };
    [a, b] = await Promise.all([startVerifyd(env), startVerifyd(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('100 concurrent checks of the right code across two processes: exactly 1 succeeds', async () => {
    expect((await postJson(`${a.url}/verify-phone`, { phone: PHONE })).status).toBe(202);
    const code = await lastCode(a.url, PHONE);
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        postJson(`${(i % 2 ? a : b).url}/verify-phone-code`, { phone: PHONE, code }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });

  it('100 concurrent uses of one email link across two processes: exactly 1 succeeds', async () => {
    expect((await postJson(`${b.url}/verify-email`, { email: EMAIL })).status).toBe(202);
    const token = /token=([\w.-]+)/.exec((await lastMessage(b.url, EMAIL)).body)?.[1];
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        postJson(`${(i % 2 ? a : b).url}/verify-email-token`, { token }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });

  it('shares the send cooldown between the processes', async () => {
    const phone = '+15557654321';
    expect((await postJson(`${a.url}/verify-phone`, { phone })).status).toBe(202);
    expect((await postJson(`${b.url}/verify-phone`, { phone })).status).toBe(429);
  });
}

describePostgres('two worker processes on PostgreSQL', () => {
  workersSuite(() => ({ STORE: 'postgres', DATABASE_URL: testDatabaseUrl() }));
});

describeSqlite('two worker processes on one SQLite file', () => {
  workersSuite(() => ({ STORE: 'sqlite', SQLITE_PATH: sqliteTestPath('workers') }));
});
