import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteEngine } from '../../src/store/sql/sqlite';
import { SqlStore } from '../../src/store/sql/store';
import { sleep } from '../support/servers';
import { describeSqlite } from '../support/sql';
import { runStoreConformance } from './conformance';

describeSqlite('sqlite', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'verifyd-sqlite-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Every store opens the one file, as the workers of a host do; prefixes keep them apart.
  runStoreConformance('sqlite', {
    create: async (prefix) => {
      const store = new SqlStore(
        new SqliteEngine({ path: path.join(dir, 'store.sqlite'), timeoutMs: 5000 }),
        { keyPrefix: prefix },
      );
      await store.migrate();
      return store;
    },
    advance: sleep,
    expiryGraceMs: 50,
    canScan: true,
  });
});
