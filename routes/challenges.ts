import { type NextFunction, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { PowChallengeService } from '../services/pow-challenge';
import { VerifydError } from '../src/errors';
import { clientOf } from '../src/http/client-key';

export interface ChallengeRouterOptions {
  pow: PowChallengeService;
}

const verifyBody = z.object({ altcha: z.string().min(1).max(4096) });

/**
 * GET /challenge and POST /challenge/verify, mounted only when the send routes ask for
 * proof-of-work: handing out challenges nobody will check would only let a client fill the store.
 * Both see the client as the send routes do, so a challenge's difficulty follows the volume of
 * the client that fetched it, and a session works only for the client that redeemed it.
 */
export function createChallengeRouter({ pow }: ChallengeRouterOptions): Router {
  const router = Router();

  // Every answer here is single-use or secret; a cache replaying one would break clients.
  const noStore = (_req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    next();
  };

  router.get('/challenge', noStore, async (req, res) => {
    res.json(await pow.issue(clientOf(req)));
  });

  router.post('/challenge/verify', noStore, async (req, res) => {
    const parsed = verifyBody.safeParse(req.body);
    if (!parsed.success) {
      throw new VerifydError('invalid_request', 'Send a JSON body {"altcha": "<widget payload>"}.');
    }
    res.json(await pow.redeem(parsed.data.altcha, clientOf(req)));
  });

  return router;
}
