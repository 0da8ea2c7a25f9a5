import type { ErrorRequestHandler, Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import type { BotProtection } from '../services/bot-protection';
import type { PumpingDefence } from '../services/pumping';
import {
  assertCountryAllowed,
  type PhonePolicy,
  parseEmail,
  parsePhone,
} from '../services/targets';
import type { SendContext, VerificationService } from '../services/verification';
import type { Config } from '../src/config';
import { VerifydError } from '../src/errors';
import { clientOf } from '../src/http/client-key';
import { sendPage } from '../src/http/security-headers';
import { renderConfirmPage, renderConfirmResult } from './confirm-page';
import {
  assertPurposeAllowed,
  checkPhoneBody,
  confirmEmailBody,
  parseBody,
  resendBody,
  sendEmailBody,
  sendPhoneBody,
} from './schemas';

export interface VerificationRoutesDeps {
  config: Config;
  verification: VerificationService;
  /** Absent when bot protection is off, so sends skip the call altogether. */
  botProtection?: Pick<BotProtection, 'check'>;
  /** The SMS pumping defences around every SMS send and after every approved code. */
  pumping: Pick<PumpingDefence, 'guard' | 'recordApproved'>;
  /** The router's error handler, which these routes call directly (see `handled`). */
  errorHandler: ErrorRequestHandler;
}

/** The routes that also take a form body: the confirm page's button posts a plain HTML form. */
export const FORM_PATHS = ['/verify-email-token'] as const;

/**
 * The five routes of the contract plus the email confirm page, added to `router` directly rather
 * than as a router of their own: a nested router is one more layer that every request walks
 * through, which showed in the benchmark's profile. Handlers only translate between HTTP and the
 * verification service; every rule lives in services/.
 */
export function addVerificationRoutes(
  router: Router,
  { config, verification, botProtection, pumping, errorHandler }: VerificationRoutesDeps,
): void {
  // A refused code or send is an everyday answer, not an exception: handing it to next() would walk
  // it past every later route to reach the same error handler, so it goes there directly.
  const handled =
    (handler: (req: Request, res: Response) => Promise<void>): RequestHandler =>
    (req, res, next) => {
      // Should answering the error itself fail, Express's own handling still gets the failure.
      handler(req, res)
        .catch((error: unknown) => errorHandler(error, req, res, next))
        .catch(next);
    };

  // Every route here takes a purpose, and only the configured ones are accepted.
  const parse = <T extends z.ZodType<{ purpose: string }>>(
    schema: T,
    body: unknown,
  ): z.infer<T> => {
    const parsed = parseBody(schema, body);
    assertPurposeAllowed(parsed.purpose, config.PURPOSES);
    return parsed;
  };

  const phonePolicy: PhonePolicy = { allowUnassigned: config.SMS_PROVIDER === 'mock' };
  const codeFormat = new RegExp(`^\\d{${config.OTP_LENGTH}}$`);

  const context = (
    client: string,
    body: { purpose: string; userId?: string | undefined },
    isResend: boolean,
  ): SendContext => ({
    client,
    purpose: body.purpose,
    isResend,
    ...(body.userId === undefined ? {} : { userId: body.userId }),
  });

  const sendPhone = async (
    req: Request,
    res: Response,
    body: { phone: string; purpose: string; userId?: string | undefined },
    isResend: boolean,
  ) => {
    const target = parsePhone(body.phone, phonePolicy);
    assertCountryAllowed(target, config.SMS_ALLOWED_COUNTRIES);
    const client = clientOf(req);
    // The pumping defences may refuse, or demand a proof the adaptive policy would not ask for.
    const pending = await pumping.guard(target, async (needsProof) => {
      if (botProtection) await botProtection.check(req.body, client, needsProof);
      return verification.sendPhoneCode(target, context(client, body, isResend));
    });
    res.status(202).json(pending);
  };

  const sendEmail = async (
    req: Request,
    res: Response,
    body: { email: string; purpose: string; userId?: string | undefined },
    isResend: boolean,
  ) => {
    const target = parseEmail(body.email);
    const client = clientOf(req);
    if (botProtection) await botProtection.check(req.body, client);
    res.status(202).json(await verification.sendEmailLink(target, context(client, body, isResend)));
  };

  router.post(
    '/verify-phone',
    handled(async (req, res) => {
      await sendPhone(req, res, parse(sendPhoneBody, req.body), false);
    }),
  );

  router.post(
    '/verify-phone-code',
    handled(async (req, res) => {
      const body = parse(checkPhoneBody, req.body);
      const target = parsePhone(body.phone, phonePolicy);
      const code = body.code.replace(/[\s-]/g, '');
      // A malformed code is a client mistake, not a guess: refuse it before it reaches the
      // store, so it uses up none of the pending code's attempts.
      if (!codeFormat.test(code)) {
        throw new VerifydError(
          'invalid_request',
          `Invalid request: code must be ${config.OTP_LENGTH} digits.`,
          { field: 'code' },
        );
      }
      const result = await verification.checkPhoneCode(
        target,
        code,
        body.purpose,
        body.userId,
        body.verificationId,
      );
      await pumping.recordApproved(target);
      res.json({ verified: true, phone: result.to, proof: result.proof });
    }),
  );

  router.post(
    '/verify-email',
    handled(async (req, res) => {
      await sendEmail(req, res, parse(sendEmailBody, req.body), false);
    }),
  );

  router.get('/verify-email-token', (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    // Only a well-formed purpose is echoed into the form; anything else is left for the POST's
    // own validation to refuse, rather than reflected into the page.
    const purpose =
      typeof req.query.purpose === 'string' && config.PURPOSES.includes(req.query.purpose)
        ? req.query.purpose
        : undefined;
    // Mail scanners open links before people do, so a GET only shows a button; it never consumes.
    sendPage(req, res, 200, renderConfirmPage(token, purpose));
  });

  router.post(
    '/verify-email-token',
    handled(async (req, res) => {
      // A form body means a person clicked the confirm page's button: answer with a page, not JSON.
      const fromPage = Boolean(req.is('application/x-www-form-urlencoded'));
      try {
        const body = parse(confirmEmailBody, req.body);
        const result = await verification.confirmEmailToken(body.token, body.purpose, body.userId);
        if (!fromPage) {
          res.json({ verified: true, email: result.to, proof: result.proof });
          return;
        }
        sendPage(req, res, 200, renderConfirmResult({ ok: true, email: result.to }));
      } catch (error) {
        if (!fromPage || !(error instanceof VerifydError)) throw error;
        sendPage(
          req,
          res,
          error.status,
          renderConfirmResult({ ok: false, message: error.message }),
        );
      }
    }),
  );

  router.post(
    '/resend-verification',
    handled(async (req, res) => {
      const body = parse(resendBody, req.body);
      if (body.phone !== undefined) await sendPhone(req, res, { ...body, phone: body.phone }, true);
      else await sendEmail(req, res, { ...body, email: body.email ?? '' }, true);
    }),
  );
}
