import request from 'supertest';
import {
  type CaptchaService,
  createCaptchaService,
  randomCaptchaText,
} from '../../services/captcha';
import { buildConfig } from '../../src/config';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp, captchaRandom } from '../support/app';

const SECRET = 'captcha-test-secret-captcha-test-secret';

function setup(text = 'AbCdEf') {
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  const store = new MemoryStore({ keyPrefix: 'test:', now: clock.now });
  const config = buildConfig({ CAPTCHA_TTL_SECONDS: '120', CAPTCHA_LENGTH: '6' });
  const captcha: CaptchaService = createCaptchaService({
    store,
    config,
    secret: SECRET,
    now: clock.now,
    generateText: () => text,
  });
  return { captcha, store, clock, config };
}

async function storedEntries(store: MemoryStore) {
  const entries: { key: string; value: string | undefined }[] = [];
  for await (const entry of store.scan()) {
    entries.push({ key: entry.key, value: await store.get(entry.key) });
  }
  return entries;
}

describe('captcha service', () => {
  it('issues an unguessable id, an SVG image and an expiry', async () => {
    const { captcha, clock } = setup();
    const first = await captcha.issue();
    const second = await captcha.issue();
    expect(first.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(second.id).not.toBe(first.id);
    expect(first.image.startsWith('<svg')).toBe(true);
    expect(first.image).toContain('width="150"');
    expect(first.expiresAt).toBe(new Date(clock.now() + 120_000).toISOString());
  });

  it('stores only a hash of the answer, under captcha:<id>', async () => {
    const { captcha, store } = setup('QwErTy');
    const { id } = await captcha.issue();
    const entries = await storedEntries(store);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.key).toBe(`captcha:${id}`);
    const value = entries[0]?.value ?? '';
    expect(value).not.toHaveLength(0);
    expect(value.toLowerCase()).not.toContain('qwerty');
  });

  it('accepts the right answer exactly once', async () => {
    const { captcha } = setup('AbCdEf');
    const { id } = await captcha.issue();
    await expect(captcha.verify(id, 'AbCdEf')).resolves.toBe(true);
    await expect(captcha.verify(id, 'AbCdEf')).resolves.toBe(false);
  });

  it('compares case-insensitively and ignores surrounding spaces', async () => {
    const { captcha } = setup('AbCdEf');
    const a = await captcha.issue();
    const b = await captcha.issue();
    await expect(captcha.verify(a.id, 'aBcDeF')).resolves.toBe(true);
    await expect(captcha.verify(b.id, '  ABCDEF ')).resolves.toBe(true);
  });

  it('is used up by a wrong answer: the right one afterwards fails', async () => {
    const { captcha, store } = setup('AbCdEf');
    const { id } = await captcha.issue();
    await expect(captcha.verify(id, 'wrong1')).resolves.toBe(false);
    await expect(captcha.verify(id, 'AbCdEf')).resolves.toBe(false);
    // Deleted at once, not left to occupy space until expiry.
    expect(await storedEntries(store)).toHaveLength(0);
  });

  it('is used up by an empty or over-long answer too', async () => {
    const { captcha } = setup('AbCdEf');
    const a = await captcha.issue();
    const b = await captcha.issue();
    await expect(captcha.verify(a.id, '')).resolves.toBe(false);
    await expect(captcha.verify(a.id, 'AbCdEf')).resolves.toBe(false);
    await expect(captcha.verify(b.id, 'x'.repeat(65))).resolves.toBe(false);
    await expect(captcha.verify(b.id, 'AbCdEf')).resolves.toBe(false);
  });

  it('expires after CAPTCHA_TTL_SECONDS', async () => {
    const { captcha, clock } = setup('AbCdEf');
    const early = await captcha.issue();
    const late = await captcha.issue();
    clock.advance(119_000);
    await expect(captcha.verify(early.id, 'abcdef')).resolves.toBe(true);
    clock.advance(1_000);
    await expect(captcha.verify(late.id, 'abcdef')).resolves.toBe(false);
  });

  it('rejects unknown and malformed ids without throwing', async () => {
    const { captcha } = setup();
    await expect(captcha.verify('A'.repeat(22), 'AbCdEf')).resolves.toBe(false);
    await expect(captcha.verify('../../etc', 'AbCdEf')).resolves.toBe(false);
    await expect(captcha.verify('', 'AbCdEf')).resolves.toBe(false);
  });

  it('does not accept one captcha’s answer for another', async () => {
    const texts = ['AAAAAA', 'BBBBBB'];
    const store = new MemoryStore();
    const captcha = createCaptchaService({
      store,
      config: buildConfig(),
      secret: SECRET,
      generateText: () => texts.shift() ?? 'ZZZZZZ',
    });
    const a = await captcha.issue();
    const b = await captcha.issue();
    await expect(captcha.verify(b.id, 'AAAAAA')).resolves.toBe(false);
    await expect(captcha.verify(a.id, 'AAAAAA')).resolves.toBe(true);
  });

  it('generates text of the configured length from an unambiguous alphabet', () => {
    for (let i = 0; i < 200; i++) {
      const text = randomCaptchaText(8);
      expect(text).toHaveLength(8);
      expect(text).not.toMatch(/[0O1Il25SsZzB8]/);
    }
  });
});

describe('GET /captcha', () => {
  const appFor = (kind: 'off' | 'captcha' | 'pow') =>
    buildTestApp({
      random: captchaRandom('AbCdEf'),
      env: { BOT_PROTECTION: kind, BOT_PROTECTION_MODE: 'always' },
    }).app;

  it('answers {id, image, expiresAt} as uncacheable JSON, and the answer verifies', async () => {
    const app = appFor('captcha');
    const response = await request(app).get('/captcha').expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Object.keys(response.body).sort()).toEqual(['expiresAt', 'id', 'image']);
    expect(response.body.image).toMatch(/^<svg/);
    // Verified where clients use it: a send that asks for a captcha takes this one's answer.
    await request(app)
      .post('/verify-phone')
      .send({ phone: '+15555550100', captcha: { id: response.body.id, answer: 'abcdef' } })
      .expect(202);
  });

  it('is not served when the send routes do not ask for captchas', async () => {
    for (const kind of ['off', 'pow'] as const) {
      const response = await request(appFor(kind)).get('/captcha').expect(404);
      expect(response.body.error.code).toBe('not_found');
    }
  });
});
