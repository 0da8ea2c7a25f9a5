/**
 * The bench's Redis instrument read against a real redis-server: what it reports for commands
 * whose count is known, sent the way an app sends them (top level, and inside a script).
 */
import { createClient } from 'redis';
import {
  BENCH_CLIENT_NAME,
  commandsPerRequest,
  RedisNode,
  roundTripsPerRequest,
  statsDelta,
  topLevelShare,
} from '../../bench/redis-stats';
import {
  describeRedis,
  type PrivateServer,
  startPrivateRedis,
  stopPrivateServers,
} from '../support/servers';

/** Two SETs and a GET inside the script, one SET outside it: four commands in one round trip. */
const SCRIPT =
  "redis.call('SET', KEYS[1], 'a'); redis.call('SET', KEYS[2], 'b'); return redis.call('GET', KEYS[1])";

describeRedis('bench redis instrument', () => {
  let server: PrivateServer;
  let node: RedisNode;
  let app: ReturnType<typeof createClient>;

  beforeAll(async () => {
    server = await startPrivateRedis();
    node = await RedisNode.open(server.address);
    app = createClient({ url: server.address });
    await app.connect();
  });
  afterAll(async () => {
    await app?.close();
    await node?.close();
    await stopPrivateServers([server]);
  });

  /** As an app sends one request's commands: a script and a plain command, pipelined. */
  const request = () => Promise.all([app.eval(SCRIPT, { keys: ['k1', 'k2'] }), app.set('k3', 'c')]);

  it('reads commandstats and CPU deltas: a script and the commands it ran, each under its name', async () => {
    const before = await node.snapshot();
    for (let i = 0; i < 3; i++) await request();
    const after = await node.snapshot();
    const { commands, cpuSeconds } = statsDelta([before], [after]);

    expect(commands.eval?.calls).toBe(3);
    // commandstats counts the script's SETs as SETs: 2 inside plus 1 outside, per request.
    expect(commands.set?.calls).toBe(9);
    expect(commands.get?.calls).toBe(3);
    // The bench's own INFO is not the app's.
    expect(commands.info).toBeUndefined();
    expect(Object.keys(commands).sort()).toEqual(['eval', 'get', 'set']);
    // A script's time includes what it ran, so it is at least the time of its inner commands.
    expect(commands.eval!.usec).toBeGreaterThan(0);
    expect(cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(after.keys).toBe(3);
  });

  it('splits the command log at the markers into requests, round trips and what scripts ran', async () => {
    await node.startLogging();
    const reads = [await node.mark()];
    // Sent together: one round trip for a script and a command.
    await request();
    reads.push(await node.mark());
    // One after the other: a round trip each.
    await app.get('k1');
    await app.get('k2');
    reads.push(await node.mark());
    const log = await node.stopLogging();

    const requests = commandsPerRequest(log, BENCH_CLIENT_NAME);
    expect(requests).toEqual([
      { topLevel: { eval: 1, set: 1 }, inScripts: { set: 2, get: 1 }, others: 0 },
      { topLevel: { get: 2 }, inScripts: {}, others: 0 },
    ]);
    expect(roundTripsPerRequest(reads, requests)).toEqual([1, 2]);
    // Of SET's commandstats time in such a request, one call in three is at the top level.
    expect(topLevelShare('set', requests[0]!.topLevel, requests[0]!.inScripts)).toBeCloseTo(1 / 3);
    expect(topLevelShare('eval', requests[0]!.topLevel, requests[0]!.inScripts)).toBe(1);
  });

  it('puts the slowlog settings back and leaves the log empty after a counting pass', async () => {
    const before = await app.configGet('slowlog-*');
    await node.startLogging();
    await app.get('k1');
    await node.stopLogging();
    expect(await app.configGet('slowlog-*')).toEqual(before);
    expect(await app.sendCommand(['SLOWLOG', 'LEN'])).toBe(0);
  });

  it('sums MEMORY USAGE over every key a SCAN finds', async () => {
    await node.flushAll();
    const values = Array.from({ length: 2500 }, (_, i) => `value-${i}`.padEnd(100, '.'));
    await Promise.all(values.map((value, i) => app.set(`key:${i}`, value)));
    const { keys, bytes } = await node.keyBytes();
    expect(keys).toBe(2500);
    // Each key holds a 100-byte value, so each costs more than that and far less than a page.
    expect(bytes / keys).toBeGreaterThan(100);
    expect(bytes / keys).toBeLessThan(400);
  });
});
