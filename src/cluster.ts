import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Config } from './config';
import type { Logger } from './logger';
import { processMetrics } from './metrics';

/** Marks the workers this module forks, so that an app embedded in someone else's cluster never asks a primary that does not answer. */
const WORKER_ENV = 'VERIFYD_CLUSTER_WORKER';
const METRICS_REQUEST = 'verifyd:metrics-request';
const METRICS_ANSWER = 'verifyd:metrics-answer';

/** WORKERS as a number of processes: `auto` is one per core. */
export function workerCount(config: Pick<Config, 'WORKERS'>): number {
  return config.WORKERS === 'auto' ? availableParallelism() : Number(config.WORKERS);
}

/** This process is a worker forked by runPrimary. */
export function isVerifydWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1';
}

interface MetricsMessage {
  type: typeof METRICS_REQUEST | typeof METRICS_ANSWER;
  id: number;
  text?: string;
  error?: string;
}

const isMetricsMessage = (message: unknown): message is MetricsMessage =>
  typeof message === 'object' &&
  message !== null &&
  ((message as MetricsMessage).type === METRICS_REQUEST ||
    (message as MetricsMessage).type === METRICS_ANSWER);

/**
 * In a worker: offers this worker's registries to the primary's aggregation, and returns what
 * GET /metrics answers with, the sum over every worker, which only the primary can ask for.
 * A scrape lands on one worker, and its counts alone would be a random share of the truth.
 */
export function workerMetrics(appRegistry: Registry): () => Promise<string> {
  // Constructing one installs prom-client's listener for the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([processMetrics(), appRegistry]);
  let nextId = 0;
  const waiting = new Map<
    number,
    { resolve: (text: string) => void; reject: (e: Error) => void }
  >();
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message) || message.type !== METRICS_ANSWER) return;
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined) pending?.reject(new Error(message.error));
    else pending?.resolve(message.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsMessage);
    });
}

export interface Primary {
  /** The metrics of every worker, summed (prom-client's aggregation). */
  metrics(): Promise<string>;
  /** Resolves once every worker listens. */
  ready: Promise<void>;
  /** Signals every worker, waits for them to exit (at most `boundMs`), then kills what is left. */
  stop(signal: NodeJS.Signals, boundMs: number): Promise<void>;
}

/**
 * Forks `count` workers, each of which runs the whole server with a store client of its own and
 * listens on PORT; node:cluster hands each new connection to the next worker. A worker that dies
 * is replaced after a second, unless the primary is stopping.
 */
export function runPrimary(
  count: number,
  logger: Logger,
  env: Record<string, string> = {},
): Primary {
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let listening = 0;
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });

  const fork = (): Worker => {
    const worker = cluster.fork({ ...env, [WORKER_ENV]: '1' });
    worker.once('listening', () => {
      listening++;
      if (listening === count) resolveReady();
    });
    worker.on('message', (message: unknown) => {
      if (!isMetricsMessage(message) || message.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_ANSWER, id: message.id, text }),
        (error: Error) =>
          worker.send({ type: METRICS_ANSWER, id: message.id, error: error.message }),
      );
    });
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error(
        { worker: worker.id, pid: worker.process.pid, code, signal },
        'worker died; starting another',
      );
      setTimeout(() => {
        if (!stopping) fork();
      }, 1000).unref();
    });
    return worker;
  };
  for (let i = 0; i < count; i++) fork();

  return {
    metrics: () => aggregator.clusterMetrics(),
    ready,
    async stop(signal, boundMs) {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
      const exits = workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', () => resolve());
          }),
      );
      // Each worker drains on its own (src/server.ts): readiness first, then its connections.
      for (const worker of workers) worker.process.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), boundMs);
      });
      const outcome = await Promise.race([Promise.all(exits), bound]);
      clearTimeout(timer);
      if (outcome === 'late') {
        logger.warn('workers still running after the shutdown bound; killing them');
        for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
      }
    },
  };
}
