/**
 * The dev inbox and the email confirm page in a real browser (headless Chromium from Debian,
 * driven by playwright-core), against the built server process as `npm start` runs it. The test
 * sends over HTTP as an app would; everything else is what a developer does on the page: watch the
 * code arrive without reloading, copy it, follow the link in the email, press the button.
 * A screenshot of each page goes to test-output/browser/.
 */
import path from 'node:path';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { describeBrowser, launchBrowser, screenshotDir } from '../support/browser';
import { getJson, postJson } from '../support/e2e-client';
import { startVerifyd, type VerifydProcess } from '../support/verifyd-process';

const PHONE = '+15551230042';
const OTHER = '+15557650042';
const EMAIL = 'browser@example.com';

/** Waits until the page shows `count` elements matching `selector` (the page updates itself). */
function untilItems(page: Page, selector: string, count: number) {
  return page.waitForFunction(
    ([css, n]) =>
      (
        globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
      ).document.querySelectorAll(css as string).length === n,
    [selector, count] as const,
  );
}

describeBrowser('the dev inbox in a browser', () => {
  let verifyd: VerifydProcess;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext;
  let shots: string;
  /** Console errors of every page (a refused script or style shows up here), per test. */
  let consoleErrors: string[];

  beforeAll(async () => {
    shots = screenshotDir('browser');
    [verifyd, browser] = await Promise.all([
      startVerifyd((port) => ({
        NODE_ENV: 'development',
        OTP_SECRET: 'browser-otp-secret-0123456789abcdef0123456789',
        JWT_SECRET: 'browser-jwt-secret-0123456789abcdef0123456789',
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        SEND_COOLDOWN_SECONDS: '0',
      })),
      launchBrowser(),
    ]);
    context = browser.context;
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: verifyd.url,
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await verifyd?.stop();
  });

  beforeEach(() => {
    consoleErrors = [];
  });

  afterEach(() => {
    expect(consoleErrors).toEqual([]);
  });

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    watch(page);
    await page.goto(url);
    return page;
  }

  function watch(page: Page): void {
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
  }

  /** The inbox, connected to its event stream, on a cleared outbox. */
  async function inbox(): Promise<Page> {
    await fetch(`${verifyd.url}/dev/outbox`, { method: 'DELETE' });
    const page = await open(`${verifyd.url}/dev`);
    await page.locator('#status.live').waitFor();
    return page;
  }

  it('shows a code as it is sent, copies it, and the copied code verifies the number', async () => {
    const page = await inbox();
    // Set on the page as it is now: a reload would lose it.
    await page.evaluate('window.notReloaded = true');

    const sent = await postJson(`${verifyd.url}/verify-phone`, { phone: PHONE });
    expect(sent.status).toBe(202);
    const item = page.locator(`li.message[data-to="${PHONE}"]`);
    await item.waitFor();
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    await page.screenshot({ path: path.join(shots, 'inbox-sms.png'), fullPage: true });

    await item.getByRole('button', { name: 'Copy code' }).click();
    await item.getByRole('button', { name: 'Copied' }).waitFor();
    const copied = await page.evaluate<string>('navigator.clipboard.readText()');
    expect(copied).toMatch(/^\d{6}$/);
    expect(await item.locator('.code').textContent()).toBe(copied);
    // The code the page shows is the one the SMS carries.
    expect(await item.locator('.body').textContent()).toContain(copied);

    const checked = await postJson(`${verifyd.url}/verify-phone-code`, {
      phone: PHONE,
      code: copied,
      verificationId: sent.body.verificationId,
    });
    expect(checked.status).toBe(200);
    expect(checked.body).toMatchObject({ verified: true, phone: PHONE });
    await page.close();
  });

  it('lists newest first, filters by recipient, and clears one recipient or all, live', async () => {
    const page = await inbox();
    for (const phone of [PHONE, OTHER, PHONE]) {
      expect((await postJson(`${verifyd.url}/verify-phone`, { phone })).status).toBe(202);
    }
    const items = page.locator('li.message');
    await untilItems(page, 'li.message', 3);
    const outbox = (await getJson(`${verifyd.url}/dev/outbox`)).body.messages as {
      id: string;
    }[];
    const shown: (string | null)[] = [];
    for (const li of await items.all()) shown.push(await li.getAttribute('data-id'));
    expect(shown).toEqual(outbox.map((m) => m.id).reverse());

    await page.locator('#filter').fill('+1 555 765');
    await untilItems(page, 'li.message:not([hidden])', 1);
    expect(await page.locator('li.message:not([hidden]) .to').textContent()).toBe(OTHER);
    expect(new URL(page.url()).searchParams.get('to')).toBe('+1 555 765');
    await page.screenshot({ path: path.join(shots, 'inbox-filtered.png'), fullPage: true });
    await page.locator('#filter').fill('');

    await page
      .locator(`li.message[data-to="${PHONE}"]`)
      .first()
      .getByRole('button', { name: 'Clear recipient' })
      .click();
    await untilItems(page, 'li.message', 1);
    const left = (await getJson(`${verifyd.url}/dev/outbox`)).body.messages as { to: string }[];
    expect(left.map((m) => m.to)).toEqual([OTHER]);

    await page.getByRole('button', { name: 'Clear all' }).click();
    await untilItems(page, 'li.message', 0);
    expect((await getJson(`${verifyd.url}/dev/outbox`)).body.messages).toEqual([]);
    expect(await page.locator('#empty').isVisible()).toBe(true);
    await page.close();
  });

  it('opens the link of an email from the inbox, and the confirm button verifies the address', async () => {
    const page = await inbox();
    expect((await postJson(`${verifyd.url}/verify-email`, { email: EMAIL })).status).toBe(202);
    const item = page.locator(`li.message[data-to="${EMAIL}"]`);
    await item.waitFor();
    const link = await item.locator('a.link').getAttribute('href');
    expect(link).toMatch(new RegExp(`^${verifyd.url}/verify-email-token\\?token=`));
    await page.screenshot({ path: path.join(shots, 'inbox-email.png'), fullPage: true });

    // The email's own button, in its sandboxed frame, opens the link in a new tab.
    const frame = item.frameLocator('iframe.html');
    const [confirm] = await Promise.all([
      context.waitForEvent('page'),
      frame.getByRole('link', { name: 'Confirm email' }).click(),
    ]);
    watch(confirm);
    await confirm.waitForLoadState();
    expect(confirm.url()).toBe(link);
    expect(await confirm.locator('h1').textContent()).toBe('Confirm your email');
    await confirm.screenshot({ path: path.join(shots, 'confirm-page.png'), fullPage: true });

    await confirm.getByRole('button', { name: 'Confirm email' }).click();
    await confirm.locator('h1', { hasText: 'Email confirmed' }).waitFor();
    expect(await confirm.locator('body').textContent()).toContain(`${EMAIL} is verified`);
    await confirm.screenshot({ path: path.join(shots, 'confirm-success.png'), fullPage: true });

    // The link was used up by the button, and only by it.
    const token = new URL(link ?? '').searchParams.get('token');
    const again = await postJson(`${verifyd.url}/verify-email-token`, { token });
    expect(again.body.error.code).toBe('token_used');
    await confirm.close();
    await page.close();
  });

  it('shows the email in a sandboxed frame that the page cannot reach into', async () => {
    const page = await inbox();
    expect((await postJson(`${verifyd.url}/verify-email`, { email: EMAIL })).status).toBe(202);
    const frameElement = page.locator(`li.message[data-to="${EMAIL}"] iframe.html`);
    await frameElement.waitFor();
    expect(await frameElement.getAttribute('sandbox')).toBe(
      'allow-popups allow-popups-to-escape-sandbox',
    );
    // A frame without allow-scripts and allow-same-origin: its document is out of the page's reach.
    const reachable = await frameElement.evaluate(
      (frame) => (frame as unknown as { contentDocument: unknown }).contentDocument !== null,
    );
    expect(reachable).toBe(false);
    await page.close();
  });

  it('shows the API document on /docs with every operation and no warning', async () => {
    const page = await open(`${verifyd.url}/docs`);
    await page.locator('.opblock').first().waitFor();
    const operations = await page.locator('.opblock').count();
    const { body } = await getJson(`${verifyd.url}/openapi.json`);
    const documented = Object.values(body.paths as Record<string, object>).reduce<number>(
      (sum, item) => sum + Object.keys(item).length,
      0,
    );
    expect(operations).toBe(documented);
    // Swagger UI puts what it cannot handle in the document (a dialect, a bad $ref) in a box.
    expect(await page.locator('.errors-wrapper').count()).toBe(0);
    await page.screenshot({ path: path.join(shots, 'docs.png') });
    await page.close();
  });
});
