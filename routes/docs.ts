import path from 'node:path';
import { type RequestHandler, Router } from 'express';
import helmet from 'helmet';
import { apiSecurityHeaders } from '../src/http/security-headers';
import type { JsonSchema } from '../src/openapi';

/** The Swagger UI files the page loads, served from the installed package, never from a CDN. */
const ASSETS = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'favicon-32x32.png', 'init.js']);
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));

/**
 * Starts Swagger UI on the document named by the script tag's data-spec. A file of its own rather
 * than an inline script, so that the page's policy can refuse every inline script.
 */
const INIT_SCRIPT = `window.addEventListener('load', function () {
  var tag = document.querySelector('script[data-spec]');
  window.ui = SwaggerUIBundle({
    url: tag.getAttribute('data-spec'),
    dom_id: '#docs',
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
`;

/**
 * Scripts and styles from this server only, no inline script, no framing; images may be data:
 * URLs, which Swagger UI draws its icons with. "Try it out" calls this same server.
 */
const pagePolicy = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
});

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(base: string): string {
  const at = (file: string) => escapeHtml(`${base}/${file}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>verifyd API</title>
<link rel="stylesheet" href="${at('docs/swagger-ui.css')}">
<link rel="icon" type="image/png" href="${at('docs/favicon-32x32.png')}">
</head>
<body>
<div id="docs"></div>
<script src="${at('docs/swagger-ui-bundle.js')}"></script>
<script src="${at('docs/init.js')}" data-spec="${at('openapi.json')}"></script>
</body>
</html>
`;
}

/**
 * GET /openapi.json (the document `document` returns) and GET /docs, the document rendered by
 * Swagger UI from the swagger-ui-dist package. Links are built from the path the router is
 * mounted at, so the page also works under an embedding app's prefix.
 */
export function createDocsRouter(document: () => JsonSchema): Router {
  const router = Router();
  router.get('/openapi.json', apiSecurityHeaders, (req, res) => {
    // Where "Try it out" sends requests: wherever this router is mounted.
    res
      .set('Cache-Control', 'no-cache')
      .json({ ...document(), servers: [{ url: req.baseUrl || '/' }] });
  });
  router.get('/docs', (req, res, next) => {
    pagePolicy(req, res, (error?: unknown) => {
      if (error) return next(error);
      res.set('Cache-Control', 'no-cache').type('html').send(page(req.baseUrl));
    });
  });
  // Only the files the page loads: the package also holds a demo page that loads a remote API.
  const onlyAssets: RequestHandler = (req, _res, next) =>
    next(ASSETS.has(String(req.params.asset)) ? undefined : 'route');
  router.get('/docs/:asset', onlyAssets, apiSecurityHeaders, (req, res, next) => {
    if (req.params.asset === 'init.js') {
      res.set('Cache-Control', 'no-cache').type('application/javascript').send(INIT_SCRIPT);
      return;
    }
    res.sendFile(String(req.params.asset), { root: SWAGGER_UI_DIR, maxAge: '1h' }, (error) => {
      if (error) next(error);
    });
  });
  return router;
}
