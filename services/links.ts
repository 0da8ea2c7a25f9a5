import { hmac, storedHmac } from '../src/crypto';
import { VerifydError } from '../src/errors';
import { jwtKey, signJwt, verifyJwt } from './jwt';
import type { Clock, RandomSource } from './runtime';

export const EMAIL_TOKEN_AUDIENCE = 'verifyd:email-link';

export interface LinkSettings {
  /** JWT_SECRET; the signing key is derived from it so links and proofs never share a key. */
  jwtSecret: string;
  /** OTP_SECRET, for hashing link ids in the store. */
  hashSecret: string;
  issuer: string;
  ttlSeconds: number;
}

export interface LinkClaims {
  email: string;
  purpose: string;
  userId?: string;
}

/**
 * Signed email links, as pure functions: nothing here touches storage. The JWT proves who issued
 * a link; whether it may still be used is the store's to say, which holds only the HMAC of its
 * `jti` (see `hash`). Keying single use on `jti`, not the token string, means a re-encoded copy of
 * a used token is still the same token.
 */
export function createLinks(settings: LinkSettings, clock: Clock, random: RandomSource) {
  const { issuer, ttlSeconds, hashSecret } = settings;
  const key = jwtKey(hmac(settings.jwtSecret, 'email-link-signing-key'));

  return {
    ttlSeconds,
    /** A signed link token; `jti` is what the store knows it by (through `hash`). */
    mint(claims: LinkClaims): { token: string; jti: string; expiresAt: Date } {
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
      return { token, jti, expiresAt: new Date(exp * 1000) };
    },

    /** What the store holds of a link. */
    hash(jti: string): string {
      return storedHmac(hashSecret, 'email-jti', jti);
    },

    /** Verifies the JWT (throws invalid_token / token_expired) and reads its claims. */
    inspect(token: string, expectedPurpose: string): LinkClaims & { jti: string } {
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
  };
}

export type Links = ReturnType<typeof createLinks>;
