import { z } from 'zod';
import { PURPOSE_PATTERN } from '../src/config';
import { VerifydError } from '../src/errors';

const purpose = z
  .string('purpose must be a string')
  .regex(PURPOSE_PATTERN, 'purpose must be 1-32 letters, digits, "_", "-" or "."')
  .default('verification');
const userId = z
  .string('userId must be a string')
  .min(1, 'userId must not be empty')
  .max(128, 'userId must be at most 128 characters')
  // A lone surrogate cannot be sealed as UTF-8 unchanged: the check would compare another text
  // and refuse the right code as user_mismatch.
  .refine((value) => !/\p{Cs}/u.test(value), 'userId must be well-formed Unicode text')
  .optional();
const phone = z.string('phone must be a string').max(64, 'phone is too long');
const email = z.string('email must be a string').max(320, 'email is too long');

/** Bot protection's proof, when the client brings one (see services/bot-protection.ts). */
const proof = {
  altcha: z.string('altcha must be a string').max(4096, 'altcha is too long').optional(),
  challengeSession: z
    .string('challengeSession must be a string')
    .max(256, 'challengeSession is too long')
    .optional(),
};

/** What a code check carries besides its recipient, for a phone and for an email code alike. */
const codeCheck = {
  code: z.string('code must be a string').max(32, 'code is too long'),
  verificationId: z
    .string('verificationId must be a string')
    .min(1, 'verificationId must not be empty')
    .max(128, 'verificationId is too long')
    .optional(),
};

export const sendPhoneBody = z.object({ phone, userId, purpose, ...proof });
export const checkPhoneBody = z.object({
  phone,
  ...codeCheck,
  userId,
  purpose,
});
/** What an email carries: a link to open (the default) or a code to type. */
const method = z.enum(['link', 'code'], 'method must be "link" or "code"').default('link');
export const sendEmailBody = z.object({ email, userId, purpose, method, ...proof });
export const checkEmailCodeBody = z.object({
  email,
  ...codeCheck,
  userId,
  purpose,
});
export const confirmEmailBody = z.object({
  token: z
    .string('token must be a string')
    .min(1, 'token must not be empty')
    .max(4096, 'token is too long'),
  userId,
  purpose,
});
export const resendBody = z
  .object({
    phone: phone.optional(),
    email: email.optional(),
    userId,
    purpose,
    method,
    ...proof,
  })
  .refine((body) => (body.phone === undefined) !== (body.email === undefined), {
    message: 'send exactly one of phone or email',
  });

/** Parses a body or throws invalid_request naming the first problem. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new VerifydError('invalid_request', 'The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || 'body';
  // zod 4 leaves the offending input out of its issues, so look the field up in the body: only a
  // field that is absent is "required"; one of the wrong type gets the schema's own message.
  const given = issue?.path.reduce<unknown>(
    (value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key],
    body,
  );
  const message =
    issue?.code === 'invalid_type' && given === undefined ? `${field} is required` : issue?.message;
  throw new VerifydError('invalid_request', `Invalid request: ${message ?? 'bad input'}.`, {
    field,
  });
}
