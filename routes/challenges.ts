import { type NextFunction, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { BotProtection } from '../services/bot-protection';
import type { CaptchaService } from '../services/captcha';
import type { PowChallengeService } from '../services/pow-challenge';
import { VerifydError } from '../src/errors';

export interface ChallengeRouterOptions {
  captcha?: CaptchaService;
  pow?: PowChallengeService;
  botProtection: Pick<BotProtection, 'kind'>;
}

const verifyBody = z.object({ altcha: z.string().min(1).max(4096) });

/**
 * GET /captcha, GET /challenge and POST /challenge/verify. Only the kind of proof the send
 * routes actually ask for is served: handing out captchas or challenges nobody will check
 * would only let a client fill the store.
 */
export function createChallengeRouter(options: ChallengeRouterOptions): Router {
  const { captcha, pow, botProtection } = options;
  const router = Router();

  // Every answer here is single-use or secret; a cache replaying one would break clients.
  const noStore = (_req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    next();
  };

  const disabled = (what: string) =>
    new VerifydError('not_found', `${what} is not enabled on this server.`);

  router.get('/captcha', noStore, async (_req, res) => {
    if (botProtection.kind !== 'captcha' || !captcha) throw disabled('Captcha');
    const { id, image, expiresAt } = await captcha.issue();
    res.json({ id, image, expiresAt });
  });

  router.get('/challenge', noStore, async (_req, res) => {
    if (botProtection.kind !== 'pow' || !pow) throw disabled('Proof-of-work');
    res.json(await pow.issue());
  });

  router.post('/challenge/verify', noStore, async (req, res) => {
    if (botProtection.kind !== 'pow' || !pow) throw disabled('Proof-of-work');
    const parsed = verifyBody.safeParse(req.body);
    if (!parsed.success) {
      throw new VerifydError('invalid_request', 'Send a JSON body {"altcha": "<widget payload>"}.');
    }
    const { session, expiresAt } = await pow.redeem(parsed.data.altcha);
    res.json({ session, expiresAt });
  });

  return router;
}
