import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';

/**
 * Headers for JSON answers, after the OWASP REST guidance: nothing may load, frame or sniff them.
 * Helmet's other defaults (cross-origin opener policy, origin-agent-cluster, DNS prefetch,
 * download options, Flash policies, the legacy XSS filter) only mean something for HTML documents;
 * they added headers to every answer, and each header costs CPU on both ends of the connection.
 */
export const apiSecurityHeaders: RequestHandler = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  xFrameOptions: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
});

/** The email confirm page: its own inline style and a form that posts back here, nothing else. */
const pagePolicy = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    styleSrc: ["'unsafe-inline'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
});

/** Sends an HTML page with the page policy in place of the API one, never cached. */
export function sendPage(req: Request, res: Response, status: number, html: string): void {
  pagePolicy(req, res, (() => undefined) as NextFunction);
  res.status(status).set('Cache-Control', 'no-store').type('html').send(html);
}
