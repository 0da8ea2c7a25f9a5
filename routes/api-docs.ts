import { z } from 'zod';
import type { ErrorCode } from '../src/errors';
import type { RouteDoc } from '../src/openapi';
import {
  checkEmailCodeBody,
  checkPhoneBody,
  confirmEmailBody,
  resendBody,
  sendEmailBody,
  sendPhoneBody,
} from './schemas';

/**
 * The OpenAPI description of each set of routes, next to nothing else: each function returns what
 * its routes answer, and the code that mounts the routes adds it to the app's ApiRegistry. Request
 * bodies are the zod schemas the handlers parse with (routes/schemas.ts); responses are described
 * here, and the contract tests check every answer of the test suites against them.
 */

/** Every route behind the per-client limit, which fails closed when the store is down. */
const LIMITED: readonly ErrorCode[] = ['rate_limited', 'store_unavailable', 'internal_error'];
/**
 * Every route that reads a JSON body. The last three are Node's HTTP layer's (a body or headers too
 * slow or too large, an unknown Expect), which can meet any route but matter where a body is sent.
 */
const BODY: readonly ErrorCode[] = [
  'invalid_request',
  'invalid_json',
  'payload_too_large',
  'unsupported_media_type',
  'request_timeout',
  'headers_too_large',
  'expectation_failed',
];

const isoTime = z.string().meta({ format: 'date-time' });

const pending = z
  .object({
    success: z.literal(true),
    status: z.literal('pending'),
    channel: z.enum(['sms', 'email']),
    to: z.string().meta({
      description: 'The number in E.164, or the address as given, trimmed and lower-cased',
    }),
    expiresAt: isoTime,
    resendAvailableAt: isoTime,
    codeLength: z.number().int().optional().meta({ description: 'SMS only' }),
    verificationId: z
      .string()
      .optional()
      .meta({ description: 'SMS only: send it with the check, keep it server-side' }),
  })
  .meta({ title: 'Pending' });

const proof = z.string().meta({ description: 'A short-lived HS256 JWT your app checks' });

const SEND_ERRORS: readonly ErrorCode[] = [
  ...BODY,
  ...LIMITED,
  'delivery_failed',
  'provider_misconfigured',
  'provider_rate_limited',
];
const SMS_SEND_ERRORS: readonly ErrorCode[] = [
  ...SEND_ERRORS,
  'invalid_phone',
  'country_not_allowed',
  'recipient_opted_out',
  'sms_budget_exhausted',
  // The SMS pumping defences (README, "SMS pumping").
  'number_type_not_allowed',
  'prefix_blocked',
  'destination_suspended',
  'country_limit_reached',
];

export interface VerificationDocsOptions {
  /** Bot protection is on: sends may ask for a proof, and read its fields. */
  botProtection: boolean;
}

