/**
 * Maintenance CLI: `npm run cli -- <command> [options]`. Every command is one row of COMMANDS
 * below (its name, flags, summary and action), and the usage text is generated from that table.
 * Reads the same configuration as the server (environment, then ./.env).
 */
import { existsSync } from 'node:fs';
import { parseArgs, styleText } from 'node:util';
import { z } from 'zod';
import { fraudCommand } from '../services/pumping/cli';
import { maskKey, summarizeStore } from '../services/store-stats';
import { type Config, loadConfig } from '../src/config';
import { ConfigError, StoreUnavailableError } from '../src/errors';
import { createStore } from '../src/store/index';
import { KEY_KINDS, type KeyKind, kindOfKey } from '../src/store/keys';
import { RedisStore } from '../src/store/redis';
import { openEngine, SchemaError, SqlStore } from '../src/store/sql';
import type { Store, StoreEntry } from '../src/store/types';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Wrong invocation: the message, then the usage text, go to stderr; exit 2. */
class UsageError extends Error {}
/** The command could not do its job; the message goes to stderr; exit 1. */
class CommandFailed extends Error {}

type Format = Parameters<typeof styleText>[0];
type Paint = (format: Format, text: string) => string;

/** NO_COLOR always wins; FORCE_COLOR lets a pipe (or a test) ask for colour anyway. */
function colourEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '0' && force !== 'false') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

function painter(stream: NodeJS.WriteStream): Paint {
  if (!colourEnabled(stream, process.env)) return (_format, text) => text;
  // The decision is ours (above), so styleText must not second-guess it from the stream.
  return (format, text) => styleText(format, text, { validateStream: false });
}

const paint = painter(process.stdout);
const paintErr = painter(process.stderr);
const out = (line = '') => process.stdout.write(`${line}\n`);
const err = (line = '') => process.stderr.write(`${line}\n`);

function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'no expiry';
  if (ms <= 0) return '0s';
  if (ms < 1000) return '<1s';
  let seconds = Math.floor(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  // Two units are enough to read at a glance; "1d 3h" is clearer than "1d 3h 12m 5s".
  return parts.slice(0, 2).join(' ');
}

function plural(kind: KeyKind): string {
  return kind === 'other' ? 'other keys' : `${kind}s`;
}

/** Aligned columns; `style` colours a cell after padding, so escape codes never skew widths. */
function table(
  header: string[],
  rows: string[][],
  style: (row: string[], column: number, padded: string) => string = (_r, _c, p) => p,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)));
  return [
    paint('bold', pad(header).join('  ')),
    ...rows.map((row) =>
      pad(row)
        .map((cell, i) => style(row, i, cell))
        .join('  '),
    ),
  ];
}

function describeBackend(config: Config, store?: Store): string {
  const table = store instanceof SqlStore ? `, table ${store.names.plain.entries}` : '';
  return `${config.STORE} store, key prefix "${config.KEY_PREFIX}"${table}`;
}

/** Backends that keep an expired entry until a sweep removes it, rather than expiring it natively. */
const keepsExpired = (config: Config) =>
  config.STORE === 'memory' || config.STORE === 'postgres' || config.STORE === 'sqlite';

function memoryNote(config: Config): void {
  if (config.STORE !== 'memory') return;
  out(
    paint(
      'yellow',
      'Note: STORE=memory keeps entries inside each server process. This CLI is a separate\n' +
        "process with its own, empty memory store, so it cannot see or change a server's entries.\n" +
        'Point it at the shared store (STORE=redis) to inspect live state.',
    ),
  );
}

const CANNOT_ENUMERATE = 'Memcached cannot enumerate keys, so entries cannot be listed or counted.';

