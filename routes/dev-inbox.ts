import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { NextFunction, Request, Response, Router } from 'express';
import helmet from 'helmet';

/**
 * The page's policy: its one script and stylesheet, requests back to this server (the outbox and
 * its event stream), and nothing from anywhere else; no inline script. The email's HTML is shown
 * in a sandboxed srcdoc frame, which inherits this policy: `style-src-attr` lets the email's own
 * style attributes apply there (they cannot run anything), and without `allow-scripts` nothing in
 * the email runs at all.
 */
const inboxPolicy = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    styleSrcAttr: ["'unsafe-inline'"],
    connectSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
});

/**
 * The shipped files: assets/ next to routes/ in a checkout (tsx, jest), or two levels up from
 * dist/routes/ in the built package.
 */
function assetDir(): string {
  const candidates = [
    path.join(__dirname, '..', 'assets', 'dev-inbox'),
    path.join(__dirname, '..', '..', 'assets', 'dev-inbox'),
  ];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'index.html')));
  if (!found) throw new Error(`the dev inbox page is missing (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * GET /dev: a page listing what the mock providers sent, newest first, with each code and link
 * in a field of its own, updated live from GET /dev/outbox/events. Plain files read once at start:
 * no build step, nothing fetched from elsewhere. Mounted by createDevOutboxRouter, behind the same
 * loopback rule as the outbox itself.
 */
export function addDevInboxPage(router: Router): void {
  const dir = assetDir();
  const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
  const page = read('index.html');
  const files: Record<string, { type: string; body: string }> = {
    'inbox.js': { type: 'text/javascript; charset=utf-8', body: read('inbox.js') },
    'inbox.css': { type: 'text/css; charset=utf-8', body: read('inbox.css') },
  };

  router.get('/dev', (req: Request, res: Response) => {
    // The page's links are relative to /dev; from /dev/ they would point one level too deep.
    if (req.path.endsWith('/')) {
      const query = req.originalUrl.indexOf('?');
      res.redirect(302, `../dev${query === -1 ? '' : req.originalUrl.slice(query)}`);
      return;
    }
    inboxPolicy(req, res, (() => undefined) as NextFunction);
    res.set('Cache-Control', 'no-store').type('html').send(page);
  });
  for (const [name, file] of Object.entries(files)) {
    router.get(`/dev/${name}`, (_req, res) => {
      // The files change only with the package, but a developer upgrading it should not need to
      // empty the browser's cache: revalidating costs one request on loopback.
      res.set('Cache-Control', 'no-cache').type(file.type).send(file.body);
    });
  }
}
