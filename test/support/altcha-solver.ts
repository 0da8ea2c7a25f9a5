import type { AltchaChallenge } from '../../services/pow-challenge';

// The client side of the protocol, exactly as altcha-lib ships it: our challenges must be
// solvable by the library's own solver, with no help from us.
type AltchaLib = typeof import('altcha-lib', { with: { 'resolution-mode': 'import' }});
type DeriveKey = Parameters<AltchaLib['solveChallenge']>[0]['deriveKey'];
const altcha: AltchaLib = require('altcha-lib');
const { deriveKey }: { deriveKey: DeriveKey } = require('altcha-lib/algorithms/sha');

/** altcha-lib's own solution of a challenge. */
export async function altchaSolution(challenge: AltchaChallenge, timeoutMs = 20_000) {
  const solution = await altcha.solveChallenge({ challenge, deriveKey, timeout: timeoutMs });
  if (!solution) throw new Error('altcha-lib could not solve the challenge');
  return solution;
}

/** Solves a challenge with altcha-lib and encodes it as the widget submits it: base64 of JSON. */
export async function solveAltcha(challenge: AltchaChallenge): Promise<string> {
  const solution = await altchaSolution(challenge);
  return Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
}
