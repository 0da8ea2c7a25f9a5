import { PostgresEngine } from '../../src/store/sql/postgres';
import { SqlStore } from '../../src/store/sql/store';
import { sleep } from '../support/servers';
import {
  describePostgres,
  type PrivatePostgres,
  startPrivatePostgres,
  testDatabaseUrl,
} from '../support/sql';
import { runStoreConformance } from './conformance';

/** A store on `url` with `prefix` as KEY_PREFIX, its tables created before it is handed out. */
export async function openPostgresStore(
  url: string,
  prefix: string,
  timeoutMs: number,
  migrate = true,
): Promise<SqlStore> {
  const store = new SqlStore(new PostgresEngine({ url, timeoutMs, poolSize: 10 }), {
    keyPrefix: prefix,
  });
  if (migrate) await store.migrate();
  return store;
}

describePostgres('postgres', () => {
  let server: PrivatePostgres | undefined;
  const privateServer = (): PrivatePostgres => {
    if (!server) throw new Error('private postgres not started');
    return server;
  };

  beforeAll(async () => {
    server = await startPrivatePostgres();
  }, 120_000);
  afterAll(() => server?.destroy());

  runStoreConformance('postgres', {
    // The burst tests queue up to 200 calls for a pool of 10 on a shared machine: the deadline
    // is generous, as the tests are about what is counted, not about speed.
    create: (prefix) => openPostgresStore(testDatabaseUrl(), prefix, 10_000),
    advance: sleep,
    expiryGraceMs: 50,
    canScan: true,
    outage: {
      // Created without waiting for its tables: the outage tests create stores while it is down.
      create: (prefix) => openPostgresStore(privateServer().url, prefix, 500, false),
      stop: () => privateServer().stop(),
      start: () => privateServer().start(),
      pause: () => privateServer().pause(),
      resume: () => privateServer().resume(),
    },
  });
});
