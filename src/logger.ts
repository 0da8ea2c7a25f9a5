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
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor },
      base: { service: 'verifyd' },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
