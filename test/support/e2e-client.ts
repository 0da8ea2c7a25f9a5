/**
 * An outside client of a running verifyd: plain fetch over loopback, every call bounded in time.
 * End-to-end suites use only this (or curl, or altcha-lib), never the app's own modules.
 */

export interface JsonAnswer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field by the tests
  body: any;
}

const TIMEOUT_MS = 10_000;

export async function getJson(url: string): Promise<JsonAnswer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export async function postJson(url: string, body: unknown): Promise<JsonAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export interface OutboxMessage {
  channel: string;
  to: string;
  subject?: string;
  body: string;
}

/** The newest message GET /dev/outbox holds for `to`; fails when there is none. */
export async function lastMessage(baseUrl: string, to: string): Promise<OutboxMessage> {
  const { status, body } = await getJson(`${baseUrl}/dev/outbox?to=${encodeURIComponent(to)}`);
  if (status !== 200) throw new Error(`GET /dev/outbox answered ${status}`);
  const messages = body.messages as OutboxMessage[];
  const last = messages.at(-1);
  if (!last) throw new Error(`the outbox has no message to ${to}`);
  return last;
}

/** The code of the newest SMS to `phone`, as a person would read it off the message. */
export async function lastCode(baseUrl: string, phone: string, length = 6): Promise<string> {
  const { body } = await lastMessage(baseUrl, phone);
  const code = new RegExp(`\\b(\\d{${length}})\\b`).exec(body)?.[1];
  if (!code) throw new Error(`no ${length}-digit code in: ${body}`);
  return code;
}