export function verificationDocs({ botProtection }: VerificationDocsOptions): RouteDoc[] {
  const bot: readonly ErrorCode[] = botProtection ? ['challenge_required', 'challenge_failed'] : [];
  return [
    {
      method: 'post',
      path: '/verify-phone',
      tag: 'Phone',
      summary: 'Send a code by SMS',
      description:
        'Normalises the number to E.164 and sends a new code. A verification pending for this number and purpose is joined: its newest RESEND_MAX + 1 codes are accepted, with one attempt count, and the same verificationId.',
      body: sendPhoneBody,
      responses: { 202: { description: 'Sent', body: pending } },
      errors: [...SMS_SEND_ERRORS, ...bot],
    },
    {
      method: 'post',
      path: '/verify-phone-code',
      tag: 'Phone',
      summary: 'Check a code',
      body: checkPhoneBody,
      responses: {
        200: {
          description: 'The code is right; here is the proof',
          body: z.object({ verified: z.literal(true), phone: z.string(), proof }),
        },
      },
      errors: [
        ...BODY,
        ...LIMITED,
        'invalid_phone',
        'invalid_code',
        'code_expired',
        'too_many_attempts',
        'user_mismatch',
      ],
    },
    {
      method: 'post',
      path: '/verify-email',
      tag: 'Email',
      summary: 'Send a link by email',
      body: sendEmailBody,
      responses: { 202: { description: 'Sent', body: pending } },
      errors: [...SEND_ERRORS, 'invalid_email', ...bot],
    },
    {
      method: 'post',
      path: '/verify-email-code',
      tag: 'Email',
      summary: 'Check a code sent by email',
      body: checkEmailCodeBody,
      responses: {
        200: {
          description: 'The code is right; here is the proof',
          body: z.object({ verified: z.literal(true), email: z.string(), proof }),
        },
      },
      errors: [
        ...BODY,
        ...LIMITED,
        'invalid_email',
        'invalid_code',
        'code_expired',
        'too_many_attempts',
        'user_mismatch',
      ],
    },
    {
      method: 'get',
      path: '/verify-email-token',
      tag: 'Email',
      summary: 'The page an email link opens',
      description:
        'Shows a button that POSTs the token; opening the link never uses it up, since mail scanners open links before people do. A link whose token has expired or is not valid gets a page that says so, with no button.',
      query: {
        token: { description: 'The token from the email link', schema: { type: 'string' } },
        purpose: { description: 'The purpose the link was sent for', schema: { type: 'string' } },
      },
      responses: {
        200: { description: 'The confirm page', media: { type: 'text/html' } },
        400: {
          description: 'The token has expired or is not valid: a page that says so',
          media: { type: 'text/html' },
        },
      },
      errors: LIMITED,
    },
    {
      method: 'post',
      path: '/verify-email-token',
      tag: 'Email',
      summary: 'Use an email link',
      description:
        'A JSON body answers JSON; the confirm page’s form (urlencoded) answers an HTML page, with the same status.',
      body: confirmEmailBody,
      form: true,
      responses: {
        200: {
          description: 'The link is valid; here is the proof (or the success page, for the form)',
          body: z.object({ verified: z.literal(true), email: z.string(), proof }),
          media: { type: 'text/html' },
        },
      },
      errors: [
        ...BODY,
        ...LIMITED,
        'invalid_email',
        'invalid_token',
        'token_expired',
        'token_used',
        'too_many_attempts',
        'user_mismatch',
      ],
    },
    {
      method: 'post',
      path: '/resend-verification',
      tag: 'Phone',
      summary: 'Send a new code or link',
      description: 'Exactly one of phone or email; the answer is the matching send route’s.',
      body: resendBody,
      // The body's refinement, which zod cannot put into JSON Schema: exactly one of the two.
      bodyExtra: { oneOf: [{ required: ['phone'] }, { required: ['email'] }] },
      responses: { 202: { description: 'Sent', body: pending } },
      errors: [...SMS_SEND_ERRORS, 'invalid_email', ...bot],
    },
  ];
}

const altchaChallenge = z
  .looseObject({
    parameters: z.looseObject({
      algorithm: z.string(),
      nonce: z.string(),
      salt: z.string(),
      keyPrefix: z.string(),
      cost: z.number(),
      keyLength: z.number(),
    }),
    signature: z.string(),
  })
  .meta({ description: 'An ALTCHA challenge (v2 format), solved by the altcha widget' });

export function challengeDocs(): RouteDoc[] {
  return [
    {
      method: 'get',
      path: '/challenge',
      tag: 'Bot protection',
      summary: 'A proof-of-work challenge',
      responses: { 200: { description: 'A signed, expiring challenge', body: altchaChallenge } },
      errors: LIMITED,
    },
    {
      method: 'post',
      path: '/challenge/verify',
      tag: 'Bot protection',
      summary: 'Trade a solved challenge for a session of a few sends',
      body: z.object({ altcha: z.string().min(1).max(4096) }),
      responses: {
        200: {
          description: 'A session for sends from this client',
          body: z.object({ session: z.string(), expiresAt: isoTime, maxSends: z.number().int() }),
        },
      },
      errors: [...BODY, ...LIMITED, 'challenge_failed'],
    },
  ];
}

const outboxMessage = z.object({
  id: z.string(),
  channel: z.enum(['sms', 'email']),
  to: z.string(),
  subject: z.string().optional(),
  body: z.string(),
  html: z.string().optional(),
  /** The code or link the message carries, read out of it; null when it carries none. */
  code: z.string().nullable(),
  link: z.string().nullable(),
  sentAt: isoTime,
});

