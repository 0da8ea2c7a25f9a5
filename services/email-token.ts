import { hmac } from '../src/crypto';
import { VerifydError } from '../src/errors';
import type { SecretWrite, Store } from '../src/store/types';
import { signJwt, verifyJwt } from './jwt';
import type { Clock, RandomSource } from './runtime';

export const EMAIL_TOKEN_AUDIENCE = 'verifyd:email-link';

export interface EmailTokenOptions {
  store: Store;
  /** JWT_SECRET; the signing key is derived from it so email tokens and proofs never share a key. */
  jwtSecret: string;
  /** OTP_SECRET, for hashing token ids and targets in the store. */
  hashSecret: string;
  issuer: string;
  ttlSeconds: number;
  clock: Clock;
  random: RandomSource;
}

export interface EmailTokenClaims {
  email: string;
  purpose: string;
  userId?: string;
}

/**
 * A link's `jti` cannot be guessed once the signature checks, so its misses are only old links
 * (superseded) and a cap would let someone clicking an old link kill the newest one. Guessing is
 * bounded by the per-target failure lock instead. The cap stays finite because the store contract
 * takes a number, and high enough that no person reaches it within a link's lifetime.
 */
const LINK_ATTEMPT_CAP = 1_000_000;

export type EmailTokenCheck =
  | { status: 'match'; claims: EmailTokenClaims }
  | { status: 'superseded' }
  | { status: 'locked' }
  | { status: 'missing' };

/**
 * Signed email links. The JWT proves who issued it; the store decides whether it may still be used:
 * it holds the HMAC of the newest link's `jti` per mailbox and purpose, consumed atomically on use.
 * Keying single use on `jti` (not the token string) means a re-encoded copy of a used token is
 * still the same token, and a newer link replaces the older one.
 */
export function createEmailTokenService(options: EmailTokenOptions) {
  const { store, issuer, ttlSeconds, clock, random, hashSecret } = options;
  const key = hmac(options.jwtSecret, 'email-link-signing-key');
  // Keyed by the recipient id the caller's limits and lock use (its mailbox's): one live link per
  // mailbox and purpose, and in braces so all of the recipient's keys share a server where the
  // store spreads keys over several (see Store, placement).
  const storeKey = (purpose: string, recipientId: string) => `email:${purpose}:{${recipientId}}`;
  const jtiHash = (jti: string) => hmac(hashSecret, 'email-jti', jti);

  return {
    /**
     * A signed link token and the write that makes it usable, superseding any earlier link to the
     * recipient. As with codes, the caller stores `secret` together with its send limits.
     * `recipientId`: the id of the recipient's mailbox (see targetId).
     */
    mint(
      claims: EmailTokenClaims,
      recipientId: string,
    ): { token: string; expiresAt: Date; secret: SecretWrite } {
      const jti = random.id();
      const iat = Math.floor(clock.now() / 1000);
      const exp = iat + ttlSeconds;
      const token = signJwt(
        {
          sub: claims.email,
          purpose: claims.purpose,
          ...(claims.userId === undefined ? {} : { uid: claims.userId }),
          jti,
          iat,
          exp,
          iss: issuer,
          aud: EMAIL_TOKEN_AUDIENCE,
        },
        key,
      );
      return {
        token,
        expiresAt: new Date(exp * 1000),
        secret: { key: storeKey(claims.purpose, recipientId), hash: jtiHash(jti), ttlSeconds },
      };
    },

    /** Verifies the JWT (throws invalid_token / token_expired) and reads its claims, without using it. */
    inspect(token: string, expectedPurpose: string): EmailTokenClaims & { jti: string } {
      const payload = verifyJwt(token, {
        key,
        issuer,
        audience: EMAIL_TOKEN_AUDIENCE,
        now: clock.now(),
      });
      const { sub, purpose, jti, uid } = payload;
      if (typeof sub !== 'string' || typeof purpose !== 'string' || typeof jti !== 'string') {
        throw new VerifydError('invalid_token', 'The token is not valid.');
      }
      if (purpose !== expectedPurpose) {
        throw new VerifydError('invalid_token', 'The token was issued for another purpose.');
      }
      return { email: sub, purpose, jti, ...(typeof uid === 'string' ? { userId: uid } : {}) };
    },

    /**
     * Consumes the link; exactly one concurrent caller gets `match`. A phone number's wrong codes
     * never lock a link: the signed token cannot be guessed, so it is judged on itself alone.
     */
    async consume(
      claims: EmailTokenClaims & { jti: string },
      recipientId: string,
    ): Promise<EmailTokenCheck> {
      const outcome = await store.attemptSecret(
        storeKey(claims.purpose, recipientId),
        jtiHash(claims.jti),
        LINK_ATTEMPT_CAP,
      );
      switch (outcome.status) {
        case 'match':
          return { status: 'match', claims };
        case 'mismatch':
          return { status: 'superseded' };
        case 'missing':
          return { status: 'missing' };
        default:
          // 'locked'; 'blocked' and 'exhausted' need options this call does not give.
          return { status: 'locked' };
      }
    },
  };
}

export type EmailTokenService = ReturnType<typeof createEmailTokenService>;
