import express, { type Request, type RequestHandler, Router } from 'express';
import {
  invalidParameter,
  type ServiceInput,
  type ServiceRecord,
  TwilioApiError,
  type TwilioVerify,
  type VerificationView,
} from '../services/twilio-verify';
import { safeEqual } from '../src/crypto';
import { BODY_LIMIT } from '../src/http/body';
import { clientKey, INVALID_CLIENT } from '../src/http/client-key';
import { twilioBody, twilioErrorHandler, twilioNotFound } from '../src/http/twilio-errors';
import type { Logger } from '../src/logger';

export interface TwilioCompatDeps {
  twilio: TwilioVerify;
  /** TWILIO_COMPAT_AUTH_TOKEN; the account sid is the service's. */
  authToken: string;
  /** IPV6_SUBNET, for the client key of a DeviceIp. */
  ipv6Subnet: number;
  /** The absolute URL of a path under this API (PUBLIC_URL based): the SDK follows them as given. */
  urlOf(path: string): string;
  logger: Logger;
  /** Counts a request that failed authentication against its client (the request limit). */
  limitUnauthenticated?: RequestHandler;
}

type Form = Record<string, unknown>;

/** The parsed form; a request without a body (a POST with no parameters) has none to parse. */
function formOf(req: Request): Form {
  return (req.body as Form | undefined) ?? {};
}

/** A string parameter as the SDK sends it, or undefined when absent. */
function text(body: Form, name: string, max = 256): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > max) throw invalidParameter(name);
  return value;
}

function required(body: Form, name: string, max?: number): string {
  const value = text(body, name, max);
  if (value === undefined || value === '') throw invalidParameter(name, 'required');
  return value;
}

/** The SDK sends booleans as "true" and "false". */
function flag(body: Form, name: string): boolean | undefined {
  const value = text(body, name);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw invalidParameter(name, 'true or false');
  return value === 'true';
}

function integer(body: Form, name: string, min: number, max: number): number | undefined {
  const value = text(body, name, 12);
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) {
    throw invalidParameter(name, `an integer from ${min} to ${max}`);
  }
  return number;
}

function serviceInput(body: Form): ServiceInput {
  const input: ServiceInput = {};
  const friendlyName = text(body, 'FriendlyName', 32);
  if (friendlyName !== undefined) {
    if (friendlyName.trim() === '') throw invalidParameter('FriendlyName', 'required');
    input.friendlyName = friendlyName;
  }
  const codeLength = integer(body, 'CodeLength', 4, 10);
  if (codeLength !== undefined) input.codeLength = codeLength;
  const warning = flag(body, 'DoNotShareWarningEnabled');
  if (warning !== undefined) input.doNotShareWarningEnabled = warning;
  const custom = flag(body, 'CustomCodeEnabled');
  if (custom !== undefined) input.customCodeEnabled = custom;
  return input;
}

/** Twilio writes dates without milliseconds. */
const isoDate = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Twilio Verify v2, as its official SDK calls it: HTTP Basic auth with the configured account sid
 * and token, form-encoded bodies, Twilio's resources and error shape. HTTP only: every resource is
 * services/twilio-verify.ts's, and every send and check the verification service's.
 */
