import { createHmac, timingSafeEqual } from 'node:crypto';

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
