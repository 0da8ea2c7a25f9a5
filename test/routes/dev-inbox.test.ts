/**
 * The dev inbox page as the app serves it: a static page, its one script and stylesheet from the
 * package, under a policy that allows nothing else. What the page does in a browser is
 * test/browser/dev-inbox.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { createVerificationRouter } from '../../routes/index';
import { buildConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMockEmailProvider, createMockSmsProvider, Outbox } from '../../src/providers/mock';
import { MemoryStore } from '../../src/store/memory';
import { buildTestApp } from '../support/app';

/** The policy's directives by name. */
function directives(header: string | undefined): Record<string, string[]> {
  return Object.fromEntries(
    (header ?? '')
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map(([name, ...values]) => [name as string, values]),
  );
}

describe('GET /dev', () => {
  it('serves the page under a policy that allows only its own files and this server', async () => {
    const { app } = buildTestApp();
    const page = await request(app).get('/dev').expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    const policy = directives(page.headers['content-security-policy']);
    expect(policy).toMatchObject({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'connect-src': ["'self'"],
      'frame-ancestors': ["'none'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
    });
    // Nothing may run inline, and no source lies elsewhere.
    const everySource = Object.values(policy).flat();
    expect(everySource).not.toContain("'unsafe-eval'");
    expect(policy['script-src']).not.toContain("'unsafe-inline'");
    expect(everySource.filter((source) => /^(https?:|\*|\/\/)/.test(source))).toEqual([]);
  });

  it('has no inline script, no inline style block, and loads nothing from elsewhere', async () => {
    const { app } = buildTestApp();
    const html = (await request(app).get('/dev').expect(200)).text;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.map(([, attributes, body]) => [attributes?.trim(), body])).toEqual([
      ['src="dev/inbox.js" defer', ''],
    ]);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const urls = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map(([, url]) => url);
    expect(urls.filter((url) => /^(?:[a-z]+:)?\/\//i.test(url ?? ''))).toEqual([]);
  });

  it('serves the script and stylesheet the page names, as shipped in assets/', async () => {
    const { app } = buildTestApp();
    const dir = path.join(__dirname, '..', '..', 'assets', 'dev-inbox');
    const js = await request(app).get('/dev/inbox.js').expect(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.text).toBe(readFileSync(path.join(dir, 'inbox.js'), 'utf8'));
    const css = await request(app).get('/dev/inbox.css').expect(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.text).toBe(readFileSync(path.join(dir, 'inbox.css'), 'utf8'));
    // The script talks only to this server, by URLs relative to itself.
    expect(js.text).not.toMatch(/https?:\/\//);
  });

  it('sends /dev/ to /dev, so the relative URLs of the page resolve', async () => {
    const { app } = buildTestApp();
    const answer = await request(app).get('/dev/?to=%2B15551234567').expect(302);
    expect(answer.headers.location).toBe('../dev?to=%2B15551234567');
    expect(new URL(answer.headers.location ?? '', 'http://x.test/dev/').pathname).toBe('/dev');
  });

  it('works under the path an embedding app mounts the router at', async () => {
    const outbox = new Outbox(10);
    const host = express();
    host.use(
      '/auth',
      createVerificationRouter({
        config: buildConfig({ SEND_COOLDOWN_SECONDS: '0' }),
        store: new MemoryStore(),
        logger: createLogger({ level: 'silent' }),
        sms: createMockSmsProvider(outbox),
        email: createMockEmailProvider(outbox),
        outbox,
      }),
    );
    const html = (await request(host).get('/auth/dev').expect(200)).text;
    // Resolved as a browser resolves the page's relative URLs against /auth/dev.
    for (const [, url] of html.matchAll(/\s(?:src|href)="(dev\/[^"]*)"/g)) {
      const resolved = new URL(url as string, 'http://app.test/auth/dev').pathname;
      expect(resolved).toMatch(/^\/auth\/dev\/inbox\.(js|css)$/);
      await request(host).get(resolved).expect(200);
    }
  });
});