export function createTwilioCompatRouter(deps: TwilioCompatDeps): Router {
  const { twilio, urlOf } = deps;
  const router = Router();

  const serviceUrl = (sid: string) => urlOf(`Services/${sid}`);
  const serviceResource = (record: ServiceRecord) => ({
    sid: record.sid,
    account_sid: twilio.accountSid,
    friendly_name: record.friendlyName,
    code_length: record.codeLength,
    lookup_enabled: false,
    psd2_enabled: false,
    skip_sms_to_landlines: false,
    dtmf_input_required: false,
    tts_name: null,
    do_not_share_warning_enabled: record.doNotShareWarningEnabled,
    custom_code_enabled: record.customCodeEnabled,
    push: null,
    totp: null,
    default_template_sid: null,
    whatsapp: null,
    passkeys: null,
    verify_event_subscription_enabled: false,
    date_created: isoDate(record.dateCreated),
    date_updated: isoDate(record.dateUpdated),
    url: serviceUrl(record.sid),
    // Only what this API serves.
    links: {
      verifications: `${serviceUrl(record.sid)}/Verifications`,
      verification_checks: `${serviceUrl(record.sid)}/VerificationCheck`,
    },
  });

  const common = (view: VerificationView) => ({
    sid: view.sid,
    service_sid: view.serviceSid,
    account_sid: twilio.accountSid,
    to: view.to,
    channel: view.channel,
    status: view.status,
    valid: view.valid,
    amount: view.amount,
    payee: view.payee,
    date_created: isoDate(view.dateCreated),
    date_updated: isoDate(view.dateUpdated),
  });
  const verificationResource = (view: VerificationView) => ({
    ...common(view),
    lookup: {},
    send_code_attempts: view.sendCodeAttempts,
    sna: null,
    url: `${serviceUrl(view.serviceSid)}/Verifications/${view.sid}`,
  });
  const checkResource = (view: VerificationView) => ({
    ...common(view),
    sna_attempts_error_codes: [],
  });

  router.use(basicAuth(twilio.accountSid, deps.authToken, deps.limitUnauthenticated));
  router.use(requireForm, express.urlencoded({ limit: BODY_LIMIT, extended: false }));

  router.post('/Services', async (req, res) => {
    const body = formOf(req);
    const friendlyName = required(body, 'FriendlyName', 32);
    const record = await twilio.createService({ ...serviceInput(body), friendlyName });
    res.status(201).json(serviceResource(record));
  });

  router.get('/Services', async (req, res) => {
    const query = req.query as Form;
    const pageSize = integer(query, 'PageSize', 1, 1000) ?? 50;
    const page = integer(query, 'Page', 0, 1_000_000) ?? 0;
    const { services, hasMore } = await twilio.listServices(page, pageSize);
    const pageUrl = (n: number) => `${urlOf('Services')}?PageSize=${pageSize}&Page=${n}`;
    res.json({
      services: services.map(serviceResource),
      meta: {
        page,
        page_size: pageSize,
        first_page_url: pageUrl(0),
        previous_page_url: page > 0 ? pageUrl(page - 1) : null,
        next_page_url: hasMore ? pageUrl(page + 1) : null,
        key: 'services',
        url: pageUrl(page),
      },
    });
  });

  router.get('/Services/:sid', async (req, res) => {
    res.json(serviceResource(await twilio.fetchService(req.params.sid)));
  });

  router.post('/Services/:sid', async (req, res) => {
    const record = await twilio.updateService(req.params.sid, serviceInput(formOf(req)));
    res.json(serviceResource(record));
  });

  router.delete('/Services/:sid', async (req, res) => {
    await twilio.deleteService(req.params.sid);
    res.status(204).end();
  });

  router.post('/Services/:sid/Verifications', async (req, res) => {
    const body = formOf(req);
    const to = required(body, 'To', 320);
    const channel = required(body, 'Channel', 16);
    const locale = text(body, 'Locale', 16);
    // Accepted as Twilio takes it; messages use the configured templates, in their language.
    if (locale !== undefined && !/^[a-z]{2,3}(?:-[a-zA-Z0-9]{2,8})*$/.test(locale)) {
      throw invalidParameter('Locale');
    }
    const deviceIp = text(body, 'DeviceIp', 100);
    const client = deviceIp === undefined ? undefined : clientKey(deviceIp, deps.ipv6Subnet);
    if (client === INVALID_CLIENT) throw invalidParameter('DeviceIp', 'an IP address');
    const view = await twilio.createVerification(req.params.sid, {
      to,
      channel,
      customFriendlyName: text(body, 'CustomFriendlyName', 30),
      customCode: text(body, 'CustomCode', 32),
      client,
      amount: text(body, 'Amount', 64),
      payee: text(body, 'Payee', 256),
    });
    res.status(201).json(verificationResource(view));
  });

  router.get('/Services/:sid/Verifications/:verification', async (req, res) => {
    const view = await twilio.fetchVerification(req.params.sid, req.params.verification);
    res.json(verificationResource(view));
  });

  router.post('/Services/:sid/Verifications/:verification', async (req, res) => {
    const status = required(formOf(req), 'Status', 16);
    if (status !== 'canceled' && status !== 'approved') {
      throw invalidParameter('Status', 'canceled or approved');
    }
    const view = await twilio.updateVerification(req.params.sid, req.params.verification, status);
    res.json(verificationResource(view));
  });

  router.post('/Services/:sid/VerificationCheck', async (req, res) => {
    const body = formOf(req);
    const code = required(body, 'Code', 32);
    const to = text(body, 'To', 320);
    const verificationSid = text(body, 'VerificationSid', 34);
    if (to === undefined && verificationSid === undefined) {
      throw invalidParameter('To', 'To or VerificationSid is required');
    }
    const view = await twilio.check(req.params.sid, { code, to, verificationSid });
    res.json(checkResource(view));
  });

  router.use(twilioNotFound);
  router.use(twilioErrorHandler(deps.logger));
  return router;
}

/**
 * HTTP Basic with the account sid and token, compared in constant time. Twilio answers a wrong
 * or missing credential 401 with code 20003.
 */
function basicAuth(
  accountSid: string,
  authToken: string,
  limit: RequestHandler | undefined,
): RequestHandler {
  return (req, res, next) => {
    const encoded = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(req.headers.authorization ?? '')?.[1];
    const decoded = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const sid = colon === -1 ? '' : decoded.slice(0, colon);
    const token = colon === -1 ? '' : decoded.slice(colon + 1);
    // Both compared every time, so the answer's timing does not say which half was wrong.
    const sidOk = safeEqual(sid, accountSid);
    const tokenOk = safeEqual(token, authToken);
    if (colon !== -1 && sidOk && tokenOk) {
      next();
      return;
    }
    const deny = (error?: unknown) => {
      // Past the limit, or the store is down: that answer (20429, 20503) instead.
      if (error) {
        next(error);
        return;
      }
      res.setHeader('WWW-Authenticate', 'Basic realm="Twilio API"');
      res.status(401).json(twilioBody(20003, 401, 'Authenticate'));
    };
    if (limit) limit(req, res, deny);
    else deny();
  };
}

/** The SDK sends forms; anything else is refused before it is read. */
const requireForm: RequestHandler = (req, _res, next) => {
  // A chunked body has no Content-Length, and is as much a body as one that has.
  const hasBody =
    req.method === 'POST' &&
    (Number(req.headers['content-length'] ?? 0) > 0 ||
      req.headers['transfer-encoding'] !== undefined);
  if (!hasBody || req.is('application/x-www-form-urlencoded')) {
    next();
    return;
  }
  next(new TwilioApiError(60200, 415, 'Send the parameters as application/x-www-form-urlencoded'));
};
