import type { Config } from '../src/config';
import { VerifydError } from '../src/errors';
import type { Store } from '../src/store/types';
import type { CaptchaService } from './captcha';
import type { PowChallengeService } from './pow-challenge';

export type BotProtectionKind = Config['BOT_PROTECTION'];
export type BotProtectionPolicy = Config['BOT_PROTECTION_MODE'];

export interface BotProtectionOptions {
  mode: BotProtectionKind;
  policy: BotProtectionPolicy;
  /** Sends per client per hour that need no proof under the adaptive policy. */
  freeSends: number;
  store: Store;
  /** Required when mode is 'captcha'. */
  captcha?: CaptchaService;
  /** Required when mode is 'pow'. */
  pow?: PowChallengeService;
}

export interface BotProtection {
  readonly kind: BotProtectionKind;
  /**
   * Called first by every send route. Resolves when the request may go on; throws
   * challenge_required (no proof, with `kind` so the client knows what to fetch) or
   * challenge_failed (proof given but wrong, expired or used).
   *
   * Proof travels in the JSON body:
   * - captcha mode: `captcha: { id, answer }`, used up by this one check;
   * - pow mode: `challengeSession: <token>` from POST /challenge/verify, reusable until it
   *   expires, or `altcha: <payload>` straight from the widget, used up by this one check.
   *
   * A challenge session is NOT accepted in captcha mode: it proves only proof-of-work, and an
   * operator who chose captcha asked for a human, so accepting it would quietly downgrade them.
   */
  check(body: unknown, client: string): Promise<void>;
}

const FREE_WINDOW_SECONDS = 3600;

function field(body: unknown, name: string): unknown {
  if (typeof body !== 'object' || body === null) return undefined;
  return (body as Record<string, unknown>)[name];
}

export function createBotProtection(options: BotProtectionOptions): BotProtection {
  const { mode, policy, freeSends, store, captcha, pow } = options;
  // Fail at start-up rather than on the first send that needs proof.
  if (mode === 'captcha' && !captcha)
    throw new Error('Bot protection "captcha" needs a captcha service');
  if (mode === 'pow' && !pow) throw new Error('Bot protection "pow" needs a proof-of-work service');

  const required = () =>
    new VerifydError(
      'challenge_required',
      mode === 'captcha'
        ? 'Solve a captcha (GET /captcha) and send it as "captcha": {"id", "answer"}.'
        : 'Solve a challenge (GET /challenge) and send "altcha" or a "challengeSession".',
      { kind: mode },
    );

  async function checkCaptcha(body: unknown): Promise<void> {
    const proof = field(body, 'captcha');
    if (proof === undefined || proof === null) throw required();
    const id = field(proof, 'id');
    const answer = field(proof, 'answer');
    if (
      typeof id !== 'string' ||
      typeof answer !== 'string' ||
      !(await captcha!.verify(id, answer))
    ) {
      throw new VerifydError(
        'challenge_failed',
        'The captcha answer is wrong or the captcha expired; fetch a new one.',
        { kind: 'captcha' },
      );
    }
  }

  async function checkPow(body: unknown): Promise<void> {
    const session = field(body, 'challengeSession');
    const payload = field(body, 'altcha');
    const hasSession = session !== undefined && session !== null && session !== '';
    const hasPayload = payload !== undefined && payload !== null && payload !== '';
    if (!hasSession && !hasPayload) throw required();

    if (hasSession && typeof session === 'string' && (await pow!.checkSession(session))) return;
    // A stale session with a fresh payload beside it is fine: the payload decides.
    if (hasPayload) {
      if (typeof payload !== 'string') {
        throw new VerifydError('challenge_failed', 'The "altcha" field must be a string.', {
          kind: 'pow',
          reason: 'malformed',
        });
      }
      await pow!.consume(payload);
      return;
    }
    throw new VerifydError(
      'challenge_failed',
      'The challenge session is unknown or expired; solve a new challenge.',
      { kind: 'pow', reason: 'session' },
    );
  }

  return {
    kind: mode,
    /** `client`: the sender's client key, its IPv4 address or IPv6 network (see clientKey). */
    async check(body, client) {
      if (mode === 'off') return;
      if (policy === 'adaptive') {
        // Every send counts, proven or not, so proof does not buy extra free sends later.
        const { count } = await store.increment(`limit:bot:{${client}}`, FREE_WINDOW_SECONDS);
        if (count <= freeSends) return;
      }
      if (mode === 'captcha') await checkCaptcha(body);
      else await checkPow(body);
    },
  };
}
