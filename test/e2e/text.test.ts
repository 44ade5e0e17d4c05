// requires: chromium
// A message is text, in a real browser (Debian's Chromium via playwright-core) against a real
// Parley over HTTPS/WSS:
// - what one person types in the composer is what another person sees, character for character
//   (test/fixtures/texts.ts: angle brackets, references, quotes, Markdown edge cases, surrogates,
//   right-to-left text, white space), and the Markdown subset arrives formatted;
// - layered defence against stored XSS: with each server layer switched off in turn (the lab
//   switches `encoding` and `sanitize`), the others hold, and with both off the browser's own
//   layer (DOMPurify + Trusted Types in client/render.ts, under the CSP) still holds. A page
//   without that layer — a naive client that writes `html` with innerHTML and sends no CSP —
//   runs the payloads when both server layers are off: the test that turns red when all
//   three layers are off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Control } from '../../server/config.ts';
import { MARKDOWN_CASES, TRICKY_TEXTS } from '../fixtures/texts.ts';
import { joined, signUp, sleep, startServer, type TestServer } from '../helpers/server.ts';
import { axeViolations } from './axe.ts';
import { ensureClientBuilt, launchBrowser, newContext, screenshot, settle, signIn, WAIT, type Watch, newPerson, type Person } from './browser.ts';

let browser: Browser;
const contexts: BrowserContext[] = [];
// Rendering is under test, not limits: let everything through at once, and give the sanitizer's
// time budget room on a busy CI machine (test/sanitize-pool.test.ts covers the budget).
const ROOMY = { WS_MESSAGE_BURST: '1000', WS_MESSAGES_PER_SECOND: '1000', SANITIZE_BUDGET_SECONDS: '10' };

const person = async (): Promise<Person> => newPerson(await newContext(browser), contexts);

const bodies = (page: Page) => page.locator('#messages .message-body');

before(async () => {
  await ensureClientBuilt();
  browser = await launchBrowser();
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
});

describe('what you type is what they see (two people in Chromium)', () => {
  let server: TestServer;
  let alice: { page: Page; watch: Watch };
  let bob: { page: Page; watch: Watch };
  before(async () => {
    server = await startServer({ env: ROOMY });
    alice = await person();
    bob = await person();
    await signIn(alice.page, server.origin, 'alice');
    await signIn(bob.page, server.origin, 'bob');
  });
  after(async () => server?.close());

  /** alice types `text` in the composer and sends it; resolves bob's copy of the message body. */
  async function typeAndDeliver(text: string) {
    const before = await bodies(bob.page).count();
    await alice.page.fill('#composer', text);
    await alice.page.click('#send');
    await bob.page.waitForFunction((n) => document.querySelectorAll('#messages .message-body').length > n, before, WAIT);
    return bodies(bob.page).nth(before);
  }

  test('each tricky text shows exactly as typed, for the reader and for the sender', async (t) => {
    const results: string[] = [];
    for (const tricky of TRICKY_TEXTS) {
      await t.test(tricky.name, async () => {
        const body = await typeAndDeliver(tricky.input);
        const expected = tricky.shows ?? tricky.input;
        const seen = await body.evaluate((el) => (el as HTMLElement).innerText);
        results.push(`${seen === expected ? 'same' : 'DIFFERENT'}: ${tricky.name}`);
        assert.equal(seen, expected, `bob sees ${JSON.stringify(seen)}`);
        // The sender's own copy (the server's echo replaces the pending one) reads the same.
        const mine = bodies(alice.page).last();
        await alice.page.waitForFunction(() => !document.querySelector('#messages .message.pending'), null, WAIT);
        assert.equal(await mine.evaluate((el) => (el as HTMLElement).innerText), expected);
      });
    }
    t.diagnostic(`${results.filter((r) => r.startsWith('same')).length} of ${TRICKY_TEXTS.length} tricky texts identical in another user's Chromium`);
    assert.deepEqual(alice.watch.pageErrors, []);
    assert.deepEqual(bob.watch.violations, [], 'no CSP / Trusted Types violation');
  });

  test('the Markdown subset arrives formatted: bold, italic, code, a code block, links with their host shown', async () => {
    for (const c of MARKDOWN_CASES) {
      const body = await typeAndDeliver(c.input);
      // The client sanitizes again and adds each link's host beside it: compare the message's
      // own markup, without those labels.
      const html = await body.evaluate((el) => {
        const copy = el.cloneNode(true) as HTMLElement;
        for (const label of copy.querySelectorAll('.link-host')) label.remove();
        return copy.innerHTML;
      });
      assert.equal(html, c.html, c.name);
    }
    const code = bodies(bob.page)
      .filter({ has: bob.page.locator('pre code', { hasText: 'if (a<b)' }) })
      .last();
    assert.equal(await code.locator('pre code').innerText(), 'if (a<b) {\n  x = 1;\n}\n');
    assert.equal((await bodies(bob.page).locator('strong', { hasText: 'bold' }).count()) > 0, true);
    assert.equal(await bodies(bob.page).locator('a[href="https://example.com/docs"] + .link-host').first().innerText(), 'example.com');
    // The picture in the README: a few of each, as a reader sees them.
    for (const text of [
      'if (a<b && c>d) { x = 1 } — use <div> tags. I <3 you & "quotes" too',
      '**bold**, *italic*, `inline code`, and a link: https://example.org/docs',
      '```\nfor (let i = 0; i < 3; i++) {\n  console.log(i);\n}\n```',
      '# not a heading, [not a link](javascript:alert(1)), 2\\*3\\*4 = 24',
    ]) {
      await typeAndDeliver(text);
    }
    await screenshot(bob.page, 'text-as-typed');
  });

  test('the composer says what formatting works, and the page passes the axe scan', async () => {
    const hint = await alice.page.locator('#composer-hint').innerText();
    for (const part of ['**bold**', '*italic*', '`code`', '```', 'https://']) assert.ok(hint.includes(part), `hint mentions ${part}: ${hint}`);
    assert.equal(await alice.page.locator('#composer').getAttribute('aria-describedby'), 'composer-hint');
    await settle(alice.page);
    assert.deepEqual(await axeViolations(alice.page), []);
  });
});

