/**
 * What the bench reads from the Redis servers it starts: command statistics, CPU time and memory
 * (INFO), the reads it processed (round trips), the top-level commands clients sent (SLOWLOG with
 * a threshold of 0) and the bytes each key holds (MEMORY USAGE). It knows nothing about verifyd's keys: it counts whatever the app under
 * load sends and stores, so it measures the store of whichever version of the app it is given.
 */
import { createClient } from 'redis';

export interface CommandCount {
  calls: number;
  /** Microseconds Redis spent executing the command, as commandstats reports it. */
  usec: number;
}

/** By command name, lower case, subcommands after a bar (`config|get`), as commandstats names them. */
export type CommandStats = Record<string, CommandCount>;

/** Every `field:value` line of an INFO reply, whatever its section. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** The `cmdstat_*` lines of INFO commandstats (`calls=3,usec=12,usec_per_call=4.00,...`). */
export function parseCommandStats(info: Record<string, string>): CommandStats {
  const stats: CommandStats = {};
  for (const [field, value] of Object.entries(info)) {
    if (!field.startsWith('cmdstat_')) continue;
    const parts = Object.fromEntries(value.split(',').map((pair) => pair.split('=', 2)));
    stats[field.slice('cmdstat_'.length)] = {
      calls: Number(parts.calls ?? 0),
      usec: Number(parts.usec ?? 0),
    };
  }
  return stats;
}

/**
 * Commands that run a script. A script is one round trip however many commands it runs, and
 * commandstats counts each command it runs under that command's own name as well, with the time
 * also inside the script's own usec.
 */
export const SCRIPT_COMMANDS = new Set([
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'fcall',
  'fcall_ro',
]);

export interface NodeSnapshot {
  commands: CommandStats;
  /** used_cpu_user + used_cpu_sys: the whole server process, network I/O included. */
  cpuSeconds: number;
  /** used_memory without client and replication buffers, which grow and shrink with traffic. */
  dataBytes: number;
  usedMemory: number;
  keys: number;
}

/**
 * used_memory counts the query and reply buffers of every client and the replication stream kept
 * for replicas; a burst of sends fills them and they shrink later (or, for the replication backlog,
 * never), so they are taken out of what the stored data costs.
 */
function bufferBytes(info: Record<string, string>): number {
  const field = (name: string) => Number(info[name] ?? 0);
  const replication =
    info.mem_total_replication_buffers !== undefined
      ? field('mem_total_replication_buffers')
      : field('mem_replication_backlog') + field('mem_clients_slaves');
  return (
    field('mem_clients_normal') + replication + field('mem_cluster_links') + field('mem_aof_buffer')
  );
}

export function snapshotFromInfo(text: string): NodeSnapshot {
  const info = parseInfo(text);
  const usedMemory = Number(info.used_memory ?? 0);
  const db0 = /keys=(\d+)/.exec(info.db0 ?? '');
  return {
    commands: parseCommandStats(info),
    cpuSeconds: Number(info.used_cpu_user ?? 0) + Number(info.used_cpu_sys ?? 0),
    dataBytes: usedMemory - bufferBytes(info),
    usedMemory,
    keys: Number(db0?.[1] ?? 0),
  };
}

/** Commands the bench itself sends while a measurement runs, left out of the deltas. */
const OWN_COMMANDS = new Set(['info']);

/** after − before, summed over nodes (one for a single server, every primary of a cluster). */
export function statsDelta(
  before: readonly NodeSnapshot[],
  after: readonly NodeSnapshot[],
): { commands: CommandStats; cpuSeconds: number } {
  const commands: CommandStats = {};
  let cpuSeconds = 0;
  after.forEach((end, i) => {
    const start = before[i];
    if (!start) throw new Error('snapshots of different node sets');
    cpuSeconds += end.cpuSeconds - start.cpuSeconds;
    for (const [name, count] of Object.entries(end.commands)) {
      if (OWN_COMMANDS.has(name)) continue;
      const earlier = start.commands[name] ?? { calls: 0, usec: 0 };
      const calls = count.calls - earlier.calls;
      if (calls <= 0) continue;
      const total = commands[name] ?? { calls: 0, usec: 0 };
      total.calls += calls;
      total.usec += count.usec - earlier.usec;
      commands[name] = total;
    }
  });
  return { commands, cpuSeconds };
}

/** One SLOWLOG entry: [id, unix time, µs, [command, ...args], client address, client name]. */
export interface LoggedCommand {
  id: number;
  args: string[];
  client: string;
  clientName: string;
}

