/**
 * Whether this process is on its way out, and the work it must not drop on the way. A SIGTERM
 * turns `draining` on first, before the listener closes, so that readiness probes fail while
 * requests are still served: a load balancer stops sending new requests before any of them could
 * be refused. Work a request started that outlives its answer (a webhook delivery and its
 * retries) is tracked, so that the stop waits for it rather than cut it off.
 */
export interface Lifecycle {
  readonly draining: boolean;
  drain(): void;
  /** Work that outlives a request's answer; `about` says what is lost if it never finishes. */
  track(work: Promise<unknown>, about: Record<string, unknown>): void;
  /**
   * Resolves once every tracked piece of work has settled, or after `boundMs` with what each
   * unfinished piece was about (empty when all finished).
   */
  settle(boundMs: number): Promise<Array<Record<string, unknown>>>;
}

export function createLifecycle(): Lifecycle {
  let draining = false;
  const pending = new Map<Promise<unknown>, Record<string, unknown>>();
  return {
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
    track(work, about) {
      const settled = work.then(
        () => undefined,
        () => undefined,
      );
      pending.set(settled, about);
      void settled.then(() => pending.delete(settled));
    },
    async settle(boundMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, boundMs);
      });
      await Promise.race([Promise.all(pending.keys()), late]);
      clearTimeout(timer);
      return [...pending.values()];
    },
  };
}
