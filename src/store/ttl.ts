import type { Admission, FailureLimit } from './types';

/** Every backend rejects the same bad TTLs, so a caller's bug shows up under any STORE. */
export function assertTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new Error(`TTL must be a whole number of seconds, at least 1 (got ${ttlSeconds})`);
  }
}

/** Checks every TTL of an admission before anything is written, so a bad one writes nothing. */
export function assertAdmissionTtls(admission: Admission): void {
  if (admission.gate) assertTtl(admission.gate.ttlSeconds);
  if (admission.secret) assertTtl(admission.secret.ttlSeconds);
  for (const counter of admission.counters) {
    assertTtl(counter.windowSeconds);
    if (counter.distinct) assertTtl(counter.distinct.ttlSeconds);
  }
}

/** The windows of an attempt's failure counters, checked before the attempt counts anything. */
export function assertFailureWindows(failures: readonly FailureLimit[]): void {
  for (const failure of failures) assertTtl(failure.windowSeconds);
}
