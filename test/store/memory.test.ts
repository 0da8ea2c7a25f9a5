import { buildConfig } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';
import { createStore } from '../../src/store';
import { MemoryStore } from '../../src/store/memory';
import { runStoreConformance } from './conformance';

let clock = Date.UTC(2026, 10, 21, 12, 0, 0);
const now = () => clock;

runStoreConformance('memory', {
  create: (prefix) => new MemoryStore({ keyPrefix: prefix, now }),
  advance: async (ms) => {
    clock += ms;
  },
  expiryGraceMs: 0,
  canScan: true,
});

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { logger, lines };
}

describe('memory store: cleanup', () => {
  it('removes entries that expired without being read, and only those', async () => {
    const store = new MemoryStore({ now });
    await store.set('short', 'v', 1);
    await store.admit({
      counters: [],
      secret: { key: 'secret', hash: 'h', ttlSeconds: 1, keep: 1, maxAttempts: 5, binding: 'b' },
    });
    await store.increment('counter', 1);
    await store.set('long', 'v', 10);
    clock += 1500;
    expect(await store.cleanup()).toBe(3);
    expect(await store.cleanup()).toBe(0);
    const keys = [];
    for await (const entry of store.scan()) keys.push(entry.key);
    expect(keys).toEqual(['long']);
  });
});

describe('memory store: its own sweep', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('sweeps every interval and logs how many entries it removed, until closed', async () => {
    jest.useFakeTimers();
    const { logger, lines } = captureLogger();
    const store = new MemoryStore({ now, sweepIntervalSeconds: 60, logger });
    await store.set('a', 'v', 1);
    await store.set('b', 'v', 1);
    await store.set('c', 'v', 3600);
    clock += 2000;

    await jest.advanceTimersByTimeAsync(59_000);
    expect(lines).toEqual([]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(lines).toEqual([expect.objectContaining({ msg: 'store cleanup', removed: 2 })]);
    // A sweep that found nothing stays quiet.
    await jest.advanceTimersByTimeAsync(60_000);
    expect(lines).toHaveLength(1);

    await store.set('d', 'v', 1);
    clock += 2000;
    await store.close();
    await jest.advanceTimersByTimeAsync(600_000);
    expect(lines).toHaveLength(1);
  });

  it('is built by createStore with CLEANUP_INTERVAL_SECONDS, as an embedding app gets it', async () => {
    jest.useFakeTimers();
    const { logger, lines } = captureLogger();
    const store = await createStore(
      buildConfig({ STORE: 'memory', CLEANUP_INTERVAL_SECONDS: '5' }),
      { logger, now },
    );
    await store.set('a', 'v', 1);
    clock += 2000;
    await jest.advanceTimersByTimeAsync(5000);
    expect(lines).toEqual([expect.objectContaining({ msg: 'store cleanup', removed: 1 })]);
    await store.close();
  });

  it('does not keep the process alive', async () => {
    const spy = jest.spyOn(global, 'setInterval');
    const store = new MemoryStore();
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    await store.close();
  });

  it('can be turned off', () => {
    const spy = jest.spyOn(global, 'setInterval');
    new MemoryStore({ sweepIntervalSeconds: 0 });
    expect(spy).not.toHaveBeenCalled();
  });
});

describe('createStore (memory)', () => {
  it('builds a memory store on the injected clock', async () => {
    const store = await createStore(buildConfig({ STORE: 'memory' }), { now });
    expect(store.backend).toBe('memory');
    await store.set('k', 'v', 1);
    clock += 1000;
    expect(await store.get('k')).toBeUndefined();
    await store.close();
  });

  it('applies KEY_PREFIX to the keys it stores', async () => {
    const store = (await createStore(buildConfig({ STORE: 'memory', KEY_PREFIX: 'tenant-a:' }), {
      now,
    })) as MemoryStore;
    await store.set('k', 'v', 60);
    const entries = (store as unknown as { entries: Map<string, unknown> }).entries;
    expect([...entries.keys()]).toEqual(['tenant-a:k']);
    await store.close();
  });
});
