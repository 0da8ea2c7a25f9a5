import jwt from 'jsonwebtoken';
import request from 'supertest';
import { mailboxOf } from '../../services/targets';
import { buildTestApp, lastToken } from '../support/app';

/** 20 spellings of one Gmail inbox: case, "+tags", dots, and googlemail.com. */
const VARIANTS = [
  'ada.lovelace@gmail.com',
  'adalovelace@gmail.com',
  'ADA.LOVELACE+Case@Gmail.com',
  'a.d.a.l.o.v.e.l.a.c.e@gmail.com',
  'ada.lovelace@googlemail.com',
  'ADALOVELACE+news@GOOGLEMAIL.COM',
  'ada.lovelace+@gmail.com',
  'ada.lovelace+a+b@gmail.com',
  ...Array.from({ length: 12 }, (_, i) => `Ada.Lovelace+${i}@gmail.com`),
];

const sendTo = (app: Parameters<typeof request>[0], email: string) =>
  request(app).post('/verify-email').send({ email });

const accepted = (responses: { status: number }[]) =>
  responses.filter((response) => response.status === 202).length;

describe('variants of one mailbox are one recipient', () => {
  it('a burst of 20 sends to 20 variants puts one mail in the inbox (cooldown)', async () => {
    const { app, outbox } = buildTestApp({ env: { SEND_COOLDOWN_SECONDS: '30' } });
    expect(new Set(VARIANTS.map((v) => v.toLowerCase())).size).toBe(20);
    const responses = await Promise.all(VARIANTS.map((email) => sendTo(app, email)));
    // Before: 20 of 20, one per spelling.
    expect(accepted(responses)).toBe(1);
    expect(outbox.list()).toHaveLength(1);
  });

  it('without a cooldown, the burst meets SEND_MAX_PER_TARGET once', async () => {
    const { app, outbox } = buildTestApp({
      env: { SEND_COOLDOWN_SECONDS: '0', SEND_MAX_PER_TARGET: '5' },
    });
    const responses = await Promise.all(VARIANTS.map((email) => sendTo(app, email)));
    expect(accepted(responses)).toBe(5);
    expect(outbox.list()).toHaveLength(5);
  });

  it('counts the variants as one recipient in IP_MAX_TARGETS_PER_HOUR', async () => {
    const { app } = buildTestApp({ env: { IP_MAX_TARGETS_PER_HOUR: '3' } });
    const responses = await Promise.all(
      [...VARIANTS, 'grace@example.com', 'Grace+x@Example.com', 'edsger@example.com'].map((email) =>
        sendTo(app, email),
      ),
    );
    expect(accepted(responses)).toBe(23);
    const fourth = await sendTo(app, 'barbara@example.com');
    expect(fourth.status).toBe(429);
    expect(fourth.body.error.code).toBe('rate_limited');
  });

  it('mails the address as given, and the link and proof name it', async () => {
    const { app, outbox, config } = buildTestApp();
    const given = 'Ada.Lovelace+signup@Gmail.com';
    const address = 'ada.lovelace+signup@gmail.com';
    const sent = await sendTo(app, given).expect(202);
    expect(sent.body.to).toBe(address);
    expect(outbox.list().map((message) => message.to)).toEqual([address]);
    const confirmed = await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, address) })
      .expect(200);
    expect(confirmed.body.email).toBe(address);
    const proof = jwt.verify(confirmed.body.proof, config.JWT_SECRET) as jwt.JwtPayload;
    expect(proof.sub).toBe(address);
  });

  it('keeps one verification per mailbox: links to a+x@ and a+y@ are used up together', async () => {
    const { app, outbox } = buildTestApp();
    await sendTo(app, 'ada+x@example.com').expect(202);
    await sendTo(app, 'ada+y@example.com').expect(202);
    const newer = await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, 'ada+y@example.com') })
      .expect(200);
    expect(newer.body.email).toBe('ada+y@example.com');
    // Before: each link worked for as long as it lived, so one inbox could verify twice.
    const older = await request(app)
      .post('/verify-email-token')
      .send({ token: lastToken(outbox, 'ada+x@example.com') });
    expect(older.status).toBe(400);
    expect(older.body.error.code).toBe('token_used');
  });

  it('keeps different mailboxes apart', async () => {
    const { app, outbox } = buildTestApp({ env: { SEND_COOLDOWN_SECONDS: '30' } });
    // Dots matter outside Gmail; a "+" with nothing before it is no tag; gmail.co is not Gmail.
    const distinct = [
      'a.b@example.com',
      'ab@example.com',
      '+tag@example.com',
      'tag@example.com',
      'ada@gmail.co',
      'ada@gmail.com',
      'a-da@gmail.com',
    ];
    const responses = await Promise.all(
      [...distinct, ...distinct].map((email) => sendTo(app, email)),
    );
    expect(accepted(responses)).toBe(distinct.length);
    expect(new Set(outbox.list().map((message) => message.to))).toEqual(new Set(distinct));
  });
});

describe('mailboxOf', () => {
  it.each([
    ['Ada@Example.COM', 'ada@example.com'],
    ['ada+news@example.com', 'ada@example.com'],
    ['ada+news+more@example.com', 'ada@example.com'],
    ['a.d.a@example.com', 'a.d.a@example.com'],
    ['a.d.a+x@gmail.com', 'ada@gmail.com'],
    ['A.Da@GoogleMail.com', 'ada@gmail.com'],
    ['+x@example.com', '+x@example.com'],
    ['ada-news@yahoo.com', 'ada-news@yahoo.com'],
    ['ada@mail.gmail.com', 'ada@mail.gmail.com'],
  ])('%s is the mailbox %s', (address, mailbox) => {
    expect(mailboxOf(address)).toBe(mailbox);
  });
});
