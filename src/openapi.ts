import { z } from 'zod';
import { ERROR_STATUS, type ErrorCode } from './errors';

export type JsonSchema = Record<string, unknown>;

export interface ResponseDoc {
  description: string;
  /** A JSON body, described by the schema the handler's answer is built to. */
  body?: z.ZodType;
  /** A body that is not JSON: its media type, and a schema for it when it has one. */
  media?: { type: string; schema?: JsonSchema };
  headers?: Record<string, { description: string; schema: JsonSchema }>;
}

/**
 * One operation of the API, as the route that serves it declares it. Request bodies are the very
 * zod schemas the handlers parse with, so the document says what the server accepts.
 */
export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI form: `/v2/Services/{sid}`, not Express's `:sid`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  /** A JSON request body (the handler's own zod schema) ... */
  body?: z.ZodType;
  /** ... with extra properties or keywords zod cannot express (a refinement's rule). */
  bodyExtra?: JsonSchema;
  /** Also accepts the same fields as an HTML form (application/x-www-form-urlencoded). */
  form?: boolean;
  query?: Record<string, { description: string; schema: JsonSchema; required?: boolean }>;
  /** The operation needs the bearer token of the named scheme. */
  security?: string;
  responses: Record<number, ResponseDoc>;
  /** Error codes the operation can answer; the status of each comes from src/errors.ts. */
  errors: readonly ErrorCode[];
}

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
  /** Tags in the order a reader should meet them; any others follow in the order routes came. */
  tags?: readonly string[];
}

const ERROR_DETAILS: Record<string, JsonSchema> = {
  field: { type: 'string', description: 'invalid_request: the field at fault' },
  attemptsRemaining: { type: 'integer', description: 'invalid_code: checks left on this code' },
  retryAfter: { type: 'integer', description: 'Seconds to wait, as in Retry-After' },
  outcome: {
    enum: ['refused', 'unknown'],
    description: 'delivery_failed: whether the message may still arrive',
  },
  kind: { type: 'string', description: 'challenge_*: the bot protection asking' },
  reason: { type: 'string', description: 'challenge_failed: why the proof was refused' },
  country: { type: 'string', description: 'country_not_allowed: the number’s region' },
  numberType: {
    type: 'string',
    description: 'number_type_not_allowed: the kind of number refused (premium_rate, voip, …)',
  },
};

/** Statuses whose answers carry Retry-After. */
const RETRY_AFTER_STATUSES = new Set([429, 503]);
/** Refusals at other statuses that carry it too: blocks that end at a known time. */
const RETRY_AFTER_CODES: ReadonlySet<ErrorCode> = new Set([
  'prefix_blocked',
  'destination_suspended',
]);

