import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../src/config';
import { hmac, safeEqual } from '../src/crypto';
import { VerifydError } from '../src/errors';
import { keys } from '../src/store/keys';
import type { Store } from '../src/store/types';
import { cryptoRandom, type RandomSource } from './runtime';

type AltchaLib = typeof import('altcha-lib', { with: { 'resolution-mode': 'import' }});
type DeriveKey = Parameters<AltchaLib['solveChallenge']>[0]['deriveKey'];

/** The challenge as the ALTCHA widget v3 (PoW v2 format) fetches it: `{ parameters, signature }`. */
export type AltchaChallenge = Awaited<ReturnType<AltchaLib['createChallenge']>>;

// altcha-lib ships a CommonJS build under its "require" condition but only ESM typings, and
// node16 resolution refuses a static import of those from a CommonJS file; so the types come from
// a type query and the code from require.
const altcha: AltchaLib = require('altcha-lib');
const { deriveKey }: { deriveKey: DeriveKey } = require('altcha-lib/algorithms/sha');

export type PowChallengeSettings = Pick<
  Config,
  | 'CHALLENGE_MAX_NUMBER'
  | 'CHALLENGE_DOUBLE_EVERY'
  | 'CHALLENGE_MAX_NUMBER_CAP'
  | 'CHALLENGE_TTL_SECONDS'
  | 'CHALLENGE_SESSION_TTL_SECONDS'
  | 'CHALLENGE_SESSION_MAX_SENDS'
>;

export interface PowChallengeOptions {
  store: Store;
  config: PowChallengeSettings;
  /** Server secret; signing keys for challenges and session hashes are derived from it. */
  secret: string;
  /** Epoch milliseconds; injected so tests can expire challenges and sessions without sleeping. */
  now?: () => number;
  /** Draws each challenge's secret counter; the CSPRNG unless a test injects another. */
  random?: RandomSource;
}

export interface ChallengeSession {
  session: string;
  expiresAt: string;
  /** How many sends the session pays for. */
  maxSends: number;
}

/** What one send presenting a session found. */
export type SessionUse = 'ok' | 'unknown' | 'elsewhere' | 'used-up';

export interface PowChallengeService {
  /**
   * A challenge for the client at `clientKey` (the key every per-client limit counts): the more
   * challenges that client fetched within the last hour, the more work this one takes.
   */
  issue(clientKey: string): Promise<AltchaChallenge>;
  /** Verifies a widget payload and marks its challenge used. Throws challenge_failed. */
  consume(payload: string): Promise<void>;
  /**
   * Consumes a payload and trades it for a session token that pays for up to
   * CHALLENGE_SESSION_MAX_SENDS sends from `clientKey`, the client that redeemed it.
   */
  redeem(payload: string, clientKey: string): Promise<ChallengeSession>;
  /** Spends one send of a session presented by `clientKey`; only 'ok' lets the send go on. */
  useSession(token: string, clientKey: string): Promise<SessionUse>;
}

/** The window over which a client's challenges are counted to set its difficulty. */
export const VOLUME_WINDOW_SECONDS = 3600;

/**
 * The most hashes the `count`-th challenge a client fetched in the window may take: the base
 * for the first CHALLENGE_DOUBLE_EVERY, twice that for the next as many, and so on up to the cap.
 * A person fetches one or two; a script pumping from one network pays a cost that doubles with
 * every few sends, while a busy shared address (an office, carrier NAT) is slowed, not shut out.
 */
export function maxNumberFor(count: number, config: PowChallengeSettings): number {
  const doublings = Math.floor(Math.max(0, count - 1) / config.CHALLENGE_DOUBLE_EVERY);
  // Past ~30 doublings every sane base is over the cap already; stop before 2**n overflows.
  const scaled = config.CHALLENGE_MAX_NUMBER * 2 ** Math.min(doublings, 32);
  return Math.min(scaled, config.CHALLENGE_MAX_NUMBER_CAP);
}

/**
 * One SHA-256 per counter value keeps CHALLENGE_MAX_NUMBER meaning what it meant in ALTCHA v1:
 * the most hashes a client may need. The widget's built-in SHA worker solves it.
 */
const ALGORITHM = 'SHA-256';
const COST = 1;
const MAX_PAYLOAD_LENGTH = 4096;
const SESSION_PATTERN = /^[A-Za-z0-9_-]{43}$/;

// Parameters stay loose: the signature covers every field the client sends back, so dropping an
// unknown one here would turn a valid challenge into a "tampered" one.
const payloadSchema = z.object({
  challenge: z.object({
    parameters: z.looseObject({
      algorithm: z.string(),
      nonce: z.string(),
      salt: z.string(),
      keyPrefix: z.string(),
      cost: z.number(),
      keyLength: z.number(),
      expiresAt: z.number().optional(),
    }),
    signature: z.string(),
  }),
  solution: z.object({
    counter: z.number(),
    derivedKey: z.string(),
    time: z.number().optional(),
  }),
});

type Payload = z.infer<typeof payloadSchema>;

