// requires: chromium
// `npm run dev` and the build, for the stylesheet: in dev, Vite serves client/styles.css
// through its module graph and hot-swaps the <link> when the file changes (no reload, no
// inline <style>, so the strict CSP holds); the production build links one hashed CSS file.
// The dev server is started exactly as `npm run dev` starts it (node server/main.ts --dev).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { request, startServer } from '../helpers/server.ts';
import { ensureClientBuilt, freePort, launchBrowser, newContext, WAIT, watchContext } from './browser.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STYLESHEET = path.join(ROOT, 'client', 'styles.css');

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Starts `node server/main.ts --dev`; resolves with its origin once the banner is printed. */
async function startDev(dataDir: string): Promise<{ child: ChildProcess; origin: string; banner: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'server', 'main.ts'), '--dev'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', APP_ORIGIN: `https://localhost:${port}`, DATA_DIR: dataDir, REDIS_URL: '', DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev server did not start: ${stderr}`)), 60_000);
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('Parley is listening')) {
        clearTimeout(timer);
        setTimeout(resolve, 200); // the rest of the banner
      }
    });
    child.once('exit', (code) => reject(new Error(`dev server exited (${code}): ${stderr}`)));
  });
  return { child, origin: `https://localhost:${port}`, banner: () => stderr };
}

describe('npm run dev', () => {
  test('the banner says dev mode; editing client/styles.css restyles the open page in place, without inline styles or a CSP violation', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-dev-'));
    const original = fs.readFileSync(STYLESHEET, 'utf8');
    const stat = fs.statSync(STYLESHEET);
    const dev = await startDev(dataDir);
    try {
      assert.match(dev.banner(), /DEV MODE \(npm run dev\)/);
      const context = await newContext(browser);
      const watch = await watchContext(context);
      const page = await context.newPage();
      await page.goto(`${dev.origin}/`);
      await page.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
      const probe = () => page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--dev-reload-probe').trim());
      assert.equal(await probe(), '');
      await page.evaluate(() => ((window as { __sameDocument?: boolean }).__sameDocument = true));

      fs.writeFileSync(STYLESHEET, `${original}\n:root { --dev-reload-probe: 1; }\n`);
      await page.waitForFunction(() => getComputedStyle(document.documentElement).getPropertyValue('--dev-reload-probe').trim() === '1', undefined, WAIT);
      assert.equal(await probe(), '1');
      assert.equal(
        await page.evaluate(() => (window as { __sameDocument?: boolean }).__sameDocument),
        true,
        'the page reloaded instead of swapping the stylesheet',
      );
      assert.equal(await page.locator('style').count(), 0, 'an inline <style> was injected');
      assert.deepEqual(watch.violations, []);
      await context.close();
    } finally {
      fs.writeFileSync(STYLESHEET, original);
      fs.utimesSync(STYLESHEET, stat.atime, stat.mtime); // no spurious client rebuild for the other browser tests
      dev.child.kill('SIGTERM');
      await new Promise((resolve) => dev.child.once('exit', resolve));
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the production build', () => {
  test("links one hashed stylesheet, nothing inline, served under style-src 'self'", async () => {
    await ensureClientBuilt();
    const server = await startServer();
    try {
      const page = await request(server, 'GET', '/');
      const links = [...page.text.matchAll(/<link rel="stylesheet"[^>]*href="([^"]+)"/g)].map((m) => m[1]!);
      assert.equal(links.length, 1, page.text);
      assert.match(links[0]!, /^\/assets\/[\w-]+-[\w-]{8}\.css$/);
      assert.doesNotMatch(page.text, /<style|\sstyle=/);
      const csp = String(page.headers['content-security-policy']);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      const css = await request(server, 'GET', links[0]!);
      assert.equal(css.status, 200);
      assert.match(String(css.headers['content-type']), /^text\/css/);
      assert.match(css.text, /\.jump-newest/);
      assert.equal(
        (await request(server, 'GET', '/styles.css')).headers['content-type']?.toString().startsWith('text/css'),
        false,
        'the unhashed public copy is gone',
      );
    } finally {
      await server.close();
    }
  });
});