async function stats(config: Config, store: Store): Promise<number> {
  // Read first, so an unreachable store fails before any half-report is printed.
  const summary = await summarizeStore(store);
  out(paint('bold', `verifyd: ${describeBackend(config, store)}`));
  memoryNote(config);
  out();
  if (!summary) {
    out(paint('yellow', CANNOT_ENUMERATE));
  } else {
    out(paint('bold', 'Live entries by kind'));
    const kinds = [...Object.values(KEY_KINDS), 'other'] as KeyKind[];
    const width = Math.max(
      ...kinds.map((k) => plural(k).length),
      'expired, not yet removed'.length,
    );
    let total = 0;
    for (const kind of kinds) {
      const count = summary.live[kind];
      total += count;
      const text = String(count).padStart(6);
      out(`  ${plural(kind).padEnd(width)}${count > 0 ? paint('cyan', text) : paint('dim', text)}`);
    }
    out(`  ${'total'.padEnd(width)}${paint('bold', String(total).padStart(6))}`);
    // Redis and Memcached drop an entry when it expires; the others keep it until a cleanup.
    if (keepsExpired(config)) {
      out(`  ${'expired, not yet removed'.padEnd(width)}${String(summary.expired).padStart(6)}`);
    }
  }
  out();
  out(paint('bold', 'Expiry and cleanup settings'));
  const native = `${config.STORE} expires keys natively; nothing to clean up`;
  const cleanupRemark: Record<Config['STORE'], string> = {
    memory: 'expired entries are swept this often',
    postgres: 'the cleanup job removes expired rows this often, one worker at a time',
    sqlite: 'the cleanup job removes expired rows this often, one worker at a time',
    redis: native,
    memcached: native,
  };
  const settings: [string, number, string?][] = [
    ['OTP_TTL_SECONDS', config.OTP_TTL_SECONDS],
    ['EMAIL_TOKEN_TTL_SECONDS', config.EMAIL_TOKEN_TTL_SECONDS],
    ['CHALLENGE_TTL_SECONDS', config.CHALLENGE_TTL_SECONDS],
    ['CHALLENGE_SESSION_TTL_SECONDS', config.CHALLENGE_SESSION_TTL_SECONDS],
    ['CLEANUP_INTERVAL_SECONDS', config.CLEANUP_INTERVAL_SECONDS, cleanupRemark[config.STORE]],
  ];
  for (const [name, seconds, remark] of settings) {
    const human = paint('dim', `(${formatDuration(seconds * 1000)})`);
    out(
      `  ${name.padEnd(31)}${String(seconds).padStart(6)}  ${human}${remark ? `  ${remark}` : ''}`,
    );
  }
  out(`  ${'backend'.padEnd(31)}${config.STORE.padStart(6)}`);
  return EXIT_OK;
}

async function collect(store: Store): Promise<StoreEntry[] | undefined> {
  if (!store.scan) return undefined;
  const entries: StoreEntry[] = [];
  for await (const entry of store.scan()) entries.push(entry);
  return entries;
}

async function list(config: Config, store: Store): Promise<number> {
  const entries = await collect(store);
  if (!entries) throw new CommandFailed(CANNOT_ENUMERATE);
  out(paint('bold', `verifyd: ${describeBackend(config, store)}`));
  memoryNote(config);
  if (entries.length === 0) {
    out(`No entries under prefix "${config.KEY_PREFIX}".`);
    return EXIT_OK;
  }
  // Grouped in namespace order (codes, tokens, challenges, ...), then by key.
  const order = [...Object.values(KEY_KINDS), 'other'] as KeyKind[];
  const rank = (key: string) => order.indexOf(kindOfKey(key));
  entries.sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
  let expired = 0;
  const rows = entries.map((entry) => {
    const valid = entry.ttlMs > 0;
    if (!valid) expired++;
    return [
      maskKey(entry.key),
      kindOfKey(entry.key),
      entry.ageMs === undefined ? '-' : formatDuration(entry.ageMs),
      valid ? formatDuration(entry.ttlMs) : '-',
      valid ? 'valid' : 'expired',
    ];
  });
  const header = ['KEY', 'KIND', 'AGE', 'TTL', 'STATE'];
  const styled = table(header, rows, (row, column, padded) => {
    if (column !== 4) return padded;
    return paint(row[4] === 'valid' ? 'green' : 'red', padded);
  });
  for (const line of styled) out(line);
  out();
  out(`${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}, ${expired} expired`);
  return EXIT_OK;
}

async function clean(config: Config, store: Store): Promise<number> {
  const removedLine = (removed: number) =>
    `Removed ${removed} expired ${removed === 1 ? 'entry' : 'entries'}.`;
  if (store instanceof SqlStore) {
    // The cleanup job itself, once: the same batches under the same lock as the server's runs.
    const run = await store.cleanupOnce();
    if (!run.ran) {
      out(
        'Another worker is running the cleanup job right now (it holds the cleanup lock); ' +
          'this run removed nothing. 0 removed.',
      );
      return EXIT_OK;
    }
    out(removedLine(run.removed));
    return EXIT_OK;
  }
  const removed = (await store.cleanup?.()) ?? 0;
  if (config.STORE === 'memory') {
    out(removedLine(removed));
    memoryNote(config);
  } else {
    const name = config.STORE === 'redis' ? 'Redis' : 'Memcached';
    out(`${name} expires keys natively; there is nothing to clean. 0 removed.`);
  }
  return EXIT_OK;
}

