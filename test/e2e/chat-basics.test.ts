// requires: chromium
// The chat basics in Chromium, with two people where it matters: the "new messages" marker,
// the unread count in the tab title, wide room names, the notices (an overlaying "not
// connected" bar that clears on reconnect, "You signed out in another tab", invitation
// errors and confirmations never together, a throttle message that states its wait once,
// a flood disconnect that says so), the rooms drawer on a phone-sized screen, and an axe
// scan of every new state. Real Parley over HTTPS/WSS, real Chromium (Debian's).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { joined, signUp, startServer, type Client, type TestServer } from '../helpers/server.ts';
import { axeViolations } from './axe.ts';
import {
  ensureClientBuilt,
  launchBrowser,
  newContext,
  screenshot,
  settle,
  signIn,
  WAIT,
  waitConnected,
  waitForMessage,
  type Watch,
  newPerson,
} from './browser.ts';

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function person(viewport?: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page; watch: Watch }> {
  const context = viewport
    ? await browser.newContext({ ignoreHTTPSErrors: true, viewport, colorScheme: 'light', isMobile: true, hasTouch: true })
    : await newContext(browser);
  return newPerson(context, contexts);
}

/** Sends each text over a raw socket (bob's), each acknowledged before the next. */
let sent = 0;
async function post(client: Client, texts: string[], room = 'lobby'): Promise<void> {
  for (const text of texts) {
    client.send({ type: 'send', room, text, clientId: `c${++sent}` });
    await client.next('ack', 10_000);
  }
}

async function assertAxeClean(page: Page, state: string): Promise<void> {
  assert.deepEqual(await axeViolations(page), [], `axe, ${state}`);
}

/** Records every text #error and #notice show, as pairs, from now on (a MutationObserver in the page). */
async function recordNotices(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: [string, string][] = [];
    (window as unknown as { __notices: [string, string][] }).__notices = seen;
    const error = document.getElementById('error')!;
    const notice = document.getElementById('notice')!;
    const record = () => seen.push([error.textContent ?? '', notice.textContent ?? '']);
    const observer = new MutationObserver(record);
    for (const node of [error, notice]) observer.observe(node, { childList: true, characterData: true, subtree: true });
  });
}

function recordedNotices(page: Page): Promise<[string, string][]> {
  return page.evaluate(() => (window as unknown as { __notices: [string, string][] }).__notices);
}