/**
 * The address SLOWLOG gives a command that a script ran: the script's own client has no socket.
 * (MONITOR marks the same commands "lua".)
 */
const SCRIPT_CLIENT = '?:0';

export function parseSlowlog(reply: unknown): LoggedCommand[] {
  if (!Array.isArray(reply)) throw new Error('SLOWLOG GET did not answer a list');
  return reply.map((entry) => {
    const [id, , , args, client, clientName] = entry as [
      number,
      number,
      number,
      unknown[],
      string?,
      string?,
    ];
    return {
      id: Number(id),
      args: args.map(String),
      client: String(client ?? ''),
      clientName: String(clientName ?? ''),
    };
  });
}

export type Counts = Record<string, number>;

/** The commands one request caused on one server. */
export interface RequestCommands {
  /** Sent by the app over its connection, one round trip each unless sent together. */
  topLevel: Counts;
  /** Run inside a script the app sent; they cost no round trip. */
  inScripts: Counts;
  /** Commands of other clients (a replica's REPLCONF ACK), each a read of its own. */
  others: number;
}

/**
 * The bench's marker between two requests of a counting pass: `INFO stats`, which both shows in
 * the command log and answers how many reads the server has processed so far.
 */
const isMarker = (args: readonly string[]) =>
  args[0]?.toLowerCase() === 'info' && args[1]?.toLowerCase() === 'stats';

/**
 * Splits a node's log into requests: the bench sends one marker before the first request and
 * one after each, so the commands between marker i and marker i+1 are request i's. Commands of
 * the bench's own connection (`ownName`) are left out, and those of `ignoredClients` (replicas)
 * only counted.
 */
export function commandsPerRequest(
  log: readonly LoggedCommand[],
  ownName: string,
  ignoredClients: ReadonlySet<string> = new Set(),
): RequestCommands[] {
  const requests: RequestCommands[] = [];
  let current: RequestCommands | undefined;
  for (const entry of [...log].sort((a, b) => a.id - b.id)) {
    if (entry.clientName === ownName) {
      if (isMarker(entry.args)) {
        if (current) requests.push(current);
        current = { topLevel: {}, inScripts: {}, others: 0 };
      }
      continue;
    }
    if (!current) continue;
    if (ignoredClients.has(entry.client)) {
      current.others++;
      continue;
    }
    const name = commandName(entry.args);
    const bucket = entry.client === SCRIPT_CLIENT ? current.inScripts : current.topLevel;
    bucket[name] = (bucket[name] ?? 0) + 1;
  }
  return requests;
}

/**
 * Round trips per request on one node: the reads the server processed between two markers, less
 * the marker's own and other clients'. A client that sends several commands at once (a pipeline,
 * or commands issued in the same tick) writes them together and the server takes them in one
 * read; a client that waits for each answer before the next command causes a read per command.
 * `reads` are the totals each marker answered, one more than there are requests.
 */
export function roundTripsPerRequest(
  reads: readonly number[],
  requests: readonly RequestCommands[],
): number[] {
  return requests.map((request, i) => {
    const between = (reads[i + 1] ?? Number.NaN) - (reads[i] ?? Number.NaN);
    return Math.max(0, between - 1 - request.others);
  });
}

/** As commandstats names it: `get`, or `config|get` for a command with subcommands. */
function commandName(args: readonly string[]): string {
  const name = (args[0] ?? '').toLowerCase();
  return CONTAINER_COMMANDS.has(name) && args[1] ? `${name}|${args[1].toLowerCase()}` : name;
}

const CONTAINER_COMMANDS = new Set([
  'client',
  'cluster',
  'config',
  'memory',
  'object',
  'script',
  'function',
  'xinfo',
  'command',
]);

export function sumCounts(counts: readonly Counts[]): Counts {
  const total: Counts = {};
  for (const count of counts)
    for (const [name, n] of Object.entries(count)) total[name] = (total[name] ?? 0) + n;
  return total;
}