export function devOutboxDocs(): RouteDoc[] {
  const hidden: readonly ErrorCode[] = [...LIMITED, 'not_found'];
  const description =
    'Mock providers only, never in production; answers clients on this machine only (others get 404) unless DEV_ROUTES_PUBLIC=true.';
  return [
    {
      method: 'get',
      path: '/dev/outbox',
      tag: 'Development',
      summary: 'What the mock providers sent, oldest first',
      description,
      query: {
        to: { description: 'Only messages to this number or address', schema: { type: 'string' } },
      },
      responses: {
        200: {
          description: 'The messages',
          body: z.object({ messages: z.array(outboxMessage) }),
        },
      },
      errors: [...hidden, 'invalid_request'],
    },
    {
      method: 'get',
      path: '/dev/outbox/latest',
      tag: 'Development',
      summary: 'The newest message, waiting for one to arrive (long poll)',
      description,
      query: {
        to: { description: 'Only messages to this number or address', schema: { type: 'string' } },
        after: {
          description: 'Only a message newer than the one with this id',
          schema: { type: 'string' },
        },
        wait: {
          description: 'Seconds to wait for a message, 0 to 30 (default 0)',
          schema: { type: 'integer', minimum: 0, maximum: 30 },
        },
      },
      responses: {
        200: { description: 'The message', body: z.object({ message: outboxMessage }) },
      },
      errors: [...hidden, 'invalid_request'],
    },
    {
      method: 'get',
      path: '/dev/outbox/events',
      tag: 'Development',
      summary: 'The outbox as server-sent events: a snapshot, then each change',
      description,
      responses: { 200: { description: 'An event stream', media: { type: 'text/event-stream' } } },
      errors: hidden,
    },
    {
      method: 'delete',
      path: '/dev/outbox',
      tag: 'Development',
      summary: 'Empty the outbox, or the messages to one recipient',
      description,
      query: {
        to: { description: 'Only messages to this number or address', schema: { type: 'string' } },
      },
      responses: { 204: { description: 'Emptied' } },
      errors: [...hidden, 'invalid_request'],
    },
  ];
}

/** The dev inbox page and its two files (routes/dev-inbox.ts). */
export function devInboxDocs(): RouteDoc[] {
  const hidden: readonly ErrorCode[] = [...LIMITED, 'not_found'];
  const description = 'The dev inbox: mock providers only, never in production.';
  const file = (path: string, type: string, summary: string): RouteDoc => ({
    method: 'get',
    path,
    tag: 'Development',
    summary,
    description,
    responses: { 200: { description: summary, media: { type } } },
    errors: hidden,
  });
  const page = file('/dev', 'text/html', 'The dev inbox page');
  page.responses[302] = {
    description: '/dev/ is sent on to /dev, where its relative URLs resolve',
    media: { type: 'text/plain' },
  };
  return [
    page,
    file('/dev/inbox.js', 'text/javascript', "The inbox page's script"),
    file('/dev/inbox.css', 'text/css', "The inbox page's stylesheet"),
  ];
}

const storeState = z.object({
  backend: z.string(),
  ok: z.boolean().optional(),
  servers: z.object({ total: z.number().int(), unreachable: z.number().int() }).optional(),
});
const health = z.object({
  status: z.enum(['ok', 'degraded', 'unavailable', 'draining']),
  store: storeState,
  botProtection: z.object({ kind: z.string(), mode: z.string() }).optional(),
});

export function healthDocs(): RouteDoc[] {
  const answers = (ok: string, down: string) => ({
    200: { description: ok, body: health },
    503: { description: down, body: health },
  });
  return [
    {
      method: 'get',
      path: '/health',
      tag: 'Operations',
      summary: 'One store round trip: up, degraded, or not',
      responses: answers(
        'The store answers (status ok), or some of its servers do (degraded)',
        'The store does not answer, or the process is shutting down (draining)',
      ),
      errors: ['internal_error'],
    },
    {
      method: 'get',
      path: '/health/live',
      tag: 'Operations',
      summary: 'Liveness: the process answers (no store call)',
      responses: {
        200: { description: 'Alive', body: z.object({ status: z.literal('ok') }) },
      },
      errors: [],
    },
    {
      method: 'get',
      path: '/health/ready',
      tag: 'Operations',
      summary: 'Readiness: the store answers within STORE_TIMEOUT_MS and no shutdown is under way',
      responses: answers(
        'Ready for traffic',
        'Not ready: the store does not answer, or the process is draining',
      ),
      errors: ['internal_error'],
    },
  ];
}

export function metricsDocs({ token }: { token: boolean }): RouteDoc[] {
  return [
    {
      method: 'get',
      path: '/metrics',
      tag: 'Operations',
      summary: 'Prometheus metrics',
      ...(token ? { security: 'metricsToken' } : {}),
      responses: {
        200: {
          description: 'The Prometheus text format',
          media: { type: 'text/plain', schema: { type: 'string' } },
        },
      },
      errors: token ? ['unauthorized', 'internal_error'] : ['internal_error'],
    },
  ];
}

