import { jwtKey, signJwt, verifyJwt } from './jwt';
import type { Clock, RandomSource } from './runtime';
import type { Channel } from './targets';

export interface ProofOptions {
  /** JWT_SECRET itself, so an app can check proofs with nothing but the shared secret. */
  secret: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock: Clock;
  random: RandomSource;
}

export interface ProofClaims {
  channel: Channel;
  /** The verified E.164 number or email address. */
  sub: string;
  purpose: string;
  userId?: string;
}

/**
 * The short-lived statement "this person controls <sub>" that an app's signup endpoint trusts.
 * Its audience differs from the email link's, and so does its key, so neither passes for the other.
 */
export function createProofService(options: ProofOptions) {
  const { issuer, audience, ttlSeconds, clock, random } = options;
  const key = jwtKey(options.secret);
  return {
    issue(claims: ProofClaims): string {
      const iat = Math.floor(clock.now() / 1000);
      return signJwt(
        {
          sub: claims.sub,
          channel: claims.channel,
          purpose: claims.purpose,
          ...(claims.userId === undefined ? {} : { userId: claims.userId }),
          jti: random.id(),
          iat,
          exp: iat + ttlSeconds,
          iss: issuer,
          aud: audience,
        },
        key,
      );
    },

    verify(token: string) {
      return verifyJwt(token, { key, issuer, audience, now: clock.now() });
    },
  };
}

export type ProofService = ReturnType<typeof createProofService>;
