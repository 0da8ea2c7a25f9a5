/**
 * The SMS pumping simulation: people and attackers against the assembled app (createApp, the
 * composition the server runs) listening on a loopback port, with a real store and an injected
 * clock. Events run one at a time in time order, so a run is deterministic for its seed on the
 * memory store: the clock jumps to each event, nothing sleeps, and 24 hours take minutes.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import type { AltchaChallenge } from '../services/pow-challenge';
import type { PumpingSignal } from '../services/pumping';
import { cryptoRandom } from '../services/runtime';
import { createApp } from '../src/app';
import { buildConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createMockEmailProvider, Outbox } from '../src/providers/mock';
import type { SmsProvider } from '../src/providers/types';
import { createStore } from '../src/store';
import { MemoryStore } from '../src/store/memory';
import type { Store } from '../src/store/types';
import {
  ipv4,
  ipv6Household,
  ipv6In48,
  isValidNumber,
  ownedRange,
  personalNumber,
  premiumNumbers,
  Rng,
} from './population';

type AltchaLib = typeof import('altcha-lib', { with: { 'resolution-mode': 'import' }});
type DeriveKey = Parameters<AltchaLib['solveChallenge']>[0]['deriveKey'];
const altcha: AltchaLib = require('altcha-lib');
const { deriveKey }: { deriveKey: DeriveKey } = require('altcha-lib/algorithms/sha');

/** Where people come from: ISO code and weight. The last four are the attacked countries. */
export const PEOPLE_COUNTRIES: readonly [string, number][] = [
  ['US', 25],
  ['IN', 12],
  ['GB', 8],
  ['BR', 7],
  ['DE', 6],
  ['FR', 5],
  ['MX', 4],
  ['ID', 4],
  ['NG', 3],
  ['PH', 3],
  ['ES', 3],
  ['IT', 3],
  ['CA', 3],
  ['JP', 2],
  ['KR', 2],
  ['TR', 2],
  ['PL', 2],
  ['NL', 2],
  ['AU', 2],
  ['ZA', 2],
  ['EG', 1],
  ['AR', 1],
  ['CO', 1],
  ['VN', 1],
  ['TH', 1],
  ['SE', 1],
  ['PK', 1],
  ['KE', 1],
  ['UZ', 0.2],
  ['KG', 0.2],
  ['TJ', 0.2],
  ['LK', 0.2],
];

/** Countries whose ranges the botnet walks, and the one the slow attacker sprays. */
export const WALKED_COUNTRIES = ['UZ', 'KG', 'TJ'] as const;
export const SLOW_ATTACK_COUNTRY = 'LK';

/** Share of people by hour of day (UTC for simplicity): low at night, highest in the evening. */
const DAY_CURVE = [
  0.3, 0.2, 0.15, 0.15, 0.2, 0.35, 0.6, 0.85, 1, 1.1, 1.15, 1.2, 1.2, 1.2, 1.2, 1.25, 1.3, 1.4, 1.5,
  1.5, 1.4, 1.1, 0.8, 0.5,
];

export interface SimulationOptions {
  /** Simulated hours (24). */
  hours: number;
  /** Hour of the day the run starts at (0). */
  startHour: number;
  /** People starting a verification per day, spread by DAY_CURVE (3,000). */
  peoplePerDay: number;
  /** Multiplies every attacker's rate (1). */
  attackScale: number;
  /**
   * Every attacker pays for every proof it is asked for (false: only the slow attacker does; the
   * botnet gives a number up when asked, as cheap bots do).
   */
  botsSolve?: boolean;
  seed: number;
  store: 'memory' | 'redis';
  redisUrl?: string;
  /** Settings on top of the defaults the simulation runs with (see SIMULATION_ENV). */
  env?: Record<string, string>;
  /** Called as each simulated hour ends. */
  onHour?: (row: HourRow) => void;
}

/**
 * The configuration the simulation runs with: every default, plus what a production deployment
 * sets (bot protection with the recommended adaptive policy, the defences on, one proxy in
 * front), plus the two that make it fast: the lowest proof-of-work difficulty (a solve is a few
 * milliseconds instead of seconds; who is asked for a proof does not change) and the mock SMS
 * provider, whose deliveries the simulation counts.
 */
