import type { EmailMessage } from '../src/providers/types';

/** Fills the SMS template; `{code}` marks where the code goes. */
export function renderSms(template: string, code: string): string {
  return template.replaceAll('{code}', code);
}

/**
 * The link carries the purpose next to the token, so the page it opens posts the purpose the
 * token was issued for; the confirm step checks the two agree.
 */
export function linkWithToken(baseUrl: string, token: string, purpose: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('token', token);
  url.searchParams.set('purpose', purpose);
  return url.toString();
}

export function renderVerificationEmail(
  to: string,
  subject: string,
  link: string,
  ttlSeconds: number,
): EmailMessage {
  const minutes = Math.max(1, Math.round(ttlSeconds / 60));
  const text = [
    'Confirm your email address by opening this link:',
    '',
    link,
    '',
    `The link works once and expires in ${minutes} minutes.`,
    'If you did not ask for this, ignore this email.',
  ].join('\n');
  const href = escapeHtml(link);
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    '<p>Confirm your email address:</p>',
    `<p><a href="${href}" style="display:inline-block;padding:10px 16px;background:#1a56db;color:#fff;text-decoration:none;border-radius:4px">Confirm email</a></p>`,
    `<p>Or paste this link into your browser:<br>${href}</p>`,
    `<p>The link works once and expires in ${minutes} minutes. If you did not ask for this, ignore this email.</p>`,
    '</body></html>',
  ].join('');
  return { to, subject, text, html };
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * An email carrying a code instead of a link: the code works on whichever device the person types
 * it on. `template` is EMAIL_CODE_TEMPLATE, with {code} where the code goes.
 */
export function renderCodeEmail(
  to: string,
  subject: string,
  template: string,
  code: string,
  ttlSeconds: number,
): EmailMessage {
  const minutes = Math.max(1, Math.round(ttlSeconds / 60));
  const line = template.replaceAll('{code}', code);
  const text = [
    line,
    '',
    `The code works once and expires in ${minutes} minutes.`,
    'If you did not ask for this, ignore this email.',
  ].join('\n');
  const [before, after] = escapeHtml(template).split('{code}', 2);
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    // The template's text around the first {code}, with the code set large enough to read off.
    `<p>${before ?? ''}<strong style="font-size:1.5em;letter-spacing:0.1em">${escapeHtml(code)}</strong>${(after ?? '').replaceAll('{code}', escapeHtml(code))}</p>`,
    `<p>The code works once and expires in ${minutes} minutes. If you did not ask for this, ignore this email.</p>`,
    '</body></html>',
  ].join('');
  return { to, subject, text, html };
}
