/** Every backend rejects the same bad TTLs, so a caller's bug shows up under any STORE. */
export function assertTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new Error(`TTL must be a whole number of seconds, at least 1 (got ${ttlSeconds})`);
  }
}
