/**
 * Maintenance CLI: `npm run cli -- <command> [options]`. See USAGE below for commands and exit
 * codes. Reads the same configuration as the server (environment, then ./.env).
 */
import { existsSync } from 'node:fs';
import { parseArgs, styleText } from 'node:util';
import { z } from 'zod';
import { FRAUD_USAGE, fraudCommand } from '../services/pumping/cli';
import { maskKey, summarizeStore } from '../services/store-stats';
import { type Config, loadConfig } from '../src/config';
import { ConfigError, StoreUnavailableError } from '../src/errors';
import { createStore } from '../src/store/index';
import { KEY_KINDS, type KeyKind, kindOfKey } from '../src/store/keys';
import type { Store, StoreEntry } from '../src/store/types';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  stats                Live entries by kind, plus expiry and cleanup settings
  list                 Every entry: masked key, kind, age, time to live, state
  clean                Remove expired entries now (Redis and Memcached expire keys natively)
  clear --yes          Delete every key under KEY_PREFIX, and no other key
  outbox [--to <address>] [--url <base URL>]
                       Messages held by a running server's mock providers (GET /dev/outbox)
${FRAUD_USAGE}
  help                 Show this message

Configuration comes from the environment and ./.env, exactly as for the server.
Exit codes: 0 done; 1 failed (store or server unreachable, backend cannot do it);
2 usage error (unknown command or option, or clear without --yes).`;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Wrong invocation: the message, then the usage text, go to stderr; exit 2. */
class UsageError extends Error {}
/** The command could not do its job; the message goes to stderr; exit 1. */
class CommandFailed extends Error {}

const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  stats: [],
  list: [],
  clean: [],
  clear: ['yes'],
  outbox: ['to', 'url'],
  fraud: ['lift'],
  help: [],
};

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

function describeBackend(config: Config): string {
  return `${config.STORE} store, key prefix "${config.KEY_PREFIX}"`;
}

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
  out(paint('bold', `verifyd: ${describeBackend(config)}`));
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
    // Only the memory store keeps expired entries around; the others never report any.
    if (config.STORE === 'memory') {
      out(`  ${'expired, not yet removed'.padEnd(width)}${String(summary.expired).padStart(6)}`);
    }
  }
  out();
  out(paint('bold', 'Expiry and cleanup settings'));
  const native = `${config.STORE} expires keys natively; the sweep only matters for memory`;
  const settings: [string, number, string?][] = [
    ['OTP_TTL_SECONDS', config.OTP_TTL_SECONDS],
    ['EMAIL_TOKEN_TTL_SECONDS', config.EMAIL_TOKEN_TTL_SECONDS],
    ['CHALLENGE_TTL_SECONDS', config.CHALLENGE_TTL_SECONDS],
    ['CHALLENGE_SESSION_TTL_SECONDS', config.CHALLENGE_SESSION_TTL_SECONDS],
    [
      'CLEANUP_INTERVAL_SECONDS',
      config.CLEANUP_INTERVAL_SECONDS,
      config.STORE === 'memory' ? 'expired entries are swept this often' : native,
    ],
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
  out(paint('bold', `verifyd: ${describeBackend(config)}`));
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
  const removed = (await store.cleanup?.()) ?? 0;
  if (config.STORE === 'memory') {
    out(`Removed ${removed} expired ${removed === 1 ? 'entry' : 'entries'}.`);
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
  const entries = (await collect(store)) ?? [];
  // With no prefix, "everything under the prefix" would be the whole database: confine the
  // sweep to the service's own namespaces instead.
  const unprefixed = config.KEY_PREFIX === '';
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

const CLI_OPTIONS = {
  yes: { type: 'boolean', short: 'y' },
  to: { type: 'string' },
  url: { type: 'string' },
  lift: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function readArgs(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: CLI_OPTIONS });
  } catch (error) {
    // parseArgs names the offending option, e.g. "Unknown option '--force'".
    throw new UsageError((error as Error).message);
  }
}

function parseCommandLine(argv: string[]) {
  const parsed = readArgs(argv);
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', values };
  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError('Missing command.');
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) throw new UsageError(`Unknown command "${command}".`);
  if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0]}".`);
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && name !== 'help' && !allowed.includes(name)) {
      throw new UsageError(`Option --${name} does not apply to "${command}".`);
    }
  }
  return { command, values };
}

function loadEnvironment(): Config {
  // Variables already set in the environment win over the file, as with the server.
  if (existsSync('.env')) process.loadEnvFile('.env');
  return loadConfig(process.env);
}

async function main(argv: string[]): Promise<number> {
  try {
    const { command, values } = parseCommandLine(argv);
    if (command === 'help') {
      out(USAGE);
      return EXIT_OK;
    }
    const config = loadEnvironment();
    if (command === 'outbox') return await outbox(config, values);
    if (command === 'clear' && !values.yes) {
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
    const store = await createStore(config);
    try {
      if (command === 'stats') return await stats(config, store);
      if (command === 'list') return await list(config, store);
      if (command === 'clean') return await clean(config, store);
      if (command === 'fraud')
        return await fraudCommand({ config, store, lift: values.lift, out, err });
      return await clear(config, store);
    } finally {
      await store.close().catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(paintErr('red', error.message));
      err();
      err(USAGE);
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
  }
}

// A reader that stops early (`cli list | head`) closes the pipe; that ends the listing, it is not
// a failure worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT_OK);
});

void main(process.argv.slice(2)).then((code) => {
  // exitCode rather than exit(): output still buffered for a pipe is written before the end.
  process.exitCode = code;
});
