/** Raised by withDeadline; adapters map it to "did not answer in time". */
export class DeadlineExceeded extends Error {}

/**
 * The SDKs' timeouts are socket-inactivity timeouts, so a peer that trickles bytes could hold a send
 * open indefinitely; this bounds the whole call. The SDK timeout still tears the socket down.
 */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * What a timeout is called where a failure names its network error (logs, and the `error` label
 * of verifyd_provider_errors_total): the transport's own code, or for our deadline, which has
 * none, the code a socket timeout would have.
 */
export function timeoutCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ETIMEDOUT';
}

/** True for our own deadline and for the transport's timeout codes. */
export function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof DeadlineExceeded || code === 'ECONNABORTED' || code === 'ETIMEDOUT';
}
