import type { Config } from '../src/config';
import { VerifydError } from '../src/errors';
import { keys } from '../src/store/keys';
import type { StorePrimitives } from '../src/store/types';
import type { PowChallengeService, SessionUse } from './pow-challenge';

export type BotProtectionKind = Config['BOT_PROTECTION'];
export type BotProtectionPolicy = Config['BOT_PROTECTION_MODE'];

export interface BotProtectionOptions {
  mode: BotProtectionKind;
  policy: BotProtectionPolicy;
  /** Sends per client per hour that need no proof under the adaptive policy. */
  freeSends: number;
  store: StorePrimitives;
  /** Required when mode is 'pow'. */
  pow?: PowChallengeService;
}

export interface BotProtection {
  readonly kind: BotProtectionKind;
  /**
   * Called first by every send route, with the client key every per-client limit counts (an
   * IPv4 address or an IPv6 network, see clientKey). Resolves when the request may go on; throws
   * challenge_required (no proof, with `kind` so the client knows what to fetch) or
   * challenge_failed (proof given but wrong, expired, used, or earned by another client).
   *
   * Proof travels in the JSON body: `challengeSession: <token>` from POST /challenge/verify, good
   * for CHALLENGE_SESSION_MAX_SENDS sends from the client that redeemed it, or `altcha: <payload>`
   * straight from the widget, used up by this one check.
   *
   * `required` (the SMS pumping defences escalated the send) demands a proof even where the
   * adaptive policy would let the send through free.
   */
  check(proof: Proof, client: string, required?: boolean): Promise<void>;
}

/** The proof a send carries, as the request schema parsed it. */
export interface Proof {
  altcha?: string | undefined;
  challengeSession?: string | undefined;
}

const FREE_WINDOW_SECONDS = 3600;

const SESSION_REFUSALS: Record<Exclude<SessionUse, 'ok'>, [reason: string, message: string]> = {
  unknown: ['session', 'The challenge session is unknown or expired; solve a new challenge.'],
  elsewhere: [
    'session_elsewhere',
    'The challenge session was earned from another network; solve a new challenge here.',
  ],
  'used-up': [
    'session_used_up',
    'The challenge session has paid for all the sends it allows; solve a new challenge.',
  ],
};

export function createBotProtection(options: BotProtectionOptions): BotProtection {
  const { mode, policy, freeSends, store, pow } = options;
  if (mode === 'off') return { kind: mode, async check() {} };
  // Fail at start-up rather than on the first send that needs proof.
  if (!pow) throw new Error('Bot protection "pow" needs a proof-of-work service');

  const checkPow = async (proof: Proof, client: string): Promise<void> => {
    const session = proof.challengeSession;
    const payload = proof.altcha;
    const hasSession = session !== undefined && session !== '';
    const hasPayload = payload !== undefined && payload !== '';
    if (!hasSession && !hasPayload) {
      throw new VerifydError(
        'challenge_required',
        'Solve a challenge (GET /challenge) and send "altcha" or a "challengeSession".',
        { kind: 'pow' },
      );
    }

    const use: SessionUse = hasSession ? await pow.useSession(session, client) : 'unknown';
    if (use === 'ok') return;
    // A stale or spent session with a fresh payload beside it is fine: the payload decides.
    if (hasPayload) {
      await pow.consume(payload);
      return;
    }
    const [reason, message] = SESSION_REFUSALS[use];
    throw new VerifydError('challenge_failed', message, { kind: 'pow', reason });
  };

  return {
    kind: mode,
    async check(proof, client, required = false) {
      if (policy === 'adaptive') {
        // Every send counts, proven or not, so proof does not buy extra free sends later.
        const { count } = await store.increment(keys.botSends(client), FREE_WINDOW_SECONDS);
        if (count <= freeSends && !required) return;
      }
      await checkPow(proof, client);
    },
  };
}
