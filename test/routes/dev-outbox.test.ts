/**
 * The outbox API a CI suite and the dev inbox page read: each message's code and link as fields
 * of their own, the long poll that waits for a message instead of sleeping, clearing one recipient,
 * and the event stream the page listens to. All through the assembled app.
 */
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';

const PHONE = '+15551234567';
const OTHER = '+15557654321';
const EMAIL = 'ada@example.com';

/** The app on a loopback port, for the requests that stay open: a long poll, an event stream. */
async function listen(app: Express): Promise<{ base: string; close: () => void }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('GET /dev/outbox: code and link', () => {
  it('gives the code of an SMS, and that code verifies the number', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const [message] = (await request(app).get('/dev/outbox').query({ to: PHONE })).body.messages;
    expect(message).toMatchObject({ channel: 'sms', code: expect.stringMatching(/^\d{6}$/) });
    expect(message.link).toBeNull();
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: message.code })
      .expect(200);
  });

  it('reads the code where SMS_TEMPLATE puts it, not other digits of the text', async () => {
    const { app } = buildTestApp({
      env: { SMS_TEMPLATE: 'Acme 2026 (ref 4711): {code} is your code. Acme 2026' },
    });
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const [message] = (await request(app).get('/dev/outbox').query({ to: PHONE })).body.messages;
    expect(message.body).toMatch(/^Acme 2026 \(ref 4711\): \d{6} is your code\. Acme 2026$/);
    expect(message.code).toBe(/: (\d{6}) is/.exec(message.body)?.[1]);
    await request(app)
      .post('/verify-phone-code')
      .send({ phone: PHONE, code: message.code })
      .expect(200);
  });

  it('gives the link of an email and its HTML, and that link confirms the address', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-email').send({ email: EMAIL }).expect(202);
    const [message] = (await request(app).get('/dev/outbox').query({ to: EMAIL })).body.messages;
    expect(message.code).toBeNull();
    expect(message.html).toContain('<a href="');
    const link = new URL(message.link);
    expect(link.pathname).toBe('/verify-email-token');
    expect(message.body).toContain(message.link);
    const confirmed = await request(app)
      .post('/verify-email-token')
      .send({ token: link.searchParams.get('token') })
      .expect(200);
    expect(confirmed.body).toMatchObject({ verified: true, email: EMAIL });
  });
});

describe('DELETE /dev/outbox?to=', () => {
  it('clears one recipient and leaves the others', async () => {
    const { app } = buildTestApp();
    for (const phone of [PHONE, OTHER, PHONE]) {
      await request(app).post('/verify-phone').send({ phone }).expect(202);
    }
    // As people type it: spaces in the number.
    await request(app).delete('/dev/outbox').query({ to: '+1 555 123 4567' }).expect(204);
    const left = (await request(app).get('/dev/outbox')).body.messages;
    expect(left.map((m: { to: string }) => m.to)).toEqual([OTHER]);
  });
});

