import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { ROOT } from './build';
import { describeIf } from './servers';

/** Debian's chromium package, which `.ci/run` installs; never a downloaded browser. */
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const SKIP_CHROMIUM_ENV = 'VERIFYD_SKIP_CHROMIUM';

/** describe() for suites that drive a browser: skipped with a notice without one, failed in CI. */
export const describeBrowser = describeIf(SKIP_CHROMIUM_ENV, 'Chromium');

/** Screenshots land here (gitignored), one folder per suite. */
export function screenshotDir(suite: string): string {
  const dir = path.join(ROOT, 'test-output', suite);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Headless Chromium with a fresh profile, and none of the background traffic a first run makes
 * (updates, sync, QUIC probes): the suite talks to verifyd on loopback and to nothing else.
 */
export async function launchBrowser(): Promise<{
  context: BrowserContext;
  close(): Promise<void>;
}> {
  // Loaded here, not at the top: the global setup reads this module's constants only.
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(path.join(tmpdir(), 'verifyd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [
      '--headless',
      // Containers rarely allow Chromium's own sandbox (user namespaces); the pages are ours.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** For the global setup: whether the browser is there. */
export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM_BIN);
}