async function clear(config: Config, store: Store): Promise<number> {
  if (!store.scan) {
    throw new CommandFailed(
      'Memcached cannot enumerate keys, so it cannot clear only the keys under KEY_PREFIX. ' +
        'Nothing was deleted. Entries expire on their own within their TTL; flushing the ' +
        "whole server would also delete keys that are not verifyd's.",
    );
  }
  if (store instanceof SqlStore) {
    // The table holds this deployment's rows and nobody else's: emptied in short batches.
    const removed = await store.clear();
    out(
      `Removed ${removed} ${removed === 1 ? 'key' : 'keys'} under prefix "${config.KEY_PREFIX}" ` +
        `from the ${config.STORE} store.`,
    );
    return EXIT_OK;
  }
  // With no prefix, "everything under the prefix" would be the whole database: confine the
  // sweep to the service's own namespaces instead.
  const unprefixed = config.KEY_PREFIX === '';
  if (store instanceof RedisStore && !unprefixed) {
    // Redis keys, not the entries scan lists: a record goes whole, and a key under the prefix
    // that verifyd did not write goes too.
    const removed = await store.clear();
    out(
      `Removed ${removed} ${removed === 1 ? 'key' : 'keys'} under prefix "${config.KEY_PREFIX}" ` +
        'from the redis store.',
    );
    return EXIT_OK;
  }
  const entries = (await collect(store)) ?? [];
  const keys = entries.map((e) => e.key).filter((k) => !unprefixed || kindOfKey(k) !== 'other');
  let removed = 0;
  const BATCH = 100;
  for (let i = 0; i < keys.length; i += BATCH) {
    const results = await Promise.all(keys.slice(i, i + BATCH).map((k) => store.delete(k)));
    removed += results.filter(Boolean).length;
  }
  const where = unprefixed
    ? "in verifyd's own namespaces (KEY_PREFIX is empty, so no other key was touched)"
    : `under prefix "${config.KEY_PREFIX}"`;
  out(
    `Removed ${removed} ${removed === 1 ? 'key' : 'keys'} ${where} from the ${config.STORE} store.`,
  );
  memoryNote(config);
  return EXIT_OK;
}

const outboxSchema = z.object({
  messages: z.array(
    z.object({
      channel: z.string(),
      to: z.string(),
      subject: z.string().optional(),
      body: z.string(),
      sentAt: z.string(),
    }),
  ),
});

/** Where a server listening on HOST can be reached from this machine. */
function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

async function outbox(config: Config, options: { to?: string; url?: string }): Promise<number> {
  const base = options.url ?? `http://${connectHost(config.HOST)}:${config.PORT}`;
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, '')}/dev/outbox`);
  } catch {
    throw new UsageError(
      `--url must be an absolute URL like http://127.0.0.1:3000 (got "${base}").`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url must be an http:// or https:// URL (got "${base}").`);
  }
  if (options.to !== undefined) url.searchParams.set('to', options.to);

  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new CommandFailed(
      `Cannot reach a verifyd server at ${base} (${cause}). Is it running? Start it, or pass --url.`,
    );
  }
  if (response.status === 404) {
    throw new CommandFailed(
      `The server at ${base} has no outbox (GET /dev/outbox answered 404). It is served only when ` +
        'SMS_PROVIDER or EMAIL_PROVIDER is mock and NODE_ENV is not production, and only to ' +
        'clients on its own machine unless it runs with DEV_ROUTES_PUBLIC=true.',
    );
  }
  if (!response.ok) {
    throw new CommandFailed(`GET ${url.href} answered ${response.status} ${response.statusText}.`);
  }
  const parsed = outboxSchema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) {
    throw new CommandFailed(`GET ${url.href} did not answer with an outbox ({"messages": [...]}).`);
  }
  const { messages } = parsed.data;
  if (messages.length === 0) {
    out(options.to === undefined ? 'The outbox is empty.' : `No messages to ${options.to}.`);
    return EXIT_OK;
  }
  out(
    paint(
      'bold',
      `${messages.length} ${messages.length === 1 ? 'message' : 'messages'}, oldest first`,
    ),
  );
  for (const message of messages) {
    out();
    const when = message.sentAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    out(
      `${paint('dim', when)}  ${paint('cyan', message.channel.toUpperCase())} to ${paint('bold', message.to)}`,
    );
    if (message.subject !== undefined) out(`  Subject: ${message.subject}`);
    for (const line of message.body.split('\n')) out(`  ${line}`);
  }
  return EXIT_OK;
}