export const SIMULATION_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  SMS_PUMPING_DEFENCES: 'on',
  BOT_PROTECTION: 'pow',
  BOT_PROTECTION_MODE: 'adaptive',
  CHALLENGE_MAX_NUMBER: '1000',
  TRUST_PROXY: '1',
  MOCK_OUTBOX_SIZE: '1',
};

export interface HourRow {
  hour: number;
  /** SMS the attackers asked for: what a service without defences would have sent them. */
  attackerWanted: number;
  /** SMS the provider was handed for attacker numbers. */
  attackerSent: number;
  people: number;
  /** People asked for a proof at least once (by any defence, adaptive bot protection included). */
  peopleChallenged: number;
  /** People who never got a code because a limit or defence refused them. */
  peopleRefused: number;
  peopleVerified: number;
}

export interface Totals extends Omit<HourRow, 'hour'> {
  /** Share of the attackers' wanted SMS that were not sent. */
  stopped: number;
  challengedShare: number;
  refusedShare: number;
}

export interface SimulationResult {
  hours: HourRow[];
  total: Totals;
  /** Hours 2 onwards: the defences have had an hour to learn. */
  afterFirstHour: Totals;
  /** What stopped the attackers' sends, by answer. */
  attackerStops: Record<string, number>;
  /** What stopped people, by answer (refusals and proofs asked for). */
  peopleStops: Record<string, number>;
  /** Signals the defences raised, by signal and action, e.g. "prefix_velocity blocked". */
  signals: Record<string, number>;
  /** Countries escalated for their conversion rate (at either level), with how often. */
  escalatedCountries: Record<string, number>;
  /** People asked for a proof, and people refused, by country; `shared` counts NAT addresses. */
  challengedBy: Record<string, number>;
  refusedBy: Record<string, number>;
  /** The most SMS people were sent to one country within one hour. */
  peoplePeakCountryHour: number;
  requests: number;
  elapsedMs: number;
}

interface Answer {
  status: number;
  code: string;
  body: Record<string, unknown>;
  retryAfter: number;
}

