import { Writable } from 'node:stream';
import { DeliveryFailedError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../../src/providers/mock';
import type { OutboxMessage } from '../../src/providers/types';

const CODE = '493817';
const LINK = 'https://verify.example.com/email/confirm?token=secret-token-value';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function entry(to: string, body = 'hello'): OutboxMessage {
  return { id: `${to}-${body}`, channel: 'sms', to, body, sentAt: new Date().toISOString() };
}

/** A logger at the most verbose level writing into memory, so nothing can hide below the level. */
function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), output: () => lines.join('') };
}

describe('Outbox', () => {
  it('keeps at most its capacity, dropping the oldest first', () => {
    const outbox = new Outbox(3);
    for (const n of [1, 2, 3, 4, 5]) outbox.add(entry('+15550000000', `m${n}`));

    expect(outbox.size).toBe(3);
    expect(outbox.list().map((m) => m.body)).toEqual(['m3', 'm4', 'm5']);
  });

  it('lists newest last and filters by exact recipient', () => {
    const outbox = new Outbox(10);
    outbox.add(entry('+15550000001', 'a'));
    outbox.add(entry('+15550000002', 'b'));
    outbox.add(entry('+15550000001', 'c'));

    expect(outbox.list({ to: '+15550000001' }).map((m) => m.body)).toEqual(['a', 'c']);
    expect(outbox.list({ to: '+1555000000' })).toEqual([]);
    expect(outbox.list().map((m) => m.body)).toEqual(['a', 'b', 'c']);
  });

  it('hands out copies, so callers cannot rewrite what was sent', () => {
    const outbox = new Outbox(10);
    const original = entry('+15550000001', 'a');
    outbox.add(original);
    original.body = 'changed after add';
    const [listed] = outbox.list();
    if (listed) listed.body = 'changed after list';

    expect(outbox.list()[0]?.body).toBe('a');
  });

  it('clears', () => {
    const outbox = new Outbox(10);
    outbox.add(entry('+15550000001'));
    outbox.clear();

    expect(outbox.list()).toEqual([]);
    expect(outbox.size).toBe(0);
  });

  it('clears one recipient only', () => {
    const outbox = new Outbox(10);
    outbox.add(entry('+15550000001', 'a'));
    outbox.add(entry('+15550000002', 'b'));
    outbox.add(entry('+15550000001', 'c'));

    expect(outbox.clear({ to: '+15550000001' })).toBe(2);
    expect(outbox.list().map((m) => m.body)).toEqual(['b']);
  });

  it('finds the newest message to a recipient, after a given one', () => {
    const outbox = new Outbox(3);
    outbox.add(entry('+15550000001', 'a'));
    outbox.add(entry('+15550000002', 'b'));
    outbox.add(entry('+15550000001', 'c'));

    expect(outbox.latest({ to: '+15550000001' })?.body).toBe('c');
    expect(outbox.latest()?.body).toBe('c');
    expect(outbox.latest({ to: '+15550000002', after: '+15550000001-a' })?.body).toBe('b');
    expect(outbox.latest({ to: '+15550000001', after: '+15550000001-c' })).toBeUndefined();
    // An id the outbox no longer holds was older than all it holds.
    outbox.add(entry('+15550000002', 'd'));
    expect(outbox.latest({ to: '+15550000002', after: '+15550000001-a' })?.body).toBe('d');
  });

  it('tells listeners of each change, until they unsubscribe or the outbox closes', () => {
    const outbox = new Outbox(10);
    const heard: string[] = [];
    const unsubscribe = outbox.subscribe((event) =>
      heard.push(event.type === 'added' ? `added ${event.message.body}` : event.type),
    );
    outbox.add(entry('+15550000001', 'a'));
    outbox.clear({ to: '+15550000001' });
    expect(outbox.listenerCount).toBe(1);
    unsubscribe();
    outbox.add(entry('+15550000001', 'b'));
    expect(heard).toEqual(['added a', 'cleared']);

    outbox.subscribe((event) => heard.push(event.type));
    outbox.close();
    expect(heard.at(-1)).toBe('closed');
    expect(outbox.listenerCount).toBe(0);
    expect(outbox.closed).toBe(true);
  });

  it('waits for a matching message, and gives up at the deadline, on abort or on close', async () => {
    jest.useFakeTimers();
    try {
      const outbox = new Outbox(10);
      const found = outbox.waitForLatest({ to: '+15550000001' }, 5000);
      outbox.add(entry('+15550000002', 'other'));
      outbox.add(entry('+15550000001', 'mine'));
      expect((await found)?.body).toBe('mine');

      const late = outbox.waitForLatest({ to: '+15550000003' }, 5000);
      jest.advanceTimersByTime(5000);
      expect(await late).toBeUndefined();

      const left = new AbortController();
      const aborted = outbox.waitForLatest({ to: '+15550000003' }, 5000, left.signal);
      left.abort();
      expect(await aborted).toBeUndefined();

      const closing = outbox.waitForLatest({ to: '+15550000003' }, 5000);
      outbox.close();
      expect(await closing).toBeUndefined();
      expect(outbox.listenerCount).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('refuses a capacity below one', () => {
    expect(() => new Outbox(0)).toThrow(RangeError);
    expect(() => new Outbox(1.5)).toThrow(RangeError);
  });
});

describe('mock providers', () => {
  it('records an SMS in the outbox and returns its id as the receipt', async () => {
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox);

    const receipt = await sms.send({ to: '+15558675310', body: `Your code is ${CODE}` });

    expect(sms.name).toBe('mock');
    expect(receipt.id).toMatch(UUID);
    expect(outbox.list()).toEqual([
      {
        id: receipt.id,
        channel: 'sms',
        to: '+15558675310',
        body: `Your code is ${CODE}`,
        code: CODE,
        sentAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      },
    ]);
  });

  it('records an email with its subject and text part in the same outbox', async () => {
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox);
    const email = createMockEmailProvider(outbox);

    await sms.send({ to: '+15558675310', body: CODE });
    const receipt = await email.send({
      to: 'ada@example.org',
      subject: 'Confirm your email address',
      text: `Confirm: ${LINK}`,
      html: `<a href="${LINK}">Confirm</a>`,
    });

    expect(outbox.list().map((m) => m.channel)).toEqual(['sms', 'email']);
    expect(outbox.list({ to: 'ada@example.org' })).toEqual([
      expect.objectContaining({
        id: receipt.id,
        channel: 'email',
        subject: 'Confirm your email address',
        body: `Confirm: ${LINK}`,
        html: `<a href="${LINK}">Confirm</a>`,
        link: LINK,
      }),
    ]);
  });

  it('reads the code where the template puts it, past other digits', async () => {
    const outbox = new Outbox(10);
    const template = 'Acme 2026 [id 123456]: {code}. Code {code} expires in 10 min.';
    const sms = createMockSmsProvider(outbox, undefined, { smsTemplate: template });
    await sms.send({ to: '+15558675310', body: template.replaceAll('{code}', CODE) });
    expect(outbox.list()[0]?.code).toBe(CODE);
    // Without the template, the first group of 4 to 10 digits: here the wrong one.
    const plain = createMockSmsProvider(outbox);
    await plain.send({ to: '+15558675310', body: template.replaceAll('{code}', CODE) });
    expect(outbox.list()[1]?.code).toBe('2026');
  });

  it('takes the link that carries a token, and records no code or link when there is none', async () => {
    const outbox = new Outbox(10);
    const email = createMockEmailProvider(outbox);
    await email.send({
      to: 'ada@example.org',
      subject: 's',
      text: `Help: https://example.org/help\nConfirm: ${LINK}\n`,
      html: '',
    });
    await createMockSmsProvider(outbox).send({ to: '+15558675310', body: 'no digits here' });
    const [mail, sms] = outbox.list();
    expect(mail?.link).toBe(LINK);
    expect(sms && 'code' in sms).toBe(false);
  });

  it('fails the next N sends with DeliveryFailedError, then recovers', async () => {
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox);
    sms.failNext(2);

    for (const _ of [1, 2]) {
      await expect(sms.send({ to: '+15558675310', body: CODE })).rejects.toBeInstanceOf(
        DeliveryFailedError,
      );
    }
    await expect(sms.send({ to: '+15558675310', body: CODE })).resolves.toEqual({
      id: expect.stringMatching(UUID),
    });
    // A failed send was never sent.
    expect(outbox.size).toBe(1);
  });

  it('fails email sends with the email channel', async () => {
    const email = createMockEmailProvider(new Outbox(10));
    email.failNext();

    const error = await email
      .send({ to: 'ada@example.org', subject: 's', text: LINK, html: LINK })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeliveryFailedError);
    expect((error as DeliveryFailedError).message).toContain('email');
  });

  it('fails as a refusal by default, or with an unknown outcome when asked', async () => {
    const sms = createMockSmsProvider(new Outbox(10));
    sms.failNext(1);
    sms.failNext(1, { outcome: 'unknown' });

    const refused = await sms.send({ to: '+15558675310', body: CODE }).catch((e: unknown) => e);
    const unknown = await sms.send({ to: '+15558675310', body: CODE }).catch((e: unknown) => e);

    expect((refused as DeliveryFailedError).outcome).toBe('refused');
    expect((unknown as DeliveryFailedError).outcome).toBe('unknown');
    expect((unknown as DeliveryFailedError).failure.provider).toBe('mock');
  });

  it('delays the next sends, and can fail after a delay', async () => {
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox);
    sms.delayNext(150);
    sms.failNext(1, { delayMs: 150 });

    let started = performance.now();
    await sms.send({ to: '+15558675310', body: CODE });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);

    started = performance.now();
    await expect(sms.send({ to: '+15558675310', body: CODE })).rejects.toBeInstanceOf(
      DeliveryFailedError,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);

    started = performance.now();
    await sms.send({ to: '+15558675310', body: CODE });
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('drops queued faults on clearFaults, and keeps faults per provider', async () => {
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox);
    const email = createMockEmailProvider(outbox);
    sms.failNext(3);
    sms.clearFaults();
    email.failNext();

    await expect(sms.send({ to: '+15558675310', body: CODE })).resolves.toBeDefined();
    await expect(
      email.send({ to: 'ada@example.org', subject: 's', text: LINK, html: LINK }),
    ).rejects.toBeInstanceOf(DeliveryFailedError);
  });

  it('refuses nonsensical fault counts and delays', () => {
    const sms = createMockSmsProvider(new Outbox(10));

    expect(() => sms.failNext(0)).toThrow(RangeError);
    expect(() => sms.delayNext(-1)).toThrow(RangeError);
  });

  it('logs no part of the message when logMessages is off', async () => {
    const { logger, output } = capturedLogger();
    const outbox = new Outbox(10);
    const sms = createMockSmsProvider(outbox, logger, { logMessages: false });
    const email = createMockEmailProvider(outbox, logger);

    await sms.send({ to: '+15558675310', body: `Your verification code is ${CODE}` });
    await email.send({
      to: 'ada@example.org',
      subject: 'Confirm your email address',
      text: `Confirm: ${LINK}`,
      html: `<a href="${LINK}">Confirm</a>`,
    });
    logger.flush();

    const logged = output();
    expect(logged).toContain('mock sms accepted');
    expect(logged).toContain('mock email accepted');
    expect(logged).not.toContain(CODE);
    expect(logged).not.toContain('secret-token-value');
    expect(logged).not.toContain('verification code');
  });

  it('logs the full text for a developer when logMessages is on', async () => {
    const { logger, output } = capturedLogger();
    const sms = createMockSmsProvider(new Outbox(10), logger, { logMessages: true });

    await sms.send({ to: '+15558675310', body: `Your verification code is ${CODE}` });
    logger.flush();

    const [line] = output().trim().split('\n');
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      level: 30,
      provider: 'mock',
      channel: 'sms',
      msg: expect.stringContaining(`Your verification code is ${CODE}`),
    });
  });
});
