import request from 'supertest';
import { buildConfig } from '../../src/config';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import {
  describeMemcached,
  describeRedis,
  SHARED_MEMCACHED,
  SHARED_REDIS_URL,
  uniquePrefix,
} from '../support/servers';
import { aheadClock, codesOf, gbMobile, pumpingApp, tally } from './support';

/**
 * The defences on the shared backends, with two app instances (two workers) sharing one store
 * and one clock: the caps hold over both, and what one worker learns the other acts on.
 */
function sharedStoreSuite(label: string, env: Record<string, string>) {
  let stores: Store[] = [];
  afterEach(async () => {
    await Promise.all(stores.map((store) => store.close()));
    stores = [];
  });

  async function twoWorkers(extra: Record<string, string>) {
    const config = buildConfig({ ...env, KEY_PREFIX: uniquePrefix(`pumping-${label}`) });
    const store = await createStore(config);
    stores.push(store);
    const clock = aheadClock();
    const options = {
      clock,
      store,
      // Workers of one deployment share their secrets (each start would otherwise draw its own).
      env: {
        ...env,
        OTP_SECRET: 'pumping-test-otp-secret-of-32-bytes-or-more',
        JWT_SECRET: 'pumping-test-jwt-secret-of-32-bytes-or-more',
        STORE_TIMEOUT_MS: '10000',
        ...extra,
      },
    };
    return [pumpingApp(options), pumpingApp(options)] as const;
  }

  it('a burst of 40 numbers in one prefix over two workers reaches the provider 10 times', async () => {
    const [a, b] = await twoWorkers({});
    const burst = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).send(gbMobile(3, i))),
    );
    expect(tally(codesOf(burst))).toEqual({ sent: 10, prefix_blocked: 30 });
    expect(a.sms.calls.length + b.sms.calls.length).toBe(10);
  });

  it('a burst of 30 to one country over two workers passes the refuse cap by none', async () => {
    const [a, b] = await twoWorkers({
      SMS_COUNTRY_HOURLY_LIMIT: '4',
      SMS_COUNTRY_REFUSE_FACTOR: '2',
    });
    const burst = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).send(gbMobile(i, 1))),
    );
    expect(tally(codesOf(burst))).toEqual({ sent: 8, country_limit_reached: 22 });
  });

  it('a conversion escalation one worker raises, the other enforces; an approval on one counts on both', async () => {
    const [a, b] = await twoWorkers({
      BOT_PROTECTION: 'pow',
      CHALLENGE_MAX_NUMBER: '1000',
      SMS_CONVERSION_MIN_SAMPLE: '10',
    });
    const sent = await a.send(gbMobile(1, 1)).expect(202);
    // Approved on the other worker: a's record is found there.
    const code = /\d{6}/.exec(a.sms.calls[0]?.body ?? '')?.[0];
    await request(b.app)
      .post('/verify-phone-code')
      .send({ phone: gbMobile(1, 1), code, verificationId: sent.body.verificationId })
      .expect(200);
    // Nobody enters the next codes. 1 of 10 has an upper bound of 0.40, above the 0.3 floor;
    // 1 of 15 has 0.298, below it.
    for (let i = 0; i < 9; i++) await a.send(gbMobile(10 + i, 1)).expect(202);
    for (let i = 0; i < 5; i++) await b.send(gbMobile(30 + i, 1)).expect(202);
    const [fromA, fromB] = [await a.send(gbMobile(40, 1)), await b.send(gbMobile(41, 1))];
    expect([fromA.body.error?.code, fromB.body.error?.code]).toEqual([
      'challenge_required',
      'challenge_required',
    ]);
  });
}

describeRedis('pumping defences on Redis', () => {
  sharedStoreSuite('redis', { STORE: 'redis', REDIS_URL: SHARED_REDIS_URL });
});

describeMemcached('pumping defences on Memcached', () => {
  sharedStoreSuite('memcached', { STORE: 'memcached', MEMCACHED_SERVERS: SHARED_MEMCACHED });
});
