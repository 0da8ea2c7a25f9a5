import type { IncomingHttpHeaders } from 'node:http';

/**
 * A small OpenAPI 3 request validator for the spec fragments in test/providers/spec: exactly the
 * subset of JSON Schema those fragments use. A keyword it does not implement throws instead of
 * being skipped, so a fragment can never be checked less strictly than it reads.
 *
 * One deliberate difference from the providers: an object that lists its properties is closed
 * (an unknown name is a violation). The providers ignore unknown names, which is exactly how a
 * misspelt field (`Validityperiod`, `trackingSettings`) would go unnoticed.
 */

export type Schema = Record<string, unknown>;

export interface OpenApiFragment {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, Schema> };
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}

interface Operation {
  parameters?: Parameter[];
  security?: Record<string, unknown>[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses?: Record<string, { content?: Record<string, { schema: Schema }> }>;
}

export interface HttpRequestLike {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Keywords that only annotate; everything else must be implemented below. */
const ANNOTATIONS = new Set([
  'default',
  'description',
  'title',
  'example',
  'examples',
  'deprecated',
]);
const IMPLEMENTED = new Set([
  'type',
  'nullable',
  'enum',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'properties',
  'required',
  'additionalProperties',
  'maxProperties',
  'items',
  'maxItems',
  'uniqueItems',
  '$ref',
]);

/**
 * The string formats the fragments use. Twilio's own: `phone-number` is E.164, a channel address
 * (`whatsapp:+1...`), a short code, or an alphanumeric sender ID, as its To/From descriptions say;
 * `date-time-rfc-2822` is its "Thu, 24 Aug 2023 05:01:45 +0000"; `currency` an ISO 4217 code.
 */
const FORMATS: Record<string, (value: string) => boolean> = {
  email: (v) => /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(v),
  'phone-number': (v) =>
    /^\+[1-9]\d{1,14}$/.test(v) ||
    /^[a-z]+:\+?[\w.@-]+$/.test(v) ||
    /^\d{3,8}$/.test(v) ||
    /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/.test(v),
  uri: (v) => URL.canParse(v),
  'date-time': (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v),
  'date-time-rfc-2822': (v) =>
    /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/.test(
      v,
    ),
  currency: (v) => /^[A-Z]{3}$/.test(v),
};

export class OpenApiValidator {
  constructor(readonly spec: OpenApiFragment) {}

  /** Every way `value` breaks `schema`, as "path: problem" lines; empty when it conforms. */
  validate(value: unknown, schema: Schema, at = '$'): string[] {
    const problems: string[] = [];
    this.#check(value, schema, at, problems);
    return problems;
  }

  /** The problems of one HTTP request against the operation its method and path select. */
  validateRequest(request: HttpRequestLike): string[] {
    const url = new URL(request.url, 'http://fake.invalid');
    const match = this.#operation(request.method, url.pathname);
    if (!match) return [`no operation for ${request.method} ${url.pathname}`];
    const { operation, pathParams } = match;
    const problems: string[] = [];
    const parameters = operation.parameters ?? [];
    for (const parameter of parameters) {
      const where = `${parameter.in} ${parameter.name}`;
      const raw =
        parameter.in === 'path'
          ? pathParams[parameter.name]
          : parameter.in === 'query'
            ? (url.searchParams.get(parameter.name) ?? undefined)
            : headerValue(request.headers, parameter.name);
      if (raw === undefined) {
        if (parameter.required) problems.push(`${where}: missing`);
        continue;
      }
      // A path or query parameter is text, as a form field is: read as its schema's type.
      const value = fromForm(raw, this.#resolve(parameter.schema).type);
      problems.push(...this.validate(value, parameter.schema, where));
    }
    for (const name of url.searchParams.keys()) {
      if (!parameters.some((p) => p.in === 'query' && p.name === name)) {
        problems.push(`query ${name}: not a parameter of this operation`);
      }
    }
    problems.push(...this.#checkSecurity(operation, request.headers));
    problems.push(...this.#checkBody(operation, request));
    return problems;
  }

  /** The schema of a documented response, for checking what a fake server plays back. */
  responseSchema(method: string, path: string, status: number, type: string): Schema | undefined {
    const operation = this.#operation(method, path)?.operation;
    return operation?.responses?.[String(status)]?.content?.[type]?.schema;
  }

  #operation(method: string, pathname: string) {
    for (const [template, operations] of Object.entries(this.spec.paths)) {
      const names: string[] = [];
      const pattern = template
        .split(/(\{[^}]+\})/)
        .map((part) => {
          const name = /^\{([^}]+)\}$/.exec(part)?.[1];
          if (name === undefined) return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
          names.push(name);
          return '([^/]+)';
        })
        .join('');
      const found = new RegExp(`^${pattern}$`).exec(pathname);
      const operation = operations[method.toLowerCase()];
      if (!found || !operation) continue;
      const pathParams = Object.fromEntries(
        names.map((name, i) => [name, decodeURIComponent(found[i + 1] ?? '')]),
      );
      return { operation, pathParams };
    }
    return undefined;
  }

