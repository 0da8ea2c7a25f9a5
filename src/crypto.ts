import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** Constant-time comparison, so response timing reveals nothing about how much of a value matched. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** HMAC-SHA256 of the parts, joined with a separator that cannot occur inside any part. */
export function hmac(secret: string, ...parts: string[]): string {
  return createHmac('sha256', secret).update(parts.join('\u0000')).digest('base64url');
}

/**
 * An HMAC as the store keeps it (of a code, of a link's id, of a recipient): its first 22
 * base64url characters, 132 bits. Nobody can hit a truncated HMAC without the secret, two
 * recipients among all the world's numbers and mailboxes collide with odds below 1 in 10^19, and
 * every character more is a byte more in each key and value a pending verification leaves behind.
 */
export function storedHmac(secret: string, ...parts: string[]): string {
  return hmac(secret, ...parts).slice(0, 22);
}

/**
 * Authenticated encryption (AES-256-GCM) of a short value that the store must keep but a dump of
 * it must not reveal, such as the userId a code was sent for. The key derives from `secret`;
 * `context` (e.g. the store key) is bound in as associated data, so a sealed value copied to
 * another entry does not open there.
 */
export function seal(secret: string, context: string, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret), iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The value `seal` sealed under the same secret and context, or undefined if it does not open. */
export function unseal(secret: string, context: string, sealed: string): string | undefined {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < 28) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealKey(secret), bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function sealKey(secret: string): Buffer {
  return createHmac('sha256', secret).update('verifyd-seal-key').digest();
}
