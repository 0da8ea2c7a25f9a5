import { escapeHtml } from '../services/messages';

const page = (title: string, body: string) =>
  [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#222}',
    'button{font-size:1rem;padding:.7rem 1.4rem;background:#1a56db;color:#fff;border:0;border-radius:6px;cursor:pointer}</style>',
    `</head><body>${body}</body></html>`,
  ].join('');

/**
 * The page a link opens: one button that POSTs the token, so only a person's click consumes it.
 * The purpose from the link rides along, since the confirm step checks it against the token's.
 */
export function renderConfirmPage(token: string, purpose: string | undefined): string {
  if (!token)
    return page(
      'Invalid link',
      '<h1>Invalid link</h1><p>This link has no token. Open the link from your email again.</p>',
    );
  return page(
    'Confirm your email',
    [
      '<h1>Confirm your email</h1>',
      '<p>Press the button to confirm that this address is yours.</p>',
      '<form method="post" action="verify-email-token">',
      `<input type="hidden" name="token" value="${escapeHtml(token)}">`,
      purpose ? `<input type="hidden" name="purpose" value="${escapeHtml(purpose)}">` : '',
      '<button type="submit">Confirm email</button>',
      '</form>',
    ].join(''),
  );
}

export function renderConfirmResult(
  result: { ok: true; email: string } | { ok: false; message: string },
): string {
  if (result.ok) {
    return page(
      'Email confirmed',
      `<h1>Email confirmed</h1><p>${escapeHtml(result.email)} is verified. You can close this page.</p>`,
    );
  }
  return page(
    'Could not confirm',
    `<h1>Could not confirm</h1><p>${escapeHtml(result.message)}</p>`,
  );
}