export const countTotal = (counts: Counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Of a command's commandstats time, the part spent at the top level: commandstats times a
 * command a script runs both under its own name and inside the script's time, so summing every
 * line counts it twice. `topLevel` and `inScripts` come from a counting pass of the same
 * requests; a command that the pass never saw is taken as top level.
 */
export function topLevelShare(name: string, topLevel: Counts, inScripts: Counts): number {
  if (SCRIPT_COMMANDS.has(name)) return 1;
  const top = topLevel[name] ?? 0;
  const inner = inScripts[name] ?? 0;
  return top + inner === 0 ? 1 : top / (top + inner);
}

/** The client name the bench's own connections carry, so a counting pass can leave them out. */
export const BENCH_CLIENT_NAME = 'verifyd-bench';

function adminClient(address: string) {
  const url = address.startsWith('redis://') ? address : `redis://${address}`;
  // RESP2: plain arrays and strings, whatever the client library's default protocol.
  return createClient({ url, name: BENCH_CLIENT_NAME, RESP: 2 });
}

/** The bench's own connection to one Redis server (or one node of a cluster). */
export class RedisNode {
  private constructor(
    readonly address: string,
    private readonly client: ReturnType<typeof adminClient>,
  ) {}

  static async open(address: string): Promise<RedisNode> {
    const client = adminClient(address);
    await client.connect();
    return new RedisNode(address, client);
  }

  private async command(args: string[]): Promise<unknown> {
    return this.client.sendCommand(args);
  }

  async snapshot(): Promise<NodeSnapshot> {
    const text = await this.command(['INFO', 'cpu', 'commandstats', 'memory', 'keyspace']);
    return snapshotFromInfo(String(text));
  }

  async info(section: string): Promise<Record<string, string>> {
    return parseInfo(String(await this.command(['INFO', section])));
  }

  async isPrimary(): Promise<boolean> {
    return (await this.info('replication')).role === 'master';
  }

  /** Addresses of the replicas connected to this node, whose REPLCONF traffic is not the app's. */
  async replicaClients(): Promise<Set<string>> {
    const list = String(await this.command(['CLIENT', 'LIST', 'TYPE', 'replica']));
    return new Set([...list.matchAll(/\baddr=(\S+)/g)].map((match) => match[1] ?? ''));
  }

  private savedSlowlog: string[] = [];

  /** Logs every command from now on, with room for a whole counting pass. */
  async startLogging(): Promise<void> {
    const saved = (await this.command(['CONFIG', 'GET', 'slowlog-*'])) as unknown as string[];
    this.savedSlowlog = saved.map(String);
    await this.command(['CONFIG', 'SET', 'slowlog-log-slower-than', '0']);
    await this.command(['CONFIG', 'SET', 'slowlog-max-len', '1000000']);
    await this.command(['SLOWLOG', 'RESET']);
  }

  /** Writes a marker into the command log; answers the reads the server has processed. */
  async mark(): Promise<number> {
    const info = parseInfo(String(await this.command(['INFO', 'stats'])));
    return Number(info.total_reads_processed);
  }

  /** What was logged since startLogging, and the server's earlier slowlog settings back. */
  async stopLogging(): Promise<LoggedCommand[]> {
    const log = parseSlowlog(await this.command(['SLOWLOG', 'GET', '-1']));
    const saved = this.savedSlowlog;
    for (let i = 0; i + 1 < saved.length; i += 2)
      await this.command(['CONFIG', 'SET', saved[i] ?? '', saved[i + 1] ?? '']);
    await this.command(['SLOWLOG', 'RESET']);
    return log;
  }

  /** Only ever called on a server the bench started itself. */
  async flushAll(): Promise<void> {
    await this.command(['FLUSHALL', 'SYNC']);
  }

  /**
   * Writes `count` string keys with a TTL, each `valueBytes` long under a key shaped like a
   * verification's, in pipelined batches. Only ever called on a server the bench started itself.
   */
  async writeKeys(count: number, valueBytes: number, keyOf: (i: number) => string): Promise<void> {
    const value = 'v'.repeat(valueBytes);
    for (let i = 0; i < count; i += 500) {
      const batch = Array.from({ length: Math.min(500, count - i) }, (_, j) =>
        this.command(['SET', keyOf(i + j), value, 'EX', '600']),
      );
      await Promise.all(batch);
    }
  }

  /** MEMORY USAGE of every key this node holds, summed, and how many keys there are. */
  async keyBytes(): Promise<{ keys: number; bytes: number }> {
    let keys = 0;
    let bytes = 0;
    for await (const batch of this.client.scanIterator({ COUNT: 1000 })) {
      const sizes = await Promise.all(
        batch.map((key) => this.command(['MEMORY', 'USAGE', key, 'SAMPLES', '0'])),
      );
      keys += batch.length;
      for (const size of sizes) bytes += Number(size ?? 0);
    }
    return { keys, bytes };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