  #checkSecurity(operation: Operation, headers: IncomingHttpHeaders): string[] {
    const requirements = operation.security ?? [];
    if (requirements.length === 0) return [];
    const authorization = headerValue(headers, 'authorization') ?? '';
    const satisfied = requirements.some((requirement) =>
      Object.keys(requirement).every((name) => {
        const scheme = this.spec.components.securitySchemes?.[name];
        if (scheme?.type !== 'http') throw new Error(`security scheme ${name} not supported`);
        if (scheme.scheme === 'basic') {
          const decoded = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization)?.[1];
          return decoded !== undefined && Buffer.from(decoded, 'base64').toString().includes(':');
        }
        if (scheme.scheme === 'bearer') return /^Bearer \S+$/.test(authorization);
        throw new Error(`http scheme ${String(scheme.scheme)} not supported`);
      }),
    );
    return satisfied ? [] : ['header Authorization: does not meet the operation security'];
  }

  #checkBody(operation: Operation, request: HttpRequestLike): string[] {
    const content = operation.requestBody?.content;
    if (!content) return request.body === '' ? [] : ['body: this operation takes none'];
    const type = (headerValue(request.headers, 'content-type') ?? '').split(';')[0]?.trim() ?? '';
    const media = content[type];
    if (!media)
      return [
        `header Content-Type: ${type || '(none)'} is not one of ${Object.keys(content).join(', ')}`,
      ];
    if (type === 'application/json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(request.body);
      } catch {
        return ['body: not JSON'];
      }
      return this.validate(parsed, media.schema, 'body');
    }
    if (type === 'application/x-www-form-urlencoded') {
      const { value, problems } = this.#readForm(request.body, media.schema);
      return [...problems, ...this.validate(value, media.schema, 'body')];
    }
    throw new Error(`media type ${type} not supported`);
  }

  /**
   * A form carries only strings: each field is turned into the type its schema declares, so the
   * schema's own checks apply. A field that is not an array may occur once.
   */
  #readForm(body: string, schema: Schema) {
    const form = new URLSearchParams(body);
    const properties = (this.#resolve(schema).properties ?? {}) as Record<string, Schema>;
    const value: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const name of new Set(form.keys())) {
      const all = form.getAll(name);
      const property = properties[name] ? this.#resolve(properties[name]) : undefined;
      if (property?.type === 'array') {
        const items = this.#resolve((property.items ?? {}) as Schema);
        value[name] = all.map((v) => fromForm(v, items.type));
        continue;
      }
      if (all.length > 1) problems.push(`body.${name}: sent ${all.length} times`);
      value[name] = fromForm(all[0] ?? '', property?.type);
    }
    return { value, problems };
  }

  #resolve(schema: Schema): Schema {
    const ref = schema.$ref;
    if (typeof ref !== 'string') return schema;
    const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
    const target = name === undefined ? undefined : this.spec.components.schemas?.[name];
    if (!target) throw new Error(`unresolved $ref ${ref}`);
    // OpenAPI 3.1 allows siblings next to $ref; 3.0 ignores them. Both fragments only add
    // annotations or a repeated `type` there, so the target decides.
    return this.#resolve(target);
  }

  #check(value: unknown, given: Schema, at: string, problems: string[]): void {
    for (const keyword of Object.keys(given)) {
      if (!IMPLEMENTED.has(keyword) && !ANNOTATIONS.has(keyword) && !keyword.startsWith('x-')) {
        throw new Error(`${at}: schema keyword ${keyword} is not implemented by this validator`);
      }
    }
    const schema = this.#resolve(given);
    if (schema !== given) {
      this.#check(value, schema, at, problems);
      return;
    }
    if (value === null) {
      if (schema.nullable !== true && schema.type !== undefined) problems.push(`${at}: null`);
      return;
    }
    if (typeof schema.type === 'string' && !hasType(value, schema.type)) {
      problems.push(`${at}: expected ${schema.type}, got ${describe(value)}`);
      return;
    }
    if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
      problems.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
    }
    if (typeof value === 'string') this.#checkString(value, schema, at, problems);
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) {
        problems.push(`${at}: ${value} is below ${schema.minimum}`);
      }
      if (typeof schema.maximum === 'number' && value > schema.maximum) {
        problems.push(`${at}: ${value} is above ${schema.maximum}`);
      }
    }
    if (Array.isArray(value)) this.#checkArray(value, schema, at, problems);
    else if (typeof value === 'object') {
      this.#checkObject(value as Record<string, unknown>, schema, at, problems);
    }
  }

  #checkString(value: string, schema: Schema, at: string, problems: string[]): void {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) {
      problems.push(`${at}: shorter than ${schema.minLength}`);
    }
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) {
      problems.push(`${at}: longer than ${schema.maxLength}`);
    }
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
      problems.push(`${at}: does not match ${schema.pattern}`);
    }
    if (typeof schema.format === 'string') {
      const format = FORMATS[schema.format];
      if (!format) throw new Error(`${at}: format ${schema.format} is not implemented`);
      if (!format(value)) problems.push(`${at}: not a valid ${schema.format}`);
    }
  }

  #checkArray(value: unknown[], schema: Schema, at: string, problems: string[]): void {
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      problems.push(`${at}: more than ${schema.maxItems} items`);
    }
    if (schema.uniqueItems === true) {
      const seen = new Set(value.map((item) => JSON.stringify(item)));
      if (seen.size !== value.length) problems.push(`${at}: items are not unique`);
    }
    if (schema.items) {
      value.forEach((item, i) => {
        this.#check(item, schema.items as Schema, `${at}[${i}]`, problems);
      });
    }
  }

  #checkObject(
    value: Record<string, unknown>,
    schema: Schema,
    at: string,
    problems: string[],
  ): void {
    const properties = schema.properties as Record<string, Schema> | undefined;
    const keys = Object.keys(value);
    for (const name of (schema.required as string[] | undefined) ?? []) {
      if (!(name in value)) problems.push(`${at}.${name}: required`);
    }
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties) {
      problems.push(`${at}: more than ${schema.maxProperties} properties`);
    }
    for (const name of keys) {
      const property = properties?.[name];
      if (property) {
        this.#check(value[name], property, `${at}.${name}`, problems);
      } else if (typeof schema.additionalProperties === 'object') {
        this.#check(value[name], schema.additionalProperties as Schema, `${at}.${name}`, problems);
      } else if (
        schema.additionalProperties === false ||
        (properties && schema.additionalProperties === undefined)
      ) {
        problems.push(`${at}.${name}: not a property of this schema`);
      }
    }
  }
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      throw new Error(`type ${type} is not implemented`);
  }
}

function describe(value: unknown): string {
  return Array.isArray(value) ? 'array' : typeof value;
}

/** A form value as the type its schema declares, or left a string when it does not fit. */
function fromForm(raw: string, type: unknown): unknown {
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (type === 'boolean' && (raw === 'true' || raw === 'false')) return raw === 'true';
  return raw;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}
