import { randomBytes } from 'node:crypto';
import svgCaptcha from 'svg-captcha';
import type { Config } from '../src/config';
import { hmac } from '../src/crypto';
import type { Store } from '../src/store/types';
import { cryptoRandom, type RandomSource } from './runtime';

export type CaptchaSettings = Pick<
  Config,
  | 'CAPTCHA_LENGTH'
  | 'CAPTCHA_WIDTH'
  | 'CAPTCHA_HEIGHT'
  | 'CAPTCHA_NOISE'
  | 'CAPTCHA_COLOR'
  | 'CAPTCHA_BACKGROUND'
  | 'CAPTCHA_TTL_SECONDS'
>;

export interface CaptchaServiceOptions {
  store: Store;
  config: CaptchaSettings;
  /** Server secret keying the stored answer hashes (the composition root passes OTP_SECRET). */
  secret: string;
  /** Epoch milliseconds; injected so tests can reason about expiresAt. */
  now?: () => number;
  /** Produces the text drawn in the image; tests inject a known answer. */
  generateText?: (length: number) => string;
}

export interface IssuedCaptcha {
  id: string;
  /** An SVG document, safe to inline or serve as image/svg+xml. */
  image: string;
  expiresAt: string;
}

export interface CaptchaService {
  issue(): Promise<IssuedCaptcha>;
  /**
   * One attempt at a captcha. Any attempt, right or wrong, uses the captcha up, so a client
   * that guessed wrong must fetch a new image rather than keep guessing at the old one.
   */
  verify(id: string, answer: string): Promise<boolean>;
}

/**
 * Characters that stay distinct once drawn distorted and compared without case: no 0/O/o/Q,
 * 1/I/l/i/j, 2/Z/z, 5/S/s, 8/B, and no letters whose two cases differ only in size.
 */
export const CAPTCHA_ALPHABET = 'ACDEFGHJKLMNPRTUVWXYabdefghkmnqrty34679';

/**
 * svg-captcha draws its own text with Math.random, so we choose the text with a CSPRNG instead:
 * one draw per character. The draws come from the injected RandomSource (the CSPRNG in
 * production), so tests control captcha answers the way they control codes.
 */
export function randomCaptchaText(length: number, random: RandomSource = cryptoRandom): string {
  let text = '';
  for (let i = 0; i < length; i++) text += CAPTCHA_ALPHABET[random.int(CAPTCHA_ALPHABET.length)];
  return text;
}

type DrawOptions = NonNullable<Parameters<typeof svgCaptcha.create>[0]>;

// The module's callable default (render given text) is missing from its typings.
const draw = svgCaptcha as unknown as (text: string, options: DrawOptions) => string;

const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const MAX_ANSWER_LENGTH = 64;

export function createCaptchaService(options: CaptchaServiceOptions): CaptchaService {
  const { store, config, secret } = options;
  const now = options.now ?? Date.now;
  const generateText = options.generateText ?? randomCaptchaText;

  // Binding the id into the hash means a table of answer hashes built for one captcha is useless
  // for any other, and the stored value alone never reveals the answer.
  const answerHash = (id: string, answer: string) =>
    hmac(secret, 'captcha', id, answer.trim().toLowerCase());

  return {
    async issue() {
      const id = randomBytes(16).toString('base64url');
      const text = generateText(config.CAPTCHA_LENGTH);
      const image = draw(text, {
        width: config.CAPTCHA_WIDTH,
        height: config.CAPTCHA_HEIGHT,
        noise: config.CAPTCHA_NOISE,
        color: config.CAPTCHA_COLOR,
        background: config.CAPTCHA_BACKGROUND,
      });
      const issuedAt = now();
      await store.putSecret(`captcha:${id}`, answerHash(id, text), config.CAPTCHA_TTL_SECONDS);
      return {
        id,
        image,
        expiresAt: new Date(issuedAt + config.CAPTCHA_TTL_SECONDS * 1000).toISOString(),
      };
    },

    async verify(id, answer) {
      // A malformed id never reaches the store, so it cannot be used to probe it.
      if (!ID_PATTERN.test(id)) return false;
      const key = `captcha:${id}`;
      if (answer.length === 0 || answer.length > MAX_ANSWER_LENGTH) {
        await store.delete(key);
        return false;
      }
      const outcome = await store.attemptSecret(key, answerHash(id, answer), 1);
      if (outcome.status === 'match') return true;
      // With one attempt allowed the secret is already locked; deleting it frees the space now
      // instead of at expiry.
      if (outcome.status === 'mismatch') await store.delete(key);
      return false;
    },
  };
}
