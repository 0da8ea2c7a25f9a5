import { buildConfig } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';
import { createStore, type Store, startCleanup } from '../../src/store';
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
    await store.putSecret('secret', 'h', 1);
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

describe('startCleanup', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('sweeps the memory store every interval and logs how many entries it removed', async () => {
    jest.useFakeTimers();
    const store = new MemoryStore({ now });
    await store.set('a', 'v', 1);
    await store.set('b', 'v', 1);
    clock += 2000;
    const { logger, lines } = captureLogger();
    const stop = startCleanup(store, 60, logger);

    await jest.advanceTimersByTimeAsync(59_000);
    expect(lines).toEqual([]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(lines).toEqual([expect.objectContaining({ msg: 'store cleanup', removed: 2 })]);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(lines[1]).toEqual(expect.objectContaining({ msg: 'store cleanup', removed: 0 }));

    stop();
    await jest.advanceTimersByTimeAsync(600_000);
    expect(lines).toHaveLength(2);
  });

  it('does not keep the process alive', () => {
    const spy = jest.spyOn(global, 'setInterval');
    const stop = startCleanup(new MemoryStore(), 60, captureLogger().logger);
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    stop();
  });

  it('logs a failed sweep and keeps sweeping', async () => {
    jest.useFakeTimers();
    const store = new MemoryStore();
    const cleanup = jest
      .spyOn(store, 'cleanup')
      .mockRejectedValueOnce(new Error('disk on fire'))
      .mockResolvedValueOnce(4);
    const { logger, lines } = captureLogger();
    const stop = startCleanup(store, 1, logger);
    await jest.advanceTimersByTimeAsync(2000);
    stop();
    expect(cleanup).toHaveBeenCalledTimes(2);
    expect(lines[0]).toEqual(
      expect.objectContaining({
        level: 50,
        msg: 'store cleanup failed',
        err: expect.objectContaining({ message: 'disk on fire' }),
      }),
    );
    expect(lines[1]).toEqual(expect.objectContaining({ msg: 'store cleanup', removed: 4 }));
  });

  it.each(['redis', 'memcached'] as const)(
    'does nothing for %s, which expires natively',
    async (backend) => {
      jest.useFakeTimers();
      const cleanup = jest.fn(async () => 0);
      const store = { backend, cleanup } as unknown as Store;
      const { logger, lines } = captureLogger();
      const stop = startCleanup(store, 1, logger);
      await jest.advanceTimersByTimeAsync(10_000);
      stop();
      expect(cleanup).not.toHaveBeenCalled();
      expect(lines).toEqual([]);
    },
  );
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
