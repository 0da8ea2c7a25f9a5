import { completeStore } from '../../src/store/bridge';
import { MemoryStore } from '../../src/store/memory';
import type { StorePrimitives } from '../../src/store/types';
import { runStoreConformance } from './conformance';

let clock = Date.UTC(2026, 11, 2, 12, 0, 0);
const now = () => clock;

/**
 * What an embedder's custom store offers: the eight primitives and nothing else. The memory store
 * underneath keeps time on the injected clock; everything flow-level comes from the bridge.
 */
function primitivesOnly(store: MemoryStore): StorePrimitives {
  return {
    backend: 'primitives',
    get: (key) => store.get(key),
    set: (key, value, ttl) => store.set(key, value, ttl),
    setIfAbsent: (key, value, ttl) => store.setIfAbsent(key, value, ttl),
    delete: (key) => store.delete(key),
    increment: (key, window) => store.increment(key, window),
    decrement: (key) => store.decrement(key),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}

runStoreConformance('primitives', {
  create: (prefix) => primitivesOnly(new MemoryStore({ keyPrefix: prefix, now })),
  advance: async (ms) => {
    clock += ms;
  },
  expiryGraceMs: 0,
  canScan: false,
});

describe('completeStore', () => {
  it("uses a backend's native capabilities and fills in only what is missing", async () => {
    const native = new MemoryStore({ now });
    const admit = jest.spyOn(native, 'admit');
    await completeStore(native).admit({ counters: [] });
    expect(admit).toHaveBeenCalledTimes(1);
    const bridged = completeStore(primitivesOnly(native));
    await bridged.admit({ counters: [] });
    expect(admit).toHaveBeenCalledTimes(1);
    expect(await bridged.attempt({ key: 'none', hash: 'h', maxAttempts: 1 })).toEqual({
      status: 'missing',
    });
  });
});
