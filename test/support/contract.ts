/**
 * Every answer an app built by buildTestApp gives, checked against the OpenAPI document that same
 * app serves (app.locals.openapi): the status must be one the operation lists, the media type one
 * of its contents, and a JSON body must match its schema. A request no operation covers must get
 * a documented error ({"error":{"code"}} with the code's own status). Violations are collected
 * here and fail the test they happened in (test/support/contract-setup.ts), so the document
 * cannot drift from what the server does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import { ERROR_STATUS } from '../../src/errors';

type Json = Record<string, unknown>;

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: Json }>; headers?: Json }>;
}

export interface Exchange {
  method: string;
  url: string;
  status: number;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  body: string;
}

/** What the suites answered that the document does not describe, until a test collects it. */
export const violations: string[] = [];
/** How many answers were checked, so a test can see the check runs at all. */
export const checked = { count: 0 };

interface CompiledDocument {
  operations: { method: string; pattern: RegExp; path: string; operation: Operation }[];
  validators: Map<Json, ValidateFunction>;
  ajv: Ajv2020;
  document: Json;
}

const compiled = new WeakMap<Json, CompiledDocument>();

function compile(document: Json): CompiledDocument {
  const known = compiled.get(document);
  if (known) return known;
  // strict: false because the document is OpenAPI, not a schema; schemas inside it are compiled
  // with the components beside them so their $refs resolve.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const operations: CompiledDocument['operations'] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    const literal = (part: string) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    const pattern = new RegExp(
      `^${path
        .split(/\{\w+\}/)
        .map(literal)
        .join('[^/]+')}$`,
    );
    for (const [method, operation] of Object.entries(item)) {
      operations.push({ method, pattern, path, operation: operation as Operation });
    }
  }
  const result = { operations, validators: new Map(), ajv, document };
  compiled.set(document, result);
  return result;
}

function validatorFor(doc: CompiledDocument, schema: Json): ValidateFunction {
  let validate = doc.validators.get(schema);
  if (!validate) {
    validate = doc.ajv.compile({ ...schema, components: doc.document.components });
    doc.validators.set(schema, validate);
  }
  return validate;
}

const mediaType = (value: string | undefined) => value?.split(';')[0]?.trim().toLowerCase();

/** The problems with one answer, against `document`; empty when it conforms. */
export function checkExchange(document: Json, exchange: Exchange): string[] {
  const doc = compile(document);
  // Express routes are not strict: /dev/ is served by the route for /dev.
  const path = new URL(exchange.url, 'http://x').pathname.replace(/(.)\/$/, '$1');
  const method = exchange.method.toLowerCase();
  const type = mediaType(exchange.contentType);
  const problems: string[] = [];
  const where = `${exchange.method} ${path} → ${exchange.status}`;
  if (exchange.status === 429 && exchange.headers['retry-after'] === undefined) {
    problems.push(`${where}: a 429 without Retry-After`);
  }
  const found = doc.operations.find((op) => op.method === method && op.pattern.test(path));
  if (!found) {
    // Outside every operation only the documented error shape may answer.
    let body: Json | undefined;
    try {
      body = JSON.parse(exchange.body) as Json;
    } catch {
      body = undefined;
    }
    const code = (body?.error as Json | undefined)?.code as keyof typeof ERROR_STATUS | undefined;
    // Under /v2 the Twilio-compatible API answers unknown resources in Twilio's error shape.
    const twilioShaped =
      path.startsWith('/v2/') &&
      typeof body?.code === 'number' &&
      typeof body?.message === 'string' &&
      body?.status === exchange.status;
    if (twilioShaped) return problems;
    if (type !== 'application/json' || !code || ERROR_STATUS[code] !== exchange.status) {
      problems.push(
        `${where}: no operation, and not a documented error: ${exchange.body.slice(0, 200)}`,
      );
    }
    return problems;
  }
  const response = found.operation.responses[String(exchange.status)];
  if (!response) {
    problems.push(`${where}: status not in the document for ${found.method} ${found.path}`);
    return problems;
  }
  if (!response.content) {
    if (exchange.body !== '') problems.push(`${where}: a body where the document has none`);
    return problems;
  }
  const media = type && (response.content[type] ?? response.content['*/*']);
  if (!media) {
    problems.push(
      `${where}: ${type ?? 'no content type'} is not one of ${Object.keys(response.content).join(', ')}`,
    );
    return problems;
  }
  if (type === 'application/json' && media.schema) {
    let body: unknown;
    try {
      body = JSON.parse(exchange.body);
    } catch {
      problems.push(`${where}: not JSON: ${exchange.body.slice(0, 200)}`);
      return problems;
    }
    const validate = validatorFor(doc, media.schema);
    if (!validate(body)) {
      problems.push(
        `${where}: ${doc.ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`,
      );
    }
  }
  return problems;
}

/**
 * Records the answer to each request and checks it once it is sent. JSON bodies are captured as
 * they are written; other bodies (the docs page's scripts) only count their presence.
 */
function watch(document: Json, req: IncomingMessage, res: ServerResponse): void {
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  // Preflights and HEAD answer with the headers of another method; CORS has its own tests.
  if (method === 'OPTIONS' || method === 'HEAD') return;
  const chunks: Buffer[] = [];
  let bytes = 0;
  const capture = (chunk: unknown, encoding?: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buffer = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(
          chunk as string,
          typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
        );
    bytes += buffer.length;
    if (mediaType(res.getHeader('content-type') as string | undefined) === 'application/json') {
      chunks.push(buffer);
    }
  };
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((...args: unknown[]) => {
    capture(args[0], args[1]);
    return write(...args);
  }) as typeof res.write;
  res.end = ((...args: unknown[]) => {
    capture(args[0], args[1]);
    return end(...args);
  }) as typeof res.end;
  res.once('finish', () => {
    checked.count++;
    const body = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : bytes > 0 ? '…' : '';
    violations.push(
      ...checkExchange(document, {
        method,
        url,
        status: res.statusCode,
        contentType: res.getHeader('content-type') as string | undefined,
        headers: res.getHeaders(),
        body,
      }),
    );
  });
}

/**
 * `app`, with every answer checked against the document it serves. A Proxy, so everything else
 * (app.listen, app.get('trust proxy'), supertest's use of it as a request listener) is untouched.
 */
export function checkedAgainstDocument(app: Express): Express {
  const document = app.locals.openapi as Json | undefined;
  if (!document) throw new Error('the app has no OpenAPI document in app.locals.openapi');
  return new Proxy(app, {
    apply(target, thisArg, args: [IncomingMessage, ServerResponse, ...unknown[]]) {
      watch(document, args[0], args[1]);
      return Reflect.apply(target, thisArg, args);
    },
  });
}