// OWASP XSS prevention: encode, sanitize, and a browser layer — each sufficient on its own
describe('layered defence: each layer holds with the others off', () => {
  // Payloads whose only effect, if they ran, is a flag on window (and a beacon request).
  const PAYLOADS = [
    `<img src=x onerror="window.__pwned='img'">`,
    `<svg><animate onbegin="window.__pwned='svg'" attributeName=x dur=1s>`,
    `<details open ontoggle="window.__pwned='details'">x</details>`,
    `<iframe srcdoc="<script>parent.__pwned='srcdoc'</script>"></iframe>`,
    `<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned='mxss'">`,
    `**<img src=x onerror="window.__pwned='markdown'">**`,
  ];

  /**
   * A client without the browser layer: it joins the lobby over the same WebSocket and writes each
   * message's `html` with innerHTML — what a fork that skipped client/render.ts would be. It runs
   * on Parley's origin with the victim's session, in a browser context that ignores the CSP
   * (playwright's bypassCSP), so neither DOMPurify nor Trusted Types nor `script-src` stands in the way.
   */
  const NAIVE_CLIENT = () => {
    const log = document.createElement('div');
    document.body.append(log);
    const w = window as unknown as { __seen?: number };
    const add = (m: { html: string }) => {
      const d = document.createElement('div');
      d.innerHTML = m.html;
      log.append(d);
      w.__seen = (w.__seen ?? 0) + 1;
    };
    const ws = new WebSocket(`wss://${location.host}/ws`);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data as string) as { type: string; messages?: Array<{ html: string }>; html?: string };
      if (f.type === 'history') f.messages!.forEach(add);
      if (f.type === 'message') add(f as { html: string });
    };
  };

  async function run(disabled: Control[]): Promise<{ parley: unknown; naive: unknown }> {
    const server = await startServer({ env: ROOMY, disabled });
    try {
      const victim = await person();
      await signIn(victim.page, server.origin, 'victim');
      const mallory = await joined(server, await signUp(server, 'mallory'));
      for (const [i, text] of PAYLOADS.entries()) mallory.send({ type: 'send', room: 'lobby', text, clientId: `p${i}` });
      // Every send is answered: an ack, or (text taken as HTML) `empty_message` for what sanitizes to nothing.
      const answered = () => mallory.frames.filter((f) => (f.type === 'ack' || f.type === 'error') && f.clientId?.startsWith('p'));
      for (const deadline = Date.now() + 10_000; answered().length < PAYLOADS.length && Date.now() < deadline;) await sleep(20);
      const stored = answered().filter((f) => f.type === 'ack').length;
      assert.ok(stored > 0 && answered().length === PAYLOADS.length, JSON.stringify(answered()));
      mallory.ws.close();
      // Parley's own client, signed in as the victim.
      await victim.page.waitForFunction((n) => document.querySelectorAll('#messages .message-body').length >= n, stored, WAIT);
      await settle(victim.page);
      const parley = await victim.page.evaluate(() => (window as { __pwned?: unknown }).__pwned);
      // The naive client, same victim, same session, no CSP.
      const naiveContext = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true });
      contexts.push(naiveContext);
      await naiveContext.addCookies(await victim.page.context().cookies());
      const naivePage = await naiveContext.newPage();
      await naivePage.goto(`${server.origin}/healthz`);
      await naivePage.evaluate(NAIVE_CLIENT);
      await naivePage.waitForFunction((n) => ((window as { __seen?: number }).__seen ?? 0) >= n, stored, WAIT);
      await settle(naivePage);
      const naive = await naivePage.evaluate(() => (window as { __pwned?: unknown }).__pwned);
      return { parley, naive };
    } finally {
      await server.close();
    }
  }

  test('all layers on: nothing runs, in Parley or in a naive client', async () => {
    assert.deepEqual(await run([]), { parley: undefined, naive: undefined });
  });

  test('encoding off (text is HTML): the server sanitizer holds, even for the naive client', async () => {
    assert.deepEqual(await run(['encoding']), { parley: undefined, naive: undefined });
  });

  test('sanitize off: encoding holds, even for the naive client', async () => {
    assert.deepEqual(await run(['sanitize']), { parley: undefined, naive: undefined });
  });

  test("encoding and sanitize off: Parley's browser layer still holds — and without it, the payloads run", async () => {
    const { parley, naive } = await run(['encoding', 'sanitize']);
    assert.equal(parley, undefined, 'DOMPurify + Trusted Types in client/render.ts hold on their own');
    assert.equal(typeof naive, 'string', 'all three layers off: a payload ran in the naive client');
  });
});
