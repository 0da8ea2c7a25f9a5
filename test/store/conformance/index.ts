import { completeStore } from '../../../src/store/bridge';
import type { CompleteStore, Store } from '../../../src/store/types';
import { uniquePrefix } from '../../support/servers';
import { admissionConformance } from './admission';
import { basicConformance } from './basic';
import type { ConformanceContext, ConformanceFactory } from './context';
import { counterConformance } from './counters';
import { outageConformance } from './outage';
import { secretConformance } from './secrets';
import { ttlConformance } from './ttl';

export type {
  ConformanceContext,
  ConformanceFactory,
  ConformanceModule,
  OutageHooks,
} from './context';

/**
 * The Store contract as executable checks, run unchanged against every backend (in the spirit of
 * keyv's shared test suite). TTLs are 1-3 s so real backends can be tested by actually waiting.
 *
 * The checks are split by concern, one module a file, each registering its own describe block
 * against the context built here: basic.ts, ttl.ts, counters.ts, secrets.ts, admission.ts and
 * outage.ts (the last only when the factory has outage hooks).
 */
export function runStoreConformance(name: string, factory: ConformanceFactory): void {
  describe(`${name} store: conformance`, () => {
    const opened: Store[] = [];
    // Whatever the backend lacks, the bridge supplies: the suite holds both to the contract.
    const open = async (label: string, prefix = uniquePrefix(label)): Promise<CompleteStore> => {
      const store = await factory.create(prefix);
      opened.push(store);
      return completeStore(store);
    };
    const pastTtl = (seconds: number) => factory.advance(seconds * 1000 + factory.expiryGraceMs);

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    const context: ConformanceContext = { name, factory, open, pastTtl, opened };
    basicConformance(context);
    ttlConformance(context);
    counterConformance(context);
    secretConformance(context);
    admissionConformance(context);
    // Last, where the outage checks always ran: they stop and freeze the backend's private server.
    outageConformance(context);
  });
}
