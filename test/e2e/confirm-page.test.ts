/**
 * The email link as a person uses it, against the real server process: read the email from the
 * mock outbox, open the link, and submit the page's HTML form the way a browser does (action
 * resolved against the page's URL, every named input, urlencoded).
 */
import { lastMessage, postJson } from '../support/e2e-client';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

let verifyd: VerifydProcess | undefined;

beforeAll(async () => {
  verifyd = await startVerifyd((port) => ({
    NODE_ENV: 'test',
    OTP_SECRET: 'e2e-otp-secret-0123456789abcdef0123456789',
    JWT_SECRET: 'e2e-jwt-secret-0123456789abcdef0123456789',
    // As a deployment sets it; links must lead back to this server.
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    // Purposes are an allow-list; the second one is what the page must carry through.
    PURPOSES: 'verification,login',
  }));
}, 30_000);

afterAll(async () => {
  await verifyd?.stop();
});

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
};
const decode = (value: string) => value.replace(/&(amp|lt|gt|quot|#39);/g, (m) => ENTITIES[m]!);

/** The attributes of one start tag, values decoded as a browser decodes them. */
function attributes(tag: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [, name, quoted, single, bare] of tag.matchAll(
    /([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g,
  )) {
    found[name!.toLowerCase()] = decode(quoted ?? single ?? bare ?? '');
  }
  return found;
}

interface Form {
  action: URL;
  method: string;
  fields: URLSearchParams;
}

/** The page's one form, as a browser would submit it with its button. */
function parseForm(html: string, pageUrl: string): Form {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  expect(forms).toHaveLength(1);
  const [, formTag, inner] = forms[0]!;
  const form = attributes(formTag!);
  const fields = new URLSearchParams();
  for (const [, inputTag] of inner!.matchAll(/<input\b([^>]*)>/gi)) {
    const input = attributes(inputTag!);
    if (input.name && input.type !== 'submit') fields.append(input.name, input.value ?? '');
  }
  return {
    // An empty or missing action submits to the page itself, a relative one resolves against it.
    action: new URL(form.action ?? '', pageUrl),
    method: (form.method ?? 'get').toLowerCase(),
    fields,
  };
}

/** Sends a link with `purpose` and returns the link from the email, as the person receives it. */
async function emailedLink(email: string, purpose?: string): Promise<string> {
  const sent = await postJson(`${verifyd!.url}/verify-email`, {
    email,
    ...(purpose ? { purpose } : {}),
  });
  expect(sent.status).toBe(202);
  const message = await lastMessage(verifyd!.url, email);
  // The whole link, as a mail client makes it clickable: everything up to a space or a quote.
  const link = [...message.body.matchAll(/https?:\/\/[^\s"'<>]+/g)]
    .map(([url]) => decode(url))
    .find((url) => new URL(url).searchParams.has('token'));
  if (!link) throw new Error(`no link in the email: ${message.body}`);
  return link;
}

async function openPage(url: string): Promise<{ status: number; html: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  return { status: res.status, html: await res.text() };
}

async function submit(form: Form): Promise<{ status: number; html: string }> {
  expect(form.method).toBe('post');
  const res = await fetch(form.action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.fields.toString(),
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  return { status: res.status, html: await res.text() };
}

describe('the email confirm page, submitted as a browser submits it', () => {
  it.each([
    ['the default purpose', 'confirm-default@example.com', undefined],
    ['purpose "login"', 'confirm-login@example.com', 'login'],
  ])('confirms a link sent with %s', async (_label, email, purpose) => {
    const link = await emailedLink(email, purpose);
    expect(link.startsWith(`${verifyd!.url}/`)).toBe(true);

    // Opening the link (a person, or a mail scanner first) shows the button and uses nothing up.
    const scanned = await openPage(link);
    expect(scanned.status).toBe(200);
    const page = await openPage(link);
    expect(page.html).toContain('Confirm your email');

    const result = await submit(parseForm(page.html, link));
    expect(result.html).toContain('Email confirmed');
    expect(result.html).toContain(email);
    expect(result.status).toBe(200);

    // The link works once: the same form again is refused, on a page.
    const replay = await submit(parseForm(page.html, link));
    expect(replay.status).toBeGreaterThanOrEqual(400);
    expect(replay.html).toContain('Could not confirm');
  });
});
