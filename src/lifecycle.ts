/**
 * Whether this process is on its way out. A SIGTERM turns it on first, before the listener closes,
 * so that readiness probes fail while requests are still served: a load balancer stops sending new
 * requests before any of them could be refused.
 */
export interface Lifecycle {
  readonly draining: boolean;
  drain(): void;
}

export function createLifecycle(): Lifecycle {
  let draining = false;
  return {
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
  };
}