before(async () => {
  await ensureClientBuilt();
  server = await startServer({ env: { WS_MESSAGE_BURST: '1000', WS_MESSAGES_PER_SECOND: '1000' } });
  browser = await launchBrowser();
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

describe('reading a busy room', () => {
  test('a reader scrolled up gets a "new messages" marker instead of being pulled down; the marker jumps to the newest and clears', async () => {
    const alice = await person();
    await signIn(alice.page, server.origin, 'marker-alice');
    const bob = await joined(server, await signUp(server, 'marker-bob'));
    await post(
      bob,
      Array.from({ length: 40 }, (_, i) => `filler ${i} ${'so the log scrolls '.repeat(3)}`),
    );
    await waitForMessage(alice.page, 'filler 39');
    const log = alice.page.locator('#messages');
    const marker = alice.page.locator('#jump-newest');

    // At the bottom, a new message is simply followed: no marker.
    await post(bob, ['at the bottom']);
    await waitForMessage(alice.page, 'at the bottom');
    await settle(alice.page);
    assert.equal(await marker.isHidden(), true, 'no marker while reading the newest');

    // Scrolled up: three new messages arrive below; the reader stays where they were.
    await log.evaluate((node) => (node.scrollTop = 0));
    await settle(alice.page);
    await post(bob, ['below one', 'below two', 'below three']);
    await waitForMessage(alice.page, 'below three');
    await marker.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await marker.textContent(), '3 new messages ↓');
    assert.ok((await log.evaluate((node) => node.scrollTop)) < 50, 'the reader was not pulled down');
    await assertAxeClean(alice.page, 'with the new-messages marker');

    // The marker jumps to the newest, clears, and leaves focus on the messages.
    await marker.click();
    await marker.waitFor({ state: 'hidden', ...WAIT });
    const gap = await log.evaluate((node) => node.scrollHeight - node.scrollTop - node.clientHeight);
    assert.ok(gap <= 2, `at the bottom after the jump (gap ${gap}px)`);
    assert.equal(await alice.page.evaluate(() => document.activeElement?.id), 'messages');
    assert.equal(await alice.page.locator('#messages .message', { hasText: 'below three' }).isVisible(), true);

    // Scrolling down by hand clears it too.
    await log.evaluate((node) => (node.scrollTop = 0));
    await settle(alice.page);
    await post(bob, ['one more']);
    await marker.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await marker.textContent(), '1 new message ↓');
    await log.evaluate((node) => (node.scrollTop = node.scrollHeight));
    await marker.waitFor({ state: 'hidden', ...WAIT });
    bob.ws.close();
    assert.deepEqual(alice.watch.violations, []);
    assert.deepEqual(alice.watch.pageErrors, []);
  });

  test('the tab title counts what the reader has not seen: other rooms, and the shown room while the tab is hidden', async () => {
    const alice = await person();
    await signIn(alice.page, server.origin, 'title-alice');
    const bob = await joined(server, await signUp(server, 'title-bob'));
    await alice.page.waitForFunction(() => document.title === 'lobby · Parley', undefined, WAIT);

    // Alice reads her own room; bob writes in the lobby: the lobby's badge and the title count it.
    await alice.page.fill('#new-room', 'title-room');
    await alice.page.click('#create-room');
    await alice.page.locator('#room-title', { hasText: 'title-room' }).waitFor(WAIT);
    await post(bob, ['lobby news 1', 'lobby news 2']);
    await alice.page.waitForFunction(() => document.title === '(2) title-room · Parley', undefined, WAIT);
    assert.match((await alice.page.locator('[data-room="lobby"] .badge').textContent()) ?? '', /^2/);
    // Her own messages never count.
    await alice.page.fill('#composer', 'talking to myself');
    await alice.page.click('#send');
    await waitForMessage(alice.page, 'talking to myself');
    assert.equal(await alice.page.title(), '(2) title-room · Parley');
    // Opening the lobby reads them.
    await alice.page.click('[data-room="lobby"]');
    await alice.page.waitForFunction(() => document.title === 'lobby · Parley', undefined, WAIT);

    // The tab goes to the background (headless Chromium keeps every tab "visible", so the page
    // is told the way a browser tells it: visibilityState plus the visibilitychange event).
    const setVisibility = (state: 'hidden' | 'visible') =>
      alice.page.evaluate((value) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    await post(bob, ['while you were away']);
    await waitForMessage(alice.page, 'while you were away');
    await alice.page.waitForFunction(() => document.title === '(1) lobby · Parley', undefined, WAIT);
    await setVisibility('visible');
    await alice.page.waitForFunction(() => document.title === 'lobby · Parley', undefined, WAIT);
    bob.ws.close();
  });

  test('a 32-character room name fits the sidebar at desktop width; a cut name keeps its full name as a title', async () => {
    const alice = await person();
    await signIn(alice.page, server.origin, 'wide-alice');
    const name = 'workshop-security-team-2026-blue';
    assert.equal(name.length, 32);
    await alice.page.fill('#new-room', name);
    await alice.page.click('#create-room');
    await alice.page.locator('#room-title', { hasText: name }).waitFor(WAIT);
    const label = alice.page.locator(`[data-room="${name}"] .room-name`);
    const fit = await label.evaluate((node) => ({ scroll: node.scrollWidth, client: node.clientWidth }));
    assert.ok(fit.scroll <= fit.client, `the name is cut at 1280px: ${JSON.stringify(fit)}`);
    assert.equal(await label.getAttribute('title'), name);
    await assertAxeClean(alice.page, 'chat screen with a long room name');
  });
});

describe('notices', () => {
  test('an unknown invitee gets "No such user." alone; a real one gets its confirmation once the server answered; never both at once', async () => {
    const alice = await person();
    await signIn(alice.page, server.origin, 'notice-alice');
    await signUp(server, 'notice-bob');
    await alice.page.fill('#new-room', 'notice-room');
    await alice.page.click('#create-room');
    await alice.page.locator('#room-title', { hasText: 'notice-room' }).waitFor(WAIT);
    await settle(alice.page);
    await recordNotices(alice.page);

    await alice.page.fill('#invite-user', 'nobody-by-that-name');
    await alice.page.click('#invite');
    await alice.page.locator('#error', { hasText: 'No such user.' }).waitFor(WAIT);
    await settle(alice.page);
    assert.equal(await alice.page.textContent('#notice'), '');

    await alice.page.fill('#invite-user', 'notice-bob');
    await alice.page.click('#invite');
    await alice.page.locator('#notice', { hasText: 'Invitation for notice-bob sent.' }).waitFor(WAIT);
    assert.equal(await alice.page.textContent('#error'), '', 'the earlier error gave way to the newer answer');

    const both = (await recordedNotices(alice.page)).filter(([error, notice]) => error !== '' && notice !== '');
    assert.deepEqual(both, [], 'an error and a confirmation were shown together');
    const confirmations = (await recordedNotices(alice.page)).map(([, notice]) => notice).filter(Boolean);
    assert.ok(!confirmations.some((text) => text.includes('nobody-by-that-name')), `a confirmation for the unknown user: ${JSON.stringify(confirmations)}`);
  });

  test('"not connected" overlays the page (the newest message stays in view, nothing moves) and clears itself on reconnect', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-reconnect-'));
    let own = await startServer({ dataDir });
    try {
      const alice = await person();
      await signIn(alice.page, own.origin, 'outage-alice');
      await alice.page.fill('#composer', 'just before the outage');
      await alice.page.click('#send');
      await waitForMessage(alice.page, 'just before the outage');
      await settle(alice.page);
      const composerBefore = await alice.page.locator('#composer').boundingBox();
      const logBefore = await alice.page.locator('#messages').boundingBox();

      // The server goes away (every socket closes); the person keeps typing.
      const port = own.port;
      await own.close();
      await alice.page.locator('#connection-state', { hasText: /^(reconnecting|offline)$/ }).waitFor(WAIT);
      await alice.page.fill('#composer', 'typed during the outage');
      await alice.page.press('#composer', 'Enter');
      const error = alice.page.locator('#error', { hasText: 'Not connected right now.' });
      await error.waitFor(WAIT);
      await settle(alice.page);

      // Nothing moved: the bar floats over the page.
      assert.deepEqual(await alice.page.locator('#composer').boundingBox(), composerBefore);
      assert.deepEqual(await alice.page.locator('#messages').boundingBox(), logBefore);
      assert.equal(await alice.page.locator('.page-messages').evaluate((node) => getComputedStyle(node).position), 'fixed');
      // The newest message is still inside the log's visible area, and not under the bar.
      const last = (await alice.page.locator('#messages .message', { hasText: 'just before the outage' }).boundingBox())!;
      const bar = (await alice.page.locator('.error-bar').boundingBox())!;
      assert.ok(last.y + last.height <= logBefore!.y + logBefore!.height + 1, 'the newest message is in view');
      assert.ok(last.y >= bar.y + bar.height || last.y + last.height <= bar.y, 'the bar covers the newest message');
      await assertAxeClean(alice.page, 'with the not-connected bar');
      await screenshot(alice.page, 'not-connected');

      // The server comes back on the same port and data directory (the session survives).
      own = await startServer({ dataDir, env: { PORT: String(port), APP_ORIGIN: `https://localhost:${port}` } });
      await alice.page.locator('#connection-state', { hasText: /^connected$/ }).waitFor({ timeout: 45_000 });
      await error.waitFor({ state: 'hidden', ...WAIT });
      assert.equal(await alice.page.textContent('#error'), '');
      // Nothing typed was lost.
      assert.equal(await alice.page.inputValue('#composer'), 'typed during the outage');
      assert.deepEqual(alice.watch.pageErrors, []);
    } finally {
      await own.close().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('logging out in one tab: the other tab says "You signed out in another tab"; a message on the tabs\' channel alone signs nobody out', async () => {
    const { context, page: first } = await person();
    await signIn(first, server.origin, 'tabs-alice');
    const second = await context.newPage();
    await second.goto(`${server.origin}/`);
    await waitConnected(second);

    // Any same-origin script can post on the channel; the tab still asks the server, which says "signed in".
    await first.evaluate(() => new BroadcastChannel('parley-session').postMessage({ type: 'logged-out' }));
    await settle(second);
    await second.waitForTimeout(500); // the GET /api/me it triggers, generously
    assert.equal(await second.locator('#chat-screen').isVisible(), true, 'a channel message alone signed the tab out');
    assert.equal(await second.textContent('#connection-state'), 'connected');

    await first.click('#logout');
    await first.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    await second.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    await second.locator('#error', { hasText: 'You signed out in another tab.' }).waitFor(WAIT);
    assert.doesNotMatch((await second.textContent('#error')) ?? '', /session has ended/);
    assert.equal(await first.textContent('#error'), '', 'the tab that logged out shows no error');
    await assertAxeClean(second, 'sign-in screen after signing out in another tab');
    // And the session really is gone.
    await second.reload();
    await second.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
  });

  test('a throttled registration states its wait once', async () => {
    const own = await startServer({ env: { REGISTER_ADDRESS_BURST: '1' } });
    try {
      await signUp(own, 'throttle-first'); // the address's only registration
      const visitor = await person();
      await visitor.page.goto(`${own.origin}/`);
      await visitor.page.fill('#username', 'throttle-second');
      await visitor.page.fill('#password', 'correct horse battery staple');
      await visitor.page.click('#register');
      const error = visitor.page.locator('#error', { hasText: 'Too many new accounts' });
      await error.waitFor(WAIT);
      const text = (await error.textContent()) ?? '';
      assert.match(text, /^Too many new accounts from your network\. Try again in \d+ (seconds?|minutes?)\.$/);
      assert.equal(text.match(/try again|wait/gi)?.length, 1, `the wait is said more than once: "${text}"`);
    } finally {
      await own.close();
    }
  });

  test('a socket closed for flooding says the user was disconnected for sending too fast', async () => {
    const own = await startServer({ env: { WS_MESSAGES_PER_SECOND: '1', WS_MESSAGE_BURST: '3', WS_ABUSE_THRESHOLD: '3' } });
    try {
      const alice = await person();
      await signIn(alice.page, own.origin, 'flood-alice');
      await settle(alice.page);
      await recordNotices(alice.page);
      // Ten sends through the real composer, as fast as the page can submit them.
      await alice.page.evaluate(() => {
        const box = document.getElementById('composer') as HTMLTextAreaElement;
        const form = document.getElementById('composer-form') as HTMLFormElement;
        for (let i = 0; i < 10; i++) {
          box.value = `flood ${i}`;
          form.requestSubmit();
        }
      });
      const deadline = Date.now() + WAIT.timeout;
      const said = () => recordedNotices(alice.page).then((seen) => seen.some(([error]) => error.includes('disconnected for sending too fast')));
      while (!(await said()) && Date.now() < deadline) await settle(alice.page);
      assert.ok(await said(), `no flood message; seen: ${JSON.stringify(await recordedNotices(alice.page))}`);
      assert.ok(
        own.logs.some((line) => line.includes('"ws_rate_limited"') && line.includes('"abuse"')),
        'the server closed the socket for abuse',
      );
      // It reconnects on its own.
      await alice.page.locator('#connection-state', { hasText: /^connected$/ }).waitFor({ timeout: 45_000 });
    } finally {
      await own.close();
    }
  });
});

describe('on a phone (390×844)', () => {
  test('rooms are in a drawer: the messages get the screen; the drawer opens and closes by button and Escape, with focus handled', async () => {
    const alice = await person({ width: 390, height: 844 });
    await signIn(alice.page, server.origin, 'phone-alice');
    const page = alice.page;
    const toggle = page.locator('#rooms-toggle');
    const drawer = page.locator('#rooms-drawer');
    await page.fill('#composer', 'Hello from a phone');
    await page.click('#send');
    await waitForMessage(page, 'Hello from a phone');

    assert.equal(await toggle.isVisible(), true);
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await toggle.getAttribute('aria-controls'), 'rooms-drawer');
    assert.equal(await drawer.isHidden(), true);
    const log = (await page.locator('#messages').boundingBox())!;
    assert.ok(log.width >= 340, `the messages are ${log.width}px wide`);
    assert.ok(log.height >= 0.5 * 844, `the messages get ${log.height}px of 844`);
    await assertAxeClean(page, 'phone, drawer closed');
    await screenshot(page, 'chat-mobile');

    // Open with the button: focus moves into the drawer, to the room shown.
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    assert.equal(await drawer.isVisible(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-room')), 'lobby');
    await assertAxeClean(page, 'phone, drawer open');
    await screenshot(page, 'chat-mobile-rooms');

    // Escape closes it and returns focus to the button.
    await page.keyboard.press('Escape');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await drawer.isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'rooms-toggle');

    // From the keyboard: Enter on the button opens it; picking a room closes it.
    await page.keyboard.press('Enter');
    assert.equal(await drawer.isVisible(), true);
    await page.keyboard.press('Enter'); // the focused room button (lobby)
    assert.equal(await drawer.isHidden(), true);
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');

    // Closed, the drawer's button carries the unread count of the rooms it hides.
    await toggle.click();
    await page.fill('#new-room', 'phone-room');
    await page.click('#create-room');
    await page.locator('#room-title', { hasText: 'phone-room' }).waitFor(WAIT);
    await page.keyboard.press('Escape');
    assert.equal(await drawer.isHidden(), true);
    const bob = await joined(server, await signUp(server, 'phone-bob'));
    await post(bob, ['for the lobby, while alice is elsewhere']);
    bob.ws.close();
    await page.locator('#rooms-toggle-unread', { hasText: '1' }).waitFor(WAIT);
    assert.equal(await toggle.textContent(), 'Rooms 1 unread');

    // The scrim closes it too.
    await toggle.click();
    await page.locator('#rooms-scrim').click({ position: { x: 370, y: 400 } });
    assert.equal(await drawer.isHidden(), true);
    // So does tabbing out of it (past its last control, the Create button).
    await toggle.click();
    await page.focus('#create-room');
    await page.keyboard.press('Tab');
    assert.equal(await drawer.isHidden(), true);
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.deepEqual(alice.watch.violations, []);
    assert.deepEqual(alice.watch.pageErrors, []);
  });

  test('the sign-in screen passes axe at phone size', async () => {
    const visitor = await person({ width: 390, height: 844 });
    await visitor.page.goto(`${server.origin}/`);
    await visitor.page.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    await assertAxeClean(visitor.page, 'sign-in, phone');
    // The scan can fail: an image without a text alternative is reported.
    await visitor.page.evaluate(() => {
      const img = document.createElement('img');
      img.src = '/favicon.svg';
      document.querySelector('main')!.append(img);
    });
    assert.match((await axeViolations(visitor.page)).join('\n'), /^image-alt /m);
  });
});