function fail(reason: string, message: string): VerifydError {
  return new VerifydError('challenge_failed', message, { kind: 'pow', reason });
}

function parsePayload(payload: string): Payload {
  if (payload.length === 0 || payload.length > MAX_PAYLOAD_LENGTH) {
    throw fail('malformed', 'The ALTCHA payload is missing or too long.');
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));
  } catch {
    throw fail('malformed', 'The ALTCHA payload is not base64-encoded JSON.');
  }
  const result = payloadSchema.safeParse(decoded);
  if (!result.success) throw fail('malformed', 'The ALTCHA payload is not a solved challenge.');
  return result.data;
}

export function createPowChallengeService(options: PowChallengeOptions): PowChallengeService {
  const { store, config, secret } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? cryptoRandom;
  // Separate keys per purpose, so the same server secret can also key OTP hashes safely.
  const signatureSecret = hmac(secret, 'altcha:challenge-signature');
  const keySignatureSecret = hmac(secret, 'altcha:key-signature');
  const sessionId = (token: string) => hmac(secret, 'altcha:session', token);
  // A session's entry holds an HMAC of the client key that earned it, never the address itself.
  const clientTag = (clientKey: string) => hmac(secret, 'altcha:session-client', clientKey);

  async function consume(payload: string): Promise<void> {
    const { challenge, solution } = parsePayload(payload);
    const expiresAt = challenge.parameters.expiresAt;
    // altcha-lib checks expiry against the real clock; checking here too makes the injected clock
    // authoritative, and refuses a (validly signed) challenge that carries no expiry at all.
    if (expiresAt === undefined || expiresAt * 1000 <= now()) {
      throw fail('expired', 'The challenge has expired; fetch a new one.');
    }
    let verified = false;
    let expired = false;
    try {
      const result = await altcha.verifySolution({
        challenge,
        solution,
        deriveKey,
        hmacSignatureSecret: signatureSecret,
        hmacKeySignatureSecret: keySignatureSecret,
      });
      verified = result.verified;
      expired = result.expired;
    } catch {
      // Hostile parameters (odd-length hex, unknown algorithm) make the library throw.
      verified = false;
    }
    if (expired) throw fail('expired', 'The challenge has expired; fetch a new one.');
    if (!verified) throw fail('invalid', 'The challenge solution is not valid.');

    // Marked only after verification, so unsolved payloads cannot write to the store. The marker
    // outlives the challenge, because a signed challenge is valid for at most the TTL.
    const id = createHash('sha256').update(challenge.signature).digest('base64url');
    const first = await store.setIfAbsent(keys.challenge(id), '1', config.CHALLENGE_TTL_SECONDS);
    if (!first) throw fail('replayed', 'This challenge was already used; fetch a new one.');
  }

  return {
    async issue(clientKey) {
      // Counted when fetched, not when solved: a client cannot keep its count down by asking for
      // many challenges and solving only the cheap ones.
      const { count } = await store.increment(
        keys.challengeVolume(clientKey),
        VOLUME_WINDOW_SECONDS,
      );
      const maxNumber = maxNumberFor(count, config);
      const expiresAt = Math.floor(now() / 1000) + config.CHALLENGE_TTL_SECONDS;
      // A known counter with a signed derived key makes verification one HMAC instead of a
      // re-derivation, and the client's work is a uniform draw up to maxNumber. The bound travels
      // in the signed `data`, so a client (or a test) can see what it was asked for.
      return altcha.createChallenge({
        algorithm: ALGORITHM,
        cost: COST,
        counter: 1 + random.int(maxNumber),
        data: { maxNumber },
        deriveKey,
        expiresAt,
        hmacSignatureSecret: signatureSecret,
        hmacKeySignatureSecret: keySignatureSecret,
      });
    },

    consume,

    async redeem(payload, clientKey) {
      await consume(payload);
      const token = randomBytes(32).toString('base64url');
      const ttl = config.CHALLENGE_SESSION_TTL_SECONDS;
      await store.set(keys.session(sessionId(token)), clientTag(clientKey), ttl);
      return {
        session: token,
        expiresAt: new Date(now() + ttl * 1000).toISOString(),
        maxSends: config.CHALLENGE_SESSION_MAX_SENDS,
      };
    },

    async useSession(token, clientKey) {
      if (!SESSION_PATTERN.test(token)) return 'unknown';
      const id = sessionId(token);
      const owner = await store.get(keys.session(id));
      if (owner === undefined) return 'unknown';
      // Checked before counting, so a stolen token presented elsewhere spends none of the
      // owner's sends.
      if (!safeEqual(owner, clientTag(clientKey))) return 'elsewhere';
      // One atomic count per send: a burst of sends on one session passes exactly
      // CHALLENGE_SESSION_MAX_SENDS times. The count lives at least as long as the session.
      const { count } = await store.increment(
        keys.sessionSends(id),
        config.CHALLENGE_SESSION_TTL_SECONDS,
      );
      return count <= config.CHALLENGE_SESSION_MAX_SENDS ? 'ok' : 'used-up';
    },
  };
}
