import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type { Store } from '../../src/store/types';
import verifySpec from '../providers/spec/twilio-verify-v2.json';
import { buildTestApp, type TestApp } from '../support/app';
import { type OpenApiFragment, OpenApiValidator } from '../support/openapi';

export const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const AUTH_TOKEN = 'compat-token-of-at-least-32-bytes-long';

export const spec = new OpenApiValidator(verifySpec as OpenApiFragment);
const ERROR_SCHEMA = spec.responseSchema(
  'POST',
  '/v2/Services/VA00000000000000000000000000000000/Verifications',
  429,
  'application/json',
);

/** One request and answer as the SDK's own HTTP client saw them. */
export interface Exchange {
  method: string;
  url: string;
  headers: Record<string, string>;
  form: Record<string, unknown> | undefined;
  statusCode: number;
  body: unknown;
}

export interface CompatServer {
  client: twilio.Twilio;
  /** Where the server listens, and what PUBLIC_URL is: http://127.0.0.1:PORT. */
  base: string;
  app: TestApp;
  exchanges: Exchange[];
  close(): Promise<void>;
}

/**
 * A verifyd with TWILIO_COMPAT=on listening on loopback, and the official SDK pointed at it the
 * way an app does it: the Verify domain's base URL replaced, nothing else. The SDK's own HTTP
 * client does the requests; a wrapper records them so tests can hold them to the spec.
 */
export async function startCompatServer(
  options: { env?: Record<string, string>; store?: Store } = {},
): Promise<CompatServer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const app = buildTestApp({
    env: {
      TWILIO_COMPAT: 'on',
      TWILIO_COMPAT_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_COMPAT_AUTH_TOKEN: AUTH_TOKEN,
      ...options.env,
    },
    ...(options.store ? { store: options.store } : {}),
    publicUrl: base,
  });
  server.on('request', app.app);
  const exchanges: Exchange[] = [];
  const inner = new twilio.RequestClient();
  // The SDK's documented httpClient option: its own client, wrapped to record each exchange.
  const recording = {
    async request(opts: RequestClient.RequestOptions) {
      const response = await inner.request(opts);
      const url = new URL(opts.uri);
      for (const [name, value] of Object.entries((opts.params ?? {}) as Record<string, unknown>)) {
        if (value !== undefined) url.searchParams.set(name, String(value));
      }
      exchanges.push({
        method: opts.method.toUpperCase(),
        url: url.toString(),
        headers: { ...(opts.headers as Record<string, string>) },
        form: opts.data as Record<string, unknown> | undefined,
        statusCode: response.statusCode,
        body: typeof response.body === 'string' ? safeJson(response.body) : response.body,
      });
      return response;
    },
  } as unknown as RequestClient;
  const client = clientFor(base, ACCOUNT_SID, AUTH_TOKEN, recording);
  return {
    client,
    base,
    app,
    exchanges,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // A shared server keeps nothing of this run (services live for years).
      if (app.store.scan) {
        for await (const entry of app.store.scan()) await app.store.delete(entry.key);
      }
      await app.store.close();
    },
  };
}

/** The SDK as an app builds it, with only the Verify domain's base URL changed. */
export function clientFor(
  base: string,
  sid = ACCOUNT_SID,
  token = AUTH_TOKEN,
  httpClient?: RequestClient,
): twilio.Twilio {
  const client = twilio(sid, token, httpClient ? { httpClient } : {});
  client.verify.baseUrl = base;
  return client;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The problems of a recorded exchange against the spec: its request, and its answer's body. */
export function specProblems(exchange: Exchange): string[] {
  const url = new URL(exchange.url);
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(exchange.form ?? {})) {
    if (value !== undefined) body.append(name, String(value));
  }
  const problems = spec.validateRequest({
    method: exchange.method,
    url: `${url.pathname}${url.search}`,
    headers: {
      authorization: `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
      ...(exchange.method === 'POST'
        ? { 'content-type': 'application/x-www-form-urlencoded' }
        : {}),
    },
    body: exchange.method === 'POST' ? body.toString() : '',
  });
  if (exchange.statusCode === 204) return problems;
  // The description documents one error answer (CreateVerification's 429); every error answers
  // that body, with exactly its four fields.
  const schema =
    spec.responseSchema(exchange.method, url.pathname, exchange.statusCode, 'application/json') ??
    (exchange.statusCode >= 400 ? ERROR_SCHEMA : undefined);
  if (exchange.statusCode >= 400 && exchange.body && typeof exchange.body === 'object') {
    const fields = Object.keys(exchange.body).sort();
    if (fields.join() !== 'code,message,more_info,status') {
      problems.push(`error body has the fields ${fields.join()}`);
    }
  }
  if (!schema) return [...problems, `no documented ${exchange.statusCode} answer`];
  return [...problems, ...spec.validate(exchange.body, schema)];
}
