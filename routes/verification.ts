import { type Request, type Response, Router } from 'express';
import type { VerificationService } from '../services/verification';
import { VerifydError } from '../src/errors';
import { clientOf } from '../src/http/client-key';
import { sendPage } from '../src/http/security-headers';
import { renderConfirmPage, renderConfirmResult } from './confirm-page';
import {
  checkEmailCodeBody,
  checkPhoneBody,
  confirmEmailBody,
  parseBody,
  resendBody,
  sendEmailBody,
  sendPhoneBody,
} from './schemas';

export interface VerificationRoutesDeps {
  verification: VerificationService;
  /** PURPOSES, so the confirm page echoes only a purpose that will be accepted. */
  purposes: readonly string[];
}

/** The routes that also take a form body: the confirm page's button posts a plain HTML form. */
export const FORM_PATHS = ['/verify-email-token'] as const;

/**
 * The five routes of the contract plus the email confirm page. HTTP only: each handler parses the
 * body, hands it to the verification service, and writes its answer. Express 5 passes a rejected
 * handler to the error handler by itself.
 */
export function createVerificationRoutes({
  verification,
  purposes,
}: VerificationRoutesDeps): Router {
  const router = Router();

  const proofOf = (body: {
    altcha?: string | undefined;
    challengeSession?: string | undefined;
  }) => ({
    altcha: body.altcha,
    challengeSession: body.challengeSession,
  });

  const sendPhone = async (
    req: Request,
    res: Response,
    body: ReturnType<typeof sendPhoneBody.parse>,
    isResend: boolean,
  ) => {
    const pending = await verification.sendPhoneCode({
      phone: body.phone,
      purpose: body.purpose,
      userId: body.userId,
      client: clientOf(req),
      proof: proofOf(body),
      isResend,
    });
    res.status(202).json(pending);
  };

  const sendEmail = async (
    req: Request,
    res: Response,
    body: ReturnType<typeof sendEmailBody.parse>,
    isResend: boolean,
  ) => {
    const input = {
      email: body.email,
      purpose: body.purpose,
      userId: body.userId,
      client: clientOf(req),
      proof: proofOf(body),
      isResend,
    };
    const pending =
      body.method === 'code'
        ? await verification.sendEmailCode(input)
        : await verification.sendEmailLink(input);
    res.status(202).json(pending);
  };

  router.post('/verify-phone', async (req, res) => {
    await sendPhone(req, res, parseBody(sendPhoneBody, req.body), false);
  });

  router.post('/verify-phone-code', async (req, res) => {
    const body = parseBody(checkPhoneBody, req.body);
    const result = await verification.checkPhoneCode(body);
    res.json({ verified: true, phone: result.to, proof: result.proof });
  });

  router.post('/verify-email', async (req, res) => {
    await sendEmail(req, res, parseBody(sendEmailBody, req.body), false);
  });

  router.post('/verify-email-code', async (req, res) => {
    const result = await verification.checkEmailCode(parseBody(checkEmailCodeBody, req.body));
    res.json({ verified: true, email: result.to, proof: result.proof });
  });

  router.get('/verify-email-token', (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    // Only an accepted purpose is echoed into the form; anything else is left for the POST's own
    // validation to refuse, rather than reflected into the page.
    const purpose =
      typeof req.query.purpose === 'string' && purposes.includes(req.query.purpose)
        ? req.query.purpose
        : undefined;
    // A link that has expired, or is not valid, says so at once rather than after the click.
    const link = confirmEmailBody.safeParse({ token, purpose });
    const problem = link.success
      ? verification.linkProblem(link.data.token, link.data.purpose)
      : undefined;
    if (problem) {
      sendPage(
        req,
        res,
        problem.status,
        renderConfirmResult({ ok: false, message: problem.message }),
      );
      return;
    }
    // Mail scanners open links before people do, so a GET only shows a button; it never consumes.
    sendPage(req, res, 200, renderConfirmPage(token, purpose));
  });

  router.post('/verify-email-token', async (req, res) => {
    // A form body means a person clicked the confirm page's button: answer with a page, not JSON.
    const fromPage = Boolean(req.is('application/x-www-form-urlencoded'));
    try {
      const result = await verification.confirmEmailToken(parseBody(confirmEmailBody, req.body));
      if (!fromPage) {
        res.json({ verified: true, email: result.to, proof: result.proof });
        return;
      }
      sendPage(req, res, 200, renderConfirmResult({ ok: true, email: result.to }));
    } catch (error) {
      if (!fromPage || !(error instanceof VerifydError)) throw error;
      sendPage(req, res, error.status, renderConfirmResult({ ok: false, message: error.message }));
    }
  });

  router.post('/resend-verification', async (req, res) => {
    const body = parseBody(resendBody, req.body);
    if (body.phone !== undefined) await sendPhone(req, res, { ...body, phone: body.phone }, true);
    else await sendEmail(req, res, { ...body, email: body.email ?? '' }, true);
  });

  return router;
}
