import { completeStore } from '../../src/store/bridge';
import type { SecretWrite, Store } from '../../src/store/types';

/** A secret write with the fields a test does not care about filled in. */
export function secretWrite(
  key: string,
  hash: string,
  ttlSeconds: number,
  extras: Partial<SecretWrite> = {},
): SecretWrite {
  return { key, hash, ttlSeconds, keep: 1, maxAttempts: 1_000_000, binding: 'binding', ...extras };
}

/** Starts a verification holding one code, whatever was at the key before. */
export async function putSecret(
  store: Store,
  key: string,
  hash: string,
  ttlSeconds: number,
  extras: Partial<SecretWrite> = {},
): Promise<void> {
  const complete = completeStore(store);
  await complete.delete(key);
  await complete.admit({ counters: [], secret: secretWrite(key, hash, ttlSeconds, extras) });
}

/** One attempt at the verification at `key`. */
export function attemptSecret(
  store: Store,
  key: string,
  hash: string,
  maxAttempts: number,
  options: {
    binding?: string;
    failures?: Array<{ key: string; windowSeconds: number; max: number }>;
  } = {},
) {
  return completeStore(store).attempt({ key, hash, maxAttempts, ...options });
}