describe('GET /dev/outbox/latest', () => {
  it('answers the newest message to the recipient at once when there is one', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    await request(app).post('/verify-phone').send({ phone: OTHER }).expect(202);
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const all = (await request(app).get('/dev/outbox').query({ to: PHONE })).body.messages;
    const latest = await request(app).get('/dev/outbox/latest').query({ to: PHONE }).expect(200);
    expect(latest.headers['cache-control']).toBe('no-store');
    expect(latest.body).toEqual({ message: all.at(-1) });
  });

  it('waits for a message that is sent while it waits', async () => {
    const { app, outbox } = buildTestApp();
    const { base, close } = await listen(app);
    try {
      const waiting = fetch(`${base}/dev/outbox/latest?to=${encodeURIComponent(PHONE)}&wait=20`);
      // The poll is waiting before anything is sent.
      while (outbox.listenerCount === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await request(app).post('/verify-phone').send({ phone: OTHER }).expect(202);
      await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
      const answer = await waiting;
      expect(answer.status).toBe(200);
      const { message } = (await answer.json()) as { message: { to: string; code: string } };
      expect(message.to).toBe(PHONE);
      await request(app)
        .post('/verify-phone-code')
        .send({ phone: PHONE, code: message.code })
        .expect(200);
      expect(outbox.listenerCount).toBe(0);
    } finally {
      close();
    }
  });

  it('stops waiting when the client goes away', async () => {
    const { app, outbox } = buildTestApp();
    const { base, close } = await listen(app);
    try {
      const gone = new AbortController();
      const waiting = fetch(`${base}/dev/outbox/latest?wait=30`, { signal: gone.signal });
      while (outbox.listenerCount === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      gone.abort();
      await expect(waiting).rejects.toThrow();
      // The server notices the closed connection and drops its listener and timer.
      while (outbox.listenerCount > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(outbox.listenerCount).toBe(0);
    } finally {
      close();
    }
  });

  it('with after=<id>, ignores that message and older ones', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const first = (await request(app).get('/dev/outbox/latest').query({ to: PHONE })).body.message;
    const stale = await request(app)
      .get('/dev/outbox/latest')
      .query({ to: PHONE, after: first.id, wait: '0.2' })
      .expect(404);
    expect(stale.body.error).toEqual({
      code: 'not_found',
      message: `No message to ${PHONE} newer than the one named by after arrived within 0.2 s.`,
    });
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const fresh = await request(app)
      .get('/dev/outbox/latest')
      .query({ to: PHONE, after: first.id })
      .expect(200);
    expect(fresh.body.message.id).not.toBe(first.id);
    expect(fresh.body.message.code).toMatch(/^\d{6}$/);
  });

  it('answers 404 not_found when nothing arrives within the wait', async () => {
    const { app } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: OTHER }).expect(202);
    const answer = await request(app)
      .get('/dev/outbox/latest')
      .query({ to: PHONE, wait: '0.2' })
      .expect(404);
    expect(answer.body.error).toEqual({
      code: 'not_found',
      message: `No message to ${PHONE} arrived within 0.2 s.`,
    });
  });

  it.each([
    ['a wait past the bound', { wait: '31' }, 'wait'],
    ['a negative wait', { wait: '-1' }, 'wait'],
    ['a wait that is no number', { wait: 'soon' }, 'wait'],
    ['a repeated recipient', { to: [PHONE, OTHER] }, 'to'],
  ])('refuses %s with 400 invalid_request', async (_label, query, field) => {
    const { app } = buildTestApp();
    const answer = await request(app).get('/dev/outbox/latest').query(query).expect(400);
    expect(answer.body.error).toMatchObject({ code: 'invalid_request', field });
  });

  it('refuses a misspelt or bracketed filter instead of ignoring it, on every outbox route', async () => {
    const { app, outbox } = buildTestApp();
    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    await request(app).post('/verify-phone').send({ phone: OTHER }).expect(202);
    for (const path of ['/dev/outbox?to[]=x', '/dev/outbox/latest?to[]=x', '/dev/outbox?To=x']) {
      const answer = await request(app).get(path).expect(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_request' });
    }
    // A DELETE with a filter it cannot read would have emptied the whole outbox.
    await request(app).delete('/dev/outbox?to[]=x').expect(400);
    expect(outbox.list()).toHaveLength(2);
  });
});

interface StreamEvent {
  event: string;
  data: unknown;
}

/** Reads server-sent events from a fetch response, one at a time. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async function next(): Promise<StreamEvent | undefined> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split('\n');
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
        // Comments (heartbeats) and the retry line carry no event.
        if (event !== undefined && data !== undefined) return { event, data: JSON.parse(data) };
        continue;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

describe('GET /dev/outbox/events', () => {
  let test: TestApp;
  let base: string;
  let close: () => void;

  beforeEach(async () => {
    test = buildTestApp();
    ({ base, close } = await listen(test.app));
  });

  afterEach(() => close());

  it('sends the outbox, then every message and every clearing as it happens', async () => {
    const { app } = test;
    await request(app).post('/verify-phone').send({ phone: OTHER }).expect(202);
    const stream = await fetch(`${base}/dev/outbox/events`);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers.get('cache-control')).toBe('no-store');
    const next = eventReader(stream.body!);

    const snapshot = await next();
    expect(snapshot).toMatchObject({ event: 'snapshot', data: { messages: [{ to: OTHER }] } });

    await request(app).post('/verify-phone').send({ phone: PHONE }).expect(202);
    const added = await next();
    expect(added).toMatchObject({ event: 'added', data: { to: PHONE, channel: 'sms' } });
    const { code } = added!.data as { code: string };
    await request(app).post('/verify-phone-code').send({ phone: PHONE, code }).expect(200);

    await request(app).delete('/dev/outbox').query({ to: PHONE }).expect(204);
    expect(await next()).toEqual({ event: 'cleared', data: { to: PHONE } });
    await request(app).delete('/dev/outbox').expect(204);
    expect(await next()).toEqual({ event: 'cleared', data: { to: null } });
  });

  it('ends when the outbox closes, as the server does on shutdown', async () => {
    const stream = await fetch(`${base}/dev/outbox/events`);
    const next = eventReader(stream.body!);
    expect((await next())?.event).toBe('snapshot');
    test.outbox.close();
    expect(await next()).toBeUndefined();
  });
});