async function migrateTables(config: Config): Promise<number> {
  if (config.STORE !== 'postgres' && config.STORE !== 'sqlite') {
    out(`STORE=${config.STORE} keeps no tables; there is nothing to migrate.`);
    return EXIT_OK;
  }
  // Not through createStore, which migrates before it resolves: this command reports what it did.
  const store = new SqlStore(openEngine(config), { keyPrefix: config.KEY_PREFIX });
  try {
    const { from, to } = await store.migrate();
    const tables = `${store.names.plain.entries} and ${store.names.plain.meta}`;
    out(
      from === to
        ? `The tables ${tables} are at schema version ${to}; nothing to do.`
        : `Migrated the tables ${tables} from schema version ${from} to ${to}.`,
    );
    return EXIT_OK;
  } catch (error) {
    if (error instanceof SchemaError) throw new CommandFailed(error.message);
    throw error;
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** A command-line flag, described once for the parser, the usage text and the checks. */
interface Flag {
  name: string;
  type: 'boolean' | 'string';
  short?: string;
  /** Placeholder of a string flag's value in the usage text, e.g. "<address>". */
  value?: string;
  /** Shown bare in the usage text (`clear --yes`); the command itself says what is missing. */
  required?: boolean;
}

interface Context {
  config: Config;
  values: ParsedValues;
  /** The configured store, without housekeeping timers; closed after the command. */
  store(): Promise<Store>;
}

/** One row of the command table: everything about a command is written here, once. */
interface Command {
  name: string;
  flags: readonly Flag[];
  summary: string;
  run(context: Context): Promise<number>;
}

const TO: Flag = { name: 'to', type: 'string', value: '<address>' };
const URL_FLAG: Flag = { name: 'url', type: 'string', value: '<base URL>' };
const YES: Flag = { name: 'yes', type: 'boolean', short: 'y', required: true };
const HELP: Flag = { name: 'help', type: 'boolean', short: 'h' };
const LIFT: Flag = { name: 'lift', type: 'string', value: '<country or prefix>' };

export const COMMANDS: readonly Command[] = [
  {
    name: 'stats',
    flags: [],
    summary: 'Live entries by kind, expired ones not yet removed, expiry and cleanup settings',
    run: async ({ config, store }) => stats(config, await store()),
  },
  {
    name: 'list',
    flags: [],
    summary: 'Every entry: masked key, kind, age, time to live, valid or expired',
    run: async ({ config, store }) => list(config, await store()),
  },
  {
    name: 'clean',
    flags: [],
    summary:
      'Remove expired entries now, as the cleanup job does (Redis, Memcached: nothing to do)',
    run: async ({ config, store }) => clean(config, await store()),
  },
  {
    name: 'clear',
    flags: [YES],
    summary: 'Delete every key under KEY_PREFIX (postgres, sqlite: its table), and no other key',
    run: async ({ config, values, store }) => {
      if (!values.yes) {
        err(
          paintErr(
            'red',
            `Refusing to clear without --yes: this deletes every key under prefix "${config.KEY_PREFIX}" ` +
              `in the ${config.STORE} store, live codes and sessions included.`,
          ),
        );
        err('Run again as: npm run cli -- clear --yes');
        return EXIT_USAGE;
      }
      return clear(config, await store());
    },
  },
  {
    name: 'migrate',
    flags: [],
    summary: 'Create or migrate the postgres or sqlite tables (the server also does it at start)',
    run: async ({ config }) => migrateTables(config),
  },
  {
    name: 'fraud',
    flags: [LIFT],
    summary:
      'SMS pumping blocks and escalations in force; --lift GB or --lift +447400123 ends one and keeps it from returning for a hold',
    run: async ({ config, values, store }) =>
      fraudCommand({ config, store: await store(), lift: values.lift, out, err }),
  },
  {
    name: 'outbox',
    flags: [TO, URL_FLAG],
    summary: "Messages held by a running server's mock providers (GET /dev/outbox)",
    run: async ({ config, values }) => outbox(config, values),
  },
  {
    name: 'help',
    flags: [],
    summary: 'Show this message',
    run: async () => {
      out(usage());
      return EXIT_OK;
    },
  },
];

/** How a command is written on the command line, e.g. "outbox [--to <address>] [--url <base URL>]". */
function synopsis(command: Command): string {
  const flags = command.flags.map((flag) => {
    const written = flag.value ? `--${flag.name} ${flag.value}` : `--${flag.name}`;
    return flag.required ? written : `[${written}]`;
  });
  return [command.name, ...flags].join(' ');
}

const SYNOPSIS_WIDTH = 20;

/** The usage text, generated from COMMANDS. */
export function usage(): string {
  const lines = COMMANDS.flatMap((command) => {
    const written = synopsis(command);
    // A synopsis too long for its column gets the summary on the next line, aligned.
    return written.length <= SYNOPSIS_WIDTH
      ? [`  ${written.padEnd(SYNOPSIS_WIDTH)} ${command.summary}`]
      : [`  ${written}`, `  ${' '.repeat(SYNOPSIS_WIDTH)} ${command.summary}`];
  });
  return [
    'Usage: npm run cli -- <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Configuration comes from the environment and ./.env, exactly as for the server.',
    'Exit codes: 0 done; 1 failed (store or server unreachable, backend cannot do it);',
    '2 usage error (unknown command or option, or clear without --yes).',
  ].join('\n');
}

/** Every flag of every command, once, as parseArgs takes them. */
function parserOptions() {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = {};
  for (const flag of [...COMMANDS.flatMap((command) => command.flags), HELP]) {
    options[flag.name] = { type: flag.type, ...(flag.short ? { short: flag.short } : {}) };
  }
  return options;
}

type ParsedValues = Record<string, string | boolean | undefined> & {
  to?: string;
  url?: string;
  lift?: string;
};

/** Wrong invocations throw UsageError; otherwise the command and its flags. */
export function parseCommandLine(argv: string[]): { command: Command; values: ParsedValues } {
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: parserOptions(),
    }) as { values: ParsedValues; positionals: string[] };
  } catch (error) {
    // parseArgs names the offending option ("Unknown option '--force'") and then suggests how to
    // pass it as a positional, which no command takes: only its first sentence is kept.
    throw new UsageError((error as Error).message.replace(/(\.) .*$/s, '$1'));
  }
  const { values, positionals } = parsed;
  const help = COMMANDS.find((command) => command.name === 'help') as Command;
  if (values.help) return { command: help, values };
  const [name, ...extra] = positionals;
  if (name === undefined) throw new UsageError('Missing command.');
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) throw new UsageError(`Unknown command "${name}".`);
  if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0]}".`);
  const allowed = new Set(command.flags.map((flag) => flag.name));
  for (const [flag, value] of Object.entries(values)) {
    if (value !== undefined && flag !== 'help' && !allowed.has(flag)) {
      throw new UsageError(`Option --${flag} does not apply to "${command.name}".`);
    }
  }
  return { command, values };
}

