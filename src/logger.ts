import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Field paths that may carry a code, a token or a secret. Redaction is a second line of defence:
 * the code never passes these values to the logger in the first place.
 */
export const REDACT_PATHS = [
  'code',
  'token',
  'proof',
  'secret',
  'password',
  'answer',
  'altcha',
  'challengeSession',
  '*.code',
  '*.token',
  '*.proof',
  '*.secret',
  '*.answer',
  '*.body',
  '*.text',
  '*.html',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-verifyd-signature"]',
  'res.headers["set-cookie"]',
];

/**
 * `*.code` also matches an error's own code (`err.code: "ECONNREFUSED"`), which is what an operator
 * needs to see. Node's error codes are upper-case names (ECONNRESET, ERR_SOCKET_CLOSED), never the
 * digits of a one-time code, so those pass and everything else at a redacted path is censored.
 */
export function censor(value: unknown): unknown {
  return typeof value === 'string' && /^E(RR_)?[A-Z][A-Z0-9_]*$/.test(value) ? value : '[redacted]';
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go; tests pass a stream to capture output. Defaults to stdout. */
  destination?: pino.DestinationStream;
  /**
   * Coloured, one-line-per-event text for a person at a terminal instead of JSON, when pino-pretty
   * is installed (a development dependency: an install without them logs JSON).
   */
  pretty?: boolean;
  /** Fields on every line, e.g. the worker's id and pid. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor },
      base: { service: 'verifyd', ...options.base },
    },
    options.destination ?? (options.pretty ? prettyStream() : undefined) ?? stdout(),
  );
}

type Destination = ReturnType<typeof pino.destination>;

/** The stdout destinations createLogger made, which settleLogs() waits for. */
const destinations = new Set<Destination>();

/** stdout, written asynchronously so that a request never waits for its log line. */
function stdout(): Destination {
  const destination = pino.destination({ sync: false });
  destinations.add(destination);
  return destination;
}

/**
 * Resolves once every line the loggers have taken is written to stdout, or a write has failed, or
 * `boundMs` have passed. Call it before process.exit(). Why: at exit, pino writes what is left
 * with sonic-boom's flushSync, which retries a failed write for ever; when the reader of a piped
 * stdout has gone (a log shipper that died), a stopping process would spin there and never end.
 * A write that fails here, asynchronously, makes pino turn the stream off instead (EPIPE), and a
 * stream that is drained leaves the exit nothing to write.
 */
export function settleLogs(boundMs = 1000): Promise<void> {
  const waits = [...destinations].map(
    (destination) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          destination.off('drain', done);
          destination.off('error', done);
          resolve();
        };
        const timer = setTimeout(done, boundMs);
        destination.once('drain', done);
        destination.once('error', done);
        // An empty write: a stream with nothing in flight writes it at once and drains, one with
        // lines in flight drains after them. (A stream pino has turned off ignores it: the bound.)
        try {
          destination.write('');
        } catch {
          done(); // ended already: nothing is left to write
        }
      }),
  );
  return Promise.all(waits).then(() => undefined);
}

/**
 * pino-pretty writing to stdout in this process (not a worker thread, so a line is on the screen
 * before the process exits), or undefined when it is not installed.
 */
function prettyStream(): pino.DestinationStream | undefined {
  let pretty: (options: Record<string, unknown>) => pino.DestinationStream;
  try {
    pretty = require('pino-pretty') as typeof pretty;
  } catch {
    return undefined;
  }
  return pretty({
    colorize: true,
    translateTime: 'HH:MM:ss.l',
    // The service name is on every line and says nothing at a terminal.
    ignore: 'service',
    sync: true,
  });
}

/** Whether logs should be pretty: a person at a terminal, in development. */
export function wantsPrettyLogs(
  nodeEnv: string,
  stdout: { isTTY?: boolean } = process.stdout,
): boolean {
  return nodeEnv === 'development' && stdout.isTTY === true;
}
