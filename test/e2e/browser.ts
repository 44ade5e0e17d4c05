// Shared by the browser end-to-end tests: the client build, Debian's Chromium driven by
// playwright-core (no browser download), a watcher for dialogs, errors and CSP / Trusted
// Types violations, and a sign-in helper that uses the real sign-in form.
import { freePort } from '../helpers/server.ts';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORD } from '../helpers/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Generous: the suite runs two files at a time on a loaded 2-core machine. */
export const WAIT = { timeout: 20_000 };

/**
 * Builds dist/client when it is missing or older than its sources (the same script as
 * `npm start`'s prestart). Two test files may start at once: a lock directory keeps a
 * second build from replacing files the first one's server is serving.
 */
export async function ensureClientBuilt(): Promise<void> {
  const lock = path.join(ROOT, 'dist', '.e2e-build-lock');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than 3 minutes belongs to a run that died: take it over.
      if (Date.now() - fs.statSync(lock).mtimeMs > 180_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-client-if-needed.ts')], { cwd: ROOT, stdio: 'pipe' });
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/** A fresh profile: its own cookies, like a different person (or browser) would have. */
export function newContext(browser: Browser): Promise<BrowserContext> {
  // The certificate is self-signed (generated into DATA_DIR); trusting it per test run is
  // what ignoreHTTPSErrors amounts to. Everything else is the browser's normal behaviour.
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
}

export type Violation = { directive: string; blockedURI: string; sample: string; documentURI: string };

export type Watch = {
  dialogs: string[];
  pageErrors: string[];
  violations: Violation[];
};

/**
 * Records, for every page of the context: dialogs (alert/confirm/prompt — dismissed),
 * uncaught page errors, and `securitypolicyviolation` events (CSP and Trusted Types),
 * which the page reports through an exposed function from an init script.
 */
export async function watchContext(context: BrowserContext): Promise<Watch> {
  const watch: Watch = { dialogs: [], pageErrors: [], violations: [] };
  await context.exposeFunction('__reportViolation', (violation: Violation) => {
    watch.violations.push(violation);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = (window as unknown as { __reportViolation: (v: unknown) => void }).__reportViolation;
      report({ directive: event.effectiveDirective, blockedURI: event.blockedURI, sample: event.sample, documentURI: event.documentURI });
    });
  });
  const attach = (page: Page) => {
    page.on('dialog', (dialog) => {
      watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => watch.pageErrors.push(error.message));
  };
  context.pages().forEach(attach);
  context.on('page', attach);
  return watch;
}

/** Registers (or logs in) through Parley's sign-in form and waits for the live connection. */
export type Person = { context: BrowserContext; page: Page; watch: Watch };

/**
 * A person in their own browser profile: a page and what the page reports (dialogs, errors, CSP
 * violations). `into` collects the context so the suite's after() closes it.
 */
export async function newPerson(context: BrowserContext, into: BrowserContext[]): Promise<Person> {
  into.push(context);
  const watch = await watchContext(context);
  return { context, page: await context.newPage(), watch };
}

export async function signIn(page: Page, origin: string, username: string, mode: 'register' | 'login' = 'register', password = PASSWORD): Promise<void> {
  await page.goto(`${origin}/`);
  await page.locator('#username').waitFor({ state: 'visible', ...WAIT });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click(mode === 'register' ? '#register' : '#login');
  await waitConnected(page);
}

export async function waitConnected(page: Page): Promise<void> {
  await page.locator('#connection-state', { hasText: /^connected$/ }).waitFor(WAIT);
  // Attached, not visible: on a narrow screen the room list is in a closed drawer.
  await page.locator('[data-room="lobby"]').waitFor({ state: 'attached', ...WAIT });
}

/** The message bodies shown in the page's message log. */
export function messageBodies(page: Page): Promise<string[]> {
  return page.locator('#messages .message-body').allTextContents();
}

/** Waits until a message whose body contains `text` is shown. */
export async function waitForMessage(page: Page, text: string): Promise<void> {
  await page.locator('#messages .message-body', { hasText: text }).first().waitFor(WAIT);
}

/**
 * Writes docs/screenshots/<name>.png, only when UPDATE_SCREENSHOTS=1: a normal test run
 * leaves the work tree clean.
 */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  if (process.env['UPDATE_SCREENSHOTS'] !== '1') return;
  const dir = path.join(ROOT, 'docs', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: options.fullPage ?? false, animations: 'disabled' });
}

export { freePort };

/** Lets pending rendering and error events run (two animation frames and a macrotask). */
export async function settle(page: Page): Promise<void> {
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 200)))));
}