function loadEnvironment(): Config {
  // Variables already set in the environment win over the file, as with the server.
  if (existsSync('.env')) process.loadEnvFile('.env');
  return loadConfig(process.env);
}

/** Runs the command line `argv` (without node and the script) and resolves its exit code. */
export async function main(argv: string[]): Promise<number> {
  let opened: Store | undefined;
  try {
    const { command, values } = parseCommandLine(argv);
    if (command.name === 'help') return await command.run({} as Context);
    const config = loadEnvironment();
    return await command.run({
      config,
      values,
      store: async () => {
        // No cleanup timer or sweep: the command does its one job and ends.
        opened ??= await createStore(config, { housekeeping: false }).catch((error: unknown) => {
          // A database that refuses this service (see createSqlStore) says why in one line.
          if (error instanceof StoreUnavailableError || !(error instanceof Error)) throw error;
          throw new CommandFailed(error.message);
        });
        return opened;
      },
    });
  } catch (error) {
    if (error instanceof UsageError) {
      err(paintErr('red', error.message));
      err();
      err(usage());
      return EXIT_USAGE;
    }
    if (error instanceof CommandFailed) {
      err(paintErr('red', error.message));
      return EXIT_FAILED;
    }
    if (error instanceof ConfigError) {
      for (const problem of error.problems) err(paintErr('red', `Configuration error: ${problem}`));
      return EXIT_FAILED;
    }
    if (error instanceof StoreUnavailableError) {
      const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
      err(paintErr('red', `${error.message}${cause}`));
      return EXIT_FAILED;
    }
    err(
      paintErr(
        'red',
        `Unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      ),
    );
    return EXIT_FAILED;
  } finally {
    await opened?.close().catch(() => undefined);
  }
}

/** The process around main(): `npm run cli`, `npx verifyd-cli` and `npx verifyd migrate`. */
export function runCli(argv: string[]): void {
  // A reader that stops early (`cli list | head`) closes the pipe; that ends the listing, it is
  // not a failure worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(EXIT_OK);
  });
  void main(argv).then((code) => {
    // exitCode rather than exit(): output still buffered for a pipe is written before the end.
    process.exitCode = code;
  });
}

// Importing this module (as the tests do) runs nothing; running it as a script runs the CLI.
if (require.main === module) runCli(process.argv.slice(2));
