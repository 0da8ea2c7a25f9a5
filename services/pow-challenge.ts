import { createHash, randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../src/config';
import { hmac } from '../src/crypto';
import { VerifydError } from '../src/errors';
import type { Store } from '../src/store/types';

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
  'CHALLENGE_MAX_NUMBER' | 'CHALLENGE_TTL_SECONDS' | 'CHALLENGE_SESSION_TTL_SECONDS'
>;

export interface PowChallengeOptions {
  store: Store;
  config: PowChallengeSettings;
  /** Server secret; signing keys for challenges and session hashes are derived from it. */
  secret: string;
  /** Epoch milliseconds; injected so tests can expire challenges and sessions without sleeping. */
  now?: () => number;
}

export interface ChallengeSession {
  session: string;
  expiresAt: string;
}

export interface PowChallengeService {
  issue(): Promise<AltchaChallenge>;
  /** Verifies a widget payload and marks its challenge used. Throws challenge_failed. */
  consume(payload: string): Promise<void>;
  /** Consumes a payload and trades it for a session token that stands in for it until expiry. */
  redeem(payload: string): Promise<ChallengeSession>;
  checkSession(token: string): Promise<boolean>;
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
  // Separate keys per purpose, so the same server secret can also key OTP hashes safely.
  const signatureSecret = hmac(secret, 'altcha:challenge-signature');
  const keySignatureSecret = hmac(secret, 'altcha:key-signature');
  const sessionKey = (token: string) => `session:${hmac(secret, 'altcha:session', token)}`;

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
    const first = await store.setIfAbsent(`challenge:${id}`, '1', config.CHALLENGE_TTL_SECONDS);
    if (!first) throw fail('replayed', 'This challenge was already used; fetch a new one.');
  }

  return {
    async issue() {
      const expiresAt = Math.floor(now() / 1000) + config.CHALLENGE_TTL_SECONDS;
      // A known counter with a signed derived key makes verification one HMAC instead of a
      // re-derivation, and the client's work is a uniform draw up to CHALLENGE_MAX_NUMBER.
      return altcha.createChallenge({
        algorithm: ALGORITHM,
        cost: COST,
        counter: randomInt(1, config.CHALLENGE_MAX_NUMBER + 1),
        deriveKey,
        expiresAt,
        hmacSignatureSecret: signatureSecret,
        hmacKeySignatureSecret: keySignatureSecret,
      });
    },

    consume,

    async redeem(payload) {
      await consume(payload);
      const token = randomBytes(32).toString('base64url');
      const ttl = config.CHALLENGE_SESSION_TTL_SECONDS;
      await store.set(sessionKey(token), '1', ttl);
      return { session: token, expiresAt: new Date(now() + ttl * 1000).toISOString() };
    },

    async checkSession(token) {
      if (!SESSION_PATTERN.test(token)) return false;
      return (await store.get(sessionKey(token))) !== undefined;
    },
  };
}