/** A binary heap of events by time; ties keep insertion order, so runs are deterministic. */
class EventQueue {
  private heap: { at: number; seq: number; run: () => Promise<void> }[] = [];
  private seq = 0;
  get size() {
    return this.heap.length;
  }
  push(at: number, run: () => Promise<void>) {
    const item = { at, seq: this.seq++, run };
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(heap[parent]!, item)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }
  peek() {
    return this.heap[0];
  }
  pop() {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (before(last, heap[child]!)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

const before = (a: { at: number; seq: number }, b: { at: number; seq: number }) =>
  a.at < b.at || (a.at === b.at && a.seq < b.seq);

/**
 * Moves Redis's own clock along with the simulated one: every key under the run's prefix has
 * its TTL shortened by the simulated time gone by (and is deleted when that passes it), at least
 * every 30 simulated seconds. Redis keeps time by the wall clock, which hardly moves while a
 * simulated day goes by, so without this an hourly window would never end. Only this run's keys
 * are touched (its prefix is unique).
 */
const SHIFT_SCRIPT = `
local cursor = '0'
local shift = tonumber(ARGV[2])
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local ttl = redis.call('PTTL', key)
    if ttl > 0 then
      if ttl <= shift then redis.call('DEL', key) else redis.call('PEXPIRE', key, ttl - shift) end
    end
  end
until cursor == '0'
return 0`;

export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  const started = performance.now();
  const rng = new Rng(options.seed);
  const HOUR = 3_600_000;
  // The next midnight (UTC) after now: the simulated clock is then never behind the real one,
  // which altcha-lib checks a challenge's expiry against.
  const midnight = Math.ceil((Date.now() + 1) / (24 * HOUR)) * 24 * HOUR;
  const start = midnight + options.startHour * HOUR;
  const end = start + options.hours * HOUR;
  let now = start;
  const clock = { now: () => now };

  const keyPrefix = `verifyd-sim:${randomUUID().slice(0, 8)}:`;
  const config = buildConfig({
    ...SIMULATION_ENV,
    KEY_PREFIX: keyPrefix,
    ...(options.store === 'redis'
      ? { STORE: 'redis', REDIS_URL: options.redisUrl ?? 'redis://127.0.0.1:6379' }
      : {}),
    ...options.env,
  });
  const store: Store =
    options.store === 'redis'
      ? await createStore(config)
      : new MemoryStore({ keyPrefix, now: clock.now });
  const redis =
    options.store === 'redis'
      ? await createClient({ url: options.redisUrl ?? 'redis://127.0.0.1:6379' }).connect()
      : undefined;
  let shiftedTo = start;
  const advanceStoreClock = async (to: number) => {
    if (!redis || to - shiftedTo < 30_000) return;
    // Whole milliseconds: PEXPIRE takes an integer.
    const shift = Math.floor(to - shiftedTo);
    await redis.eval(SHIFT_SCRIPT, { arguments: [`${keyPrefix}*`, String(shift)] });
    shiftedTo += shift;
  };

  // What the provider is handed: the code each number last got, and whose number it is.
  const attackerNumbers = new Set<string>();
  const lastCode = new Map<string, string>();
  const rows: HourRow[] = [];
  const row = (at: number): HourRow => {
    const hour = Math.floor((at - start) / HOUR);
    while (rows.length <= hour) {
      rows.push({
        hour: rows.length + 1,
        attackerWanted: 0,
        attackerSent: 0,
        people: 0,
        peopleChallenged: 0,
        peopleRefused: 0,
        peopleVerified: 0,
      });
    }
    return rows[hour]!;
  };
  const sms: SmsProvider = {
    name: 'simulation',
    async send(message) {
      const code = /\d{4,10}/.exec(message.body)?.[0];
      if (code) lastCode.set(message.to, code);
      if (attackerNumbers.has(message.to)) row(now).attackerSent++;
      return {};
    },
  };
  const signals: Record<string, number> = {};
  const escalatedCountries: Record<string, number> = {};
  const challengedBy: Record<string, number> = {};
  const refusedBy: Record<string, number> = {};
  const peopleCountryHour = new Map<string, number>();
  const logger = createLogger({ level: 'silent' });
  const app = createApp({
    config,
    store,
    logger,
    sms,
    email: createMockEmailProvider(new Outbox(1), logger),
    clock,
    random: cryptoRandom,
    publicUrl: 'http://verifyd.simulation',
    onPumpingSignal: (event: PumpingSignal) => {
      const name = `${event.signal} ${event.action}`;
      signals[name] = (signals[name] ?? 0) + 1;
      if (name === 'conversion escalated') {
        escalatedCountries[event.country] = (escalatedCountries[event.country] ?? 0) + 1;
      }
    },
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // One kept-alive connection: requests go one at a time, in simulated-time order.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  let requests = 0;
  const call = async (
    method: 'GET' | 'POST',
    path: string,
    client: string,
    body?: object,
  ): Promise<Answer> => {
    requests++;
    const payload = body ? JSON.stringify(body) : undefined;
    const { status, text, retryAfter } = await new Promise<{
      status: number;
      text: string;
      retryAfter: number;
    }>((resolve, reject) => {
      const req = http.request(
        `${base}${path}`,
        {
          method,
          agent,
          headers: {
            'x-forwarded-for': client,
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString(),
              retryAfter: Number(res.headers['retry-after'] ?? 0),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    const json = JSON.parse(text) as Record<string, unknown>;
    const error = json.error as { code?: string } | undefined;
    return {
      status,
      code: status < 300 ? 'sent' : (error?.code ?? String(status)),
      body: json,
      retryAfter,
    };
  };
  /** A send carrying a freshly solved proof-of-work, as the widget would produce it. */
  const sendWithProof = async (client: string, body: object): Promise<Answer> => {
    const challenge = await call('GET', '/challenge', client);
    if (challenge.status !== 200) return challenge;
    const solution = await altcha.solveChallenge({
      challenge: challenge.body as unknown as AltchaChallenge,
      deriveKey,
    });
    const payload = Buffer.from(JSON.stringify({ challenge: challenge.body, solution })).toString(
      'base64',
    );
    return call('POST', '/verify-phone', client, { ...body, altcha: payload });
  };

  const queue = new EventQueue();
  const at = (time: number, run: () => Promise<void>) => {
    if (time < end) queue.push(time, run);
  };
  const peopleStops: Record<string, number> = {};
  const attackerStops: Record<string, number> = {};
  const count = (tally: Record<string, number>, code: string) => {
    tally[code] = (tally[code] ?? 0) + 1;
  };

  // --- People ---------------------------------------------------------------------------
  const weights = PEOPLE_COUNTRIES.map(([, w]) => w);
  // Carrier-grade NAT: one address in front of many subscribers.
  const sharedAddresses = Array.from({ length: 40 }, () => ipv4(rng));
  const personAddress = () => {
    const draw = rng.next();
    if (draw < 0.05) return rng.pick(sharedAddresses);
    if (draw < 0.2) return ipv6Household(rng);
    return ipv4(rng);
  };

  const person = (startAt: number) => {
    const country = PEOPLE_COUNTRIES[rng.weighted(weights)]![0];
    const phone = personalNumber(rng, country);
    const client = personAddress();
    const shared = sharedAddresses.includes(client);
    const tally = row(startAt);
    tally.people++;
    let challenged = false;
    let codes = 0;
    // What this person will do once a code arrives: most enter it within a minute, some ask for
    // another first, some never do.
    const draw = rng.next();
    const behaviour = draw < 0.8 ? 'enter' : draw < 0.88 ? 'resend' : 'abandon';

    const enter = (verificationId: string) => async () => {
      const code = lastCode.get(phone);
      if (!code) return;
      const answer = await call('POST', '/verify-phone-code', client, {
        phone,
        code,
        verificationId,
      });
      if (answer.status === 200) tally.peopleVerified++;
    };

    const request = async (path: string, tries: number): Promise<void> => {
      let answer = await call('POST', path, client, { phone });
      if (answer.code === 'challenge_required') {
        count(peopleStops, 'challenge_required');
        if (!challenged) {
          challenged = true;
          tally.peopleChallenged++;
          count(challengedBy, shared ? `${country} (shared address)` : country);
        }
        // A person solves the widget's proof in a few seconds of their phone's time.
        answer = await sendWithProof(client, { phone });
      }
      if (answer.status === 202) {
        codes++;
        const key = `${country} ${Math.floor((now - start) / HOUR)}`;
        peopleCountryHour.set(key, (peopleCountryHour.get(key) ?? 0) + 1);
        const verificationId = String(answer.body.verificationId);
        if (behaviour === 'enter' || (behaviour === 'resend' && codes > 1)) {
          at(now + rng.between(10, 60) * 1000, enter(verificationId));
        } else if (behaviour === 'resend') {
          at(now + rng.between(45, 120) * 1000, () => request('/resend-verification', 3));
        }
        return;
      }
      // A cooldown or a short limit: the app shows a countdown and the person tries again.
      if (
        answer.status === 429 &&
        answer.code === 'rate_limited' &&
        tries > 0 &&
        answer.retryAfter <= 120
      ) {
        at(now + (answer.retryAfter + 1) * 1000, () => request(path, tries - 1));
        return;
      }
      count(peopleStops, answer.code);
      if (codes === 0) {
        tally.peopleRefused++;
        count(refusedBy, country);
      }
    };
    return () => request('/verify-phone', 3);
  };

  for (let hour = 0; hour < options.hours; hour++) {
    const perHour = (options.peoplePerDay / 24) * (DAY_CURVE[(options.startHour + hour) % 24] ?? 1);
    let t = start + hour * HOUR + rng.interval(perHour) * 1000;
    while (t < start + (hour + 1) * HOUR) {
      at(t, person(t));
      t += rng.interval(perHour) * 1000;
    }
  }

  // --- Attackers --------------------------------------------------------------------------
  // The botnet: thousands of IPv4 addresses and many addresses inside one IPv6 /48.
  const botnet = [
    ...Array.from({ length: 3000 }, () => ipv4(rng)),
    ...Array.from({ length: 1500 }, () => ipv6In48(rng)),
  ];
  const premium = premiumNumbers(rng, 400);

  interface Stream {
    perHour: number;
    solver: boolean;
    next(): { phone: string; client: string };
    refused?(code: string): void;
  }
  const walker = (country: string): Stream => {
    const range = ownedRange(rng, country);
    let offset = range.start;
    const numberAt = (n: number) =>
      `${range.head}${String(n % 10 ** range.width).padStart(range.width, '0')}`;
    return {
      perHour: 250,
      solver: options.botsSolve === true,
      next() {
        // A careful walker skips what the API would refuse as invalid.
        let phone = numberAt(offset++);
        for (let skip = 0; skip < 50 && !isValidNumber(phone); skip++) phone = numberAt(offset++);
        return { phone, client: rng.pick(botnet) };
      },
      refused(code) {
        // A blocked block of 1,000: go on with the next one.
        if (code === 'prefix_blocked') offset = (Math.floor(offset / 1000) + 1) * 1000;
      },
    };
  };
  const slowAddresses = Array.from({ length: 12 }, () => ipv4(rng));
  let slowCount = 0;
  const streams: Stream[] = [
    ...WALKED_COUNTRIES.map(walker),
    {
      perHour: 100,
      solver: options.botsSolve === true,
      next: () => ({ phone: rng.pick(premium), client: rng.pick(botnet) }),
    },
    {
      // Stays under IP_MAX_TARGETS_PER_HOUR (20) on each of its addresses, spreads its numbers
      // over a whole country so no prefix fills, and pays for every proof it is asked for.
      perHour: 12 * 15,
      solver: true,
      next: () => ({
        phone: personalNumber(rng, SLOW_ATTACK_COUNTRY),
        client: slowAddresses[slowCount++ % slowAddresses.length]!,
      }),
    },
  ];
  for (const stream of streams) {
    const rate = stream.perHour * options.attackScale;
    if (rate <= 0) continue;
    const attempt = async () => {
      const { phone, client } = stream.next();
      attackerNumbers.add(phone);
      row(now).attackerWanted++;
      let answer = await call('POST', '/verify-phone', client, { phone });
      if (answer.code === 'challenge_required' && stream.solver) {
        answer = await sendWithProof(client, { phone });
      }
      if (answer.status !== 202) {
        count(attackerStops, answer.code);
        stream.refused?.(answer.code);
      }
      at(now + rng.interval(rate) * 1000, attempt);
    };
    at(start + rng.interval(rate) * 1000, attempt);
  }

  // --- Run --------------------------------------------------------------------------------
  try {
    let hourEnd = start + HOUR;
    for (let event = queue.pop(); event; event = queue.pop()) {
      while (event.at >= hourEnd) {
        options.onHour?.(row(hourEnd - 1));
        hourEnd += HOUR;
      }
      now = event.at;
      await advanceStoreClock(now);
      await event.run();
    }
    while (hourEnd <= end) {
      options.onHour?.(row(hourEnd - 1));
      hourEnd += HOUR;
    }
  } finally {
    agent.destroy();
    server.close();
    server.closeAllConnections();
    if (redis) {
      // This run's keys only; nobody else's are touched.
      for await (const keys of redis.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      await redis.quit();
    }
    await store.close();
  }

  return {
    hours: rows,
    total: totals(rows),
    afterFirstHour: totals(rows.slice(1)),
    attackerStops,
    peopleStops,
    signals,
    escalatedCountries,
    challengedBy,
    refusedBy,
    peoplePeakCountryHour: Math.max(0, ...peopleCountryHour.values()),
    requests,
    elapsedMs: performance.now() - started,
  };
}

function totals(rows: readonly HourRow[]): Totals {
  const sum = (field: keyof Omit<HourRow, 'hour'>) => rows.reduce((a, r) => a + r[field], 0);
  const attackerWanted = sum('attackerWanted');
  const attackerSent = sum('attackerSent');
  const people = sum('people');
  const peopleChallenged = sum('peopleChallenged');
  const peopleRefused = sum('peopleRefused');
  return {
    attackerWanted,
    attackerSent,
    people,
    peopleChallenged,
    peopleRefused,
    peopleVerified: sum('peopleVerified'),
    stopped: attackerWanted === 0 ? 1 : 1 - attackerSent / attackerWanted,
    challengedShare: people === 0 ? 0 : peopleChallenged / people,
    refusedShare: people === 0 ? 0 : peopleRefused / people,
  };
}