export function documentationDocs(): RouteDoc[] {
  return [
    {
      method: 'get',
      path: '/openapi.json',
      tag: 'Operations',
      summary: 'This document',
      responses: {
        200: { description: 'OpenAPI 3.1', media: { type: 'application/json', schema: {} } },
      },
      errors: [],
    },
    {
      method: 'get',
      path: '/docs',
      tag: 'Operations',
      summary: 'This document, rendered (Swagger UI, served from the package)',
      responses: { 200: { description: 'The docs page', media: { type: 'text/html' } } },
      errors: [],
    },
    {
      method: 'get',
      path: '/docs/{asset}',
      tag: 'Operations',
      summary: 'The docs page’s scripts and styles',
      responses: {
        200: { description: 'A static file', media: { type: '*/*' } },
      },
      errors: ['not_found'],
    },
  ];
}

/** Twilio's error shape, which the /v2 routes answer instead of verifyd's own. */
const twilioError = z.object({
  code: z.number().int(),
  message: z.string(),
  more_info: z.string(),
  status: z.number().int(),
});
/** A Twilio resource: its sid and whatever Twilio's own description gives it (see README). */
const twilioResource = z.looseObject({ sid: z.string() });
const twilioList = z.looseObject({ meta: z.looseObject({}) });

/** The security scheme every /v2 operation names (HTTP Basic, as the twilio SDK sends it). */
export const TWILIO_BASIC_AUTH = 'twilioBasic';

/**
 * The Twilio Verify v2 compatible API (routes/twilio-compat.ts): its resources keep the shapes of
 * Twilio's own description (test/providers/spec/twilio-verify-v2.json holds the extract the SDK
 * tests check against), and its errors Twilio's shape with the codes of src/http/twilio-errors.ts.
 */
export function twilioCompatDocs(): RouteDoc[] {
  const description =
    'Twilio Verify v2 compatible (TWILIO_COMPAT=on): HTTP Basic auth with TWILIO_COMPAT_ACCOUNT_SID and TWILIO_COMPAT_AUTH_TOKEN; form-encoded bodies as the twilio SDK sends them.';
  const errors = Object.fromEntries(
    [400, 401, 403, 404, 413, 415, 429, 500, 502, 503].map((status) => [
      status,
      {
        description: 'A Twilio-shaped error (code, message, more_info, status)',
        body: twilioError,
        ...(status === 429
          ? {
              headers: {
                'Retry-After': {
                  description: 'Seconds to wait before the same request can succeed',
                  schema: { type: 'integer', minimum: 1 },
                },
              },
            }
          : {}),
      },
    ]),
  );
  const op = (
    method: RouteDoc['method'],
    path: string,
    summary: string,
    ok: Record<number, { description: string; body?: z.ZodType }>,
  ): RouteDoc => ({
    method,
    path: `/v2${path}`,
    tag: 'Twilio Verify compatible',
    summary,
    description,
    responses: { ...errors, ...ok },
    errors: [],
    security: TWILIO_BASIC_AUTH,
  });
  return [
    op('post', '/Services', 'Create a service', {
      201: { description: 'Created', body: twilioResource },
    }),
    op('get', '/Services', 'List services', { 200: { description: 'A page', body: twilioList } }),
    op('get', '/Services/{sid}', 'Fetch a service', {
      200: { description: 'The service', body: twilioResource },
    }),
    op('post', '/Services/{sid}', 'Update a service', {
      200: { description: 'Updated', body: twilioResource },
    }),
    op('delete', '/Services/{sid}', 'Delete a service', { 204: { description: 'Deleted' } }),
    op(
      'post',
      '/Services/{sid}/Verifications',
      'Start a verification (or add a send to the pending one)',
      {
        201: { description: 'Pending', body: twilioResource },
      },
    ),
    op('get', '/Services/{sid}/Verifications/{verification}', 'Fetch a verification', {
      200: { description: 'The verification', body: twilioResource },
    }),
    op('post', '/Services/{sid}/Verifications/{verification}', 'Cancel or approve a verification', {
      200: { description: 'Updated', body: twilioResource },
    }),
    op('post', '/Services/{sid}/VerificationCheck', 'Check a code', {
      200: {
        description: 'The check (status pending, approved or max_attempts_reached)',
        body: twilioResource,
      },
    }),
  ];
}