/**
 * JSON Schema (2020-12, OpenAPI 3.1's dialect) of a zod schema. Request bodies are described as
 * input (defaults make fields optional), responses as output. zod keeps a regex's flags to itself,
 * so a flagged pattern would be documented stricter or looser than it is: refuse it.
 */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'throw',
    override: ({ zodSchema }) => {
      const def = (zodSchema as { _zod?: { def?: { checks?: unknown[] } } })._zod?.def;
      for (const check of def?.checks ?? []) {
        const pattern = (check as { _zod?: { def?: { pattern?: RegExp } } })._zod?.def?.pattern;
        if (pattern && pattern.flags.replace('g', '') !== '') {
          throw new Error(`pattern ${pattern} has flags JSON Schema cannot carry`);
        }
      }
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/**
 * The routes an app serves, each added by the code that mounts it, and the OpenAPI 3.1 document
 * made from them. A new set of routes (a Twilio-compatible /v2, a page under /dev) adds its
 * RouteDocs where it is mounted, and the document, the docs page and the contract tests follow.
 */
export class ApiRegistry {
  readonly #routes: RouteDoc[] = [];
  readonly #schemes: Record<string, JsonSchema> = {};

  add(...routes: RouteDoc[]): this {
    this.#routes.push(...routes);
    return this;
  }

  /** A security scheme operations can name in `security`. */
  addSecurityScheme(name: string, scheme: JsonSchema): this {
    this.#schemes[name] = scheme;
    return this;
  }

  get routes(): readonly RouteDoc[] {
    return this.#routes;
  }

  document(info: DocumentInfo): JsonSchema {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const route of this.#routes) {
      const item = paths[route.path] ?? {};
      paths[route.path] = item;
      if (item[route.method]) throw new Error(`${route.method} ${route.path} is declared twice`);
      item[route.method] = operation(route);
    }
    const used = [...new Set(this.#routes.map((route) => route.tag))];
    const tags = [
      ...(info.tags ?? []).filter((tag) => used.includes(tag)),
      ...used.filter((tag) => !info.tags?.includes(tag)),
    ];
    return {
      openapi: '3.1.1',
      info: { title: info.title, version: info.version, description: info.description },
      tags: tags.map((name) => ({ name })),
      paths,
      components: {
        schemas: { Error: errorSchema(Object.keys(ERROR_STATUS) as ErrorCode[]) },
        ...(Object.keys(this.#schemes).length > 0 ? { securitySchemes: this.#schemes } : {}),
      },
    };
  }
}

/** `{"error":{"code","message",...details}}` with `code` one of `codes`. */
function errorSchema(codes: readonly ErrorCode[]): JsonSchema {
  return {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: { enum: [...codes] },
          message: { type: 'string' },
          ...ERROR_DETAILS,
        },
      },
    },
  };
}

function operation(route: RouteDoc): JsonSchema {
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    responses[status] = responseObject(response);
  }
  // Each status the route's errors map to, with exactly the codes it can answer at that status.
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of route.errors) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    if (responses[status])
      throw new Error(`${route.path}: ${status} is both a success and an error`);
    responses[status] = {
      description: codes.map((code) => `\`${code}\``).join(', '),
      ...(RETRY_AFTER_STATUSES.has(status) || codes.some((code) => RETRY_AFTER_CODES.has(code))
        ? { headers: retryAfterHeader() }
        : {}),
      content: {
        'application/json': {
          schema: {
            allOf: [
              { $ref: '#/components/schemas/Error' },
              { properties: { error: { properties: { code: { enum: codes } } } } },
            ],
          },
        },
        // A form posted by a person's browser is answered with a page, at the same status.
        ...(route.form ? { 'text/html': {} } : {}),
      },
    };
  }
  const parameters = [
    ...[...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
    })),
    ...Object.entries(route.query ?? {}).map(([name, query]) => ({
      name,
      in: 'query',
      description: query.description,
      required: query.required ?? false,
      schema: query.schema,
    })),
  ];
  return {
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    operationId: `${route.method}${route.path.replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c?: string) => (c ?? '').toUpperCase())}`,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body ? { requestBody: requestBody(route) } : {}),
    ...(route.security ? { security: [{ [route.security]: [] }] } : {}),
    responses,
  };
}

function requestBody(route: RouteDoc): JsonSchema {
  const schema = { ...jsonSchemaOf(route.body as z.ZodType, 'input'), ...route.bodyExtra };
  const properties = route.bodyExtra?.properties as JsonSchema | undefined;
  if (properties) {
    schema.properties = {
      ...(jsonSchemaOf(route.body as z.ZodType, 'input').properties as JsonSchema),
      ...properties,
    };
  }
  return {
    required: true,
    content: {
      'application/json': { schema },
      ...(route.form ? { 'application/x-www-form-urlencoded': { schema } } : {}),
    },
  };
}

function responseObject(response: ResponseDoc): JsonSchema {
  const content = {
    ...(response.body
      ? { 'application/json': { schema: jsonSchemaOf(response.body, 'output') } }
      : {}),
    ...(response.media
      ? { [response.media.type]: response.media.schema ? { schema: response.media.schema } : {} }
      : {}),
  };
  return {
    description: response.description,
    ...(response.headers ? { headers: response.headers } : {}),
    ...(Object.keys(content).length > 0 ? { content } : {}),
  };
}

function retryAfterHeader(): Record<string, unknown> {
  return {
    'Retry-After': {
      description:
        'Seconds to wait before the same request can succeed (429, 503 where known, and a 403 block that ends)',
      schema: { type: 'integer', minimum: 1 },
    },
  };
}
