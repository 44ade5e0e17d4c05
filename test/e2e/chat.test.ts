// requires: chromium
// Parley in a real browser: Debian's Chromium (headless, through playwright-core) against a
// real Parley over HTTPS/WSS. Two people chat, a private room stays private, an XSS payload
// list sent over the raw WebSocket renders as inert text under the production CSP and
// Trusted Types, and logging out in one tab ends the socket of another tab.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { XSS_PAYLOADS } from '../fixtures/xss-payloads.ts';
import { joined, signUp, startServer, type TestServer } from '../helpers/server.ts';
import {
  ensureClientBuilt,
  launchBrowser,
  messageBodies,
  newContext,
  screenshot,
  settle,
  signIn,
  WAIT,
  waitConnected,
  waitForMessage,
  type Violation,
  newPerson,
  type Person,
} from './browser.ts';

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

const person = async (): Promise<Person> => newPerson(await newContext(browser), contexts);

async function send(page: Page, text: string): Promise<void> {
  await page.fill('#composer', text);
  await page.click('#send');
  await waitForMessage(page, text);
}

before(async () => {
  await ensureClientBuilt();
  // This file tests rendering, not rate limits: let the payload list through at once.
  // This suite is about rendering: rate limits and the sanitizer's time budget are not under test
  // (a busy CI machine must not turn a payload into too_complex here; test/sanitize-pool.test.ts covers that).
  server = await startServer({ env: { WS_MESSAGE_BURST: '1000', WS_MESSAGES_PER_SECOND: '1000', SANITIZE_BUDGET_SECONDS: '10' } });
  browser = await launchBrowser();
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

describe('two people chatting in Chromium', () => {
  test('register, chat live in the lobby, create a private room, invite; a third user cannot see it', async () => {
    const alice = await person();
    const bob = await person();
    await signIn(alice.page, server.origin, 'alice');
    await signIn(bob.page, server.origin, 'bob');
    assert.equal(await alice.page.textContent('#current-user'), 'alice');
    assert.equal(await bob.page.textContent('#current-user'), 'bob');

    // Lobby, both directions, live.
    await send(alice.page, 'Hello from alice');
    await waitForMessage(bob.page, 'Hello from alice');
    await send(bob.page, 'Hi alice, bob here');
    await waitForMessage(alice.page, 'Hi alice, bob here');
    const seenByBob = bob.page.locator('#messages .message', { hasText: 'Hello from alice' });
    assert.equal(await seenByBob.locator('.message-user').textContent(), 'alice');

    // A private room: alice creates it and invites bob, who sees the invitation live and
    // accepts it; only then is the room in his list (and opened for him).
    await alice.page.fill('#new-room', 'secret-plans');
    await alice.page.click('#create-room');
    await alice.page.locator('#room-title', { hasText: 'secret-plans' }).waitFor(WAIT);
    await alice.page.fill('#invite-user', 'bob');
    await alice.page.click('#invite');
    await bob.page.locator('[data-invitation="secret-plans"]', { hasText: 'alice invited you to secret-plans' }).waitFor(WAIT);
    assert.equal(await bob.page.locator('#room-list [data-room="secret-plans"]').count(), 0, 'pending: not in his list');
    await bob.page.click('[data-testid="accept-secret-plans"]');
    await bob.page.locator('#room-list [data-room="secret-plans"]').waitFor(WAIT);
    await bob.page.locator('#room-title', { hasText: 'secret-plans' }).waitFor(WAIT);

    await send(alice.page, 'The plan: ship it on Friday');
    await waitForMessage(bob.page, 'The plan: ship it on Friday');
    await send(bob.page, 'Agreed, Friday it is');
    await waitForMessage(alice.page, 'Agreed, Friday it is');
    await screenshot(alice.page, 'chat');

    // Carol signs up afterwards: her room list has the lobby but not the private room,
    // and the lobby shows her none of its messages.
    const carol = await person();
    await signIn(carol.page, server.origin, 'carol');
    await waitForMessage(carol.page, 'Hi alice, bob here'); // the lobby history has arrived
    assert.equal(await carol.page.locator('[data-room="secret-plans"]').count(), 0);
    assert.deepEqual(await carol.page.locator('#room-list [data-room]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-room'))), ['lobby']);
    const carolSees = await messageBodies(carol.page);
    assert.ok(!carolSees.some((text) => text.includes('Friday')), `carol sees private messages: ${JSON.stringify(carolSees)}`);

    // The pages ran under the production CSP and Trusted Types without a single violation.
    for (const { watch } of [alice, bob, carol]) {
      assert.deepEqual(watch.violations, []);
      assert.deepEqual(watch.pageErrors, []);
      assert.deepEqual(watch.dialogs, []);
    }
  });
});

describe("stored XSS in the victim's browser", () => {
  // Variants of the fixture's shapes whose only effect, if they ran, is a flag on window:
  // a payload that executes silently (no dialog) is caught too.
  const FLAGGING_PAYLOADS = [
    { name: 'flag: img onerror', input: `<img src=x onerror="window.__pwned='img'">` },
    { name: 'flag: svg onload', input: `<svg onload="window.__pwned='svg'"></svg>` },
    { name: 'flag: details ontoggle', input: `<details open ontoggle="window.__pwned='details'">x</details>` },
    { name: 'flag: javascript: link', input: `<a id="pwn-link" href="javascript:window.__pwned='link'">pwn-link</a>` },
    { name: 'flag: iframe srcdoc', input: `<iframe srcdoc="<script>parent.__pwned='srcdoc'</script>"></iframe>` },
    { name: 'flag: mXSS math/style', input: `<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned='mxss'">` },
    { name: 'flag: noscript breakout', input: `<noscript><p title="</noscript><img src=x onerror=window.__pwned='noscript'>">` },
    { name: 'flag: script', input: `<script>window.__pwned='script'</script>` },
    { name: 'flag: entity-encoded handler', input: `<img src=x onerror="&#119;indow.__pwned='encoded'">` },
  ];
  const payloads = [...XSS_PAYLOADS, ...FLAGGING_PAYLOADS];
  const marker = (index: number) => `[payload ${index}]`;

  test('every payload sent over the raw WebSocket renders as inert, visible text: no dialog, no script, no CSP violation', async () => {
    const victim = await person();
    await signIn(victim.page, server.origin, 'victim');

    const mallory = await joined(server, await signUp(server, 'mallory'));
    for (const [index, payload] of payloads.entries()) {
      mallory.send({ type: 'send', room: 'lobby', text: `${marker(index)} ${payload.input}`, clientId: `p${index}` });
      const ack = await mallory.next('ack', 10_000);
      assert.equal(ack.clientId, `p${index}`);
    }
    mallory.ws.close();

    await waitForMessage(victim.page, marker(payloads.length - 1));
    // Clicking the javascript: link is what a victim would do; its href must be gone.
    const link = victim.page.locator('#messages a', { hasText: 'pwn-link' });
    if ((await link.count()) > 0) await link.first().click();
    await settle(victim.page);

    // The text is there, visibly, for every payload.
    for (const index of payloads.keys()) {
      const body = victim.page.locator('#messages .message-body', { hasText: marker(index) });
      assert.equal(await body.count(), 1, `payload ${index} (${payloads[index]!.name}) is not shown`);
      assert.ok(await body.isVisible(), `payload ${index} is not visible`);
    }
    // Nothing ran.
    assert.deepEqual(victim.watch.dialogs, []);
    assert.equal(await victim.page.evaluate(() => (window as { __pwned?: unknown }).__pwned), undefined);
    assert.deepEqual(victim.watch.pageErrors, []);
    assert.deepEqual(victim.watch.violations, [], 'the normal flow raises no CSP / Trusted Types violation');
    assert.equal(new URL(victim.page.url()).origin, server.origin);
    // And nothing executable reached the DOM.
    const live = await victim.page.evaluate(() => {
      const log = document.getElementById('messages')!;
      const found: string[] = [];
      for (const node of log.querySelectorAll('*')) {
        const tag = node.tagName.toLowerCase();
        if (
          ['script', 'iframe', 'object', 'embed', 'svg', 'math', 'style', 'img', 'form', 'input', 'details', 'template', 'base', 'meta', 'link'].includes(tag)
        )
          found.push(tag);
        for (const attr of node.attributes) {
          if (attr.name.startsWith('on') || /^\s*(javascript|data|vbscript):/i.test(attr.value)) found.push(`${tag}[${attr.name}]`);
        }
      }
      return found;
    });
    assert.deepEqual(live, []);
    await screenshot(victim.page, 'xss-inert');
  });

  test('Trusted Types are enforced: a string written to innerHTML throws and is reported', async () => {
    const user = await person();
    await signIn(user.page, server.origin, 'tt-user');
    assert.deepEqual(user.watch.violations, []);
    const result = await user.page.evaluate(() => {
      const hasApi = typeof (window as { trustedTypes?: { createPolicy?: unknown } }).trustedTypes?.createPolicy === 'function';
      const div = document.createElement('div');
      try {
        div.innerHTML = '<b>not through a policy</b>';
        return { hasApi, threw: null };
      } catch (error) {
        return { hasApi, threw: (error as Error).name };
      }
    });
    assert.deepEqual(result, { hasApi: true, threw: 'TypeError' });
    // The violation listener is live (so the empty lists above mean something).
    const deadline = Date.now() + WAIT.timeout;
    while (user.watch.violations.length === 0 && Date.now() < deadline) await settle(user.page);
    const reported: Violation[] = user.watch.violations; // (the deepEqual above narrowed the type to [])
    assert.equal(reported[0]?.directive, 'require-trusted-types-for');
    // And a policy with another name is refused by the CSP's trusted-types allowlist.
    const rogue = await user.page.evaluate(() => {
      try {
        (window as unknown as { trustedTypes: { createPolicy: (n: string, r: object) => unknown } }).trustedTypes.createPolicy('rogue', {
          createHTML: (s: string) => s,
        });
        return 'created';
      } catch (error) {
        return (error as Error).name;
      }
    });
    assert.equal(rogue, 'TypeError');
    // The dialog watcher is live too (so "no dialog" above means something).
    await user.page.evaluate(() => alert('probe'));
    assert.deepEqual(user.watch.dialogs, ['alert: probe']);
  });
});

describe('logout across tabs', () => {
  test('logging out in one tab ends the socket in another tab of the same session; both return to the sign-in screen', async () => {
    const { context, page: first } = await person();
    await signIn(first, server.origin, 'tabby');
    const second = await context.newPage();
    await second.goto(`${server.origin}/`);
    await waitConnected(second); // same cookie, second socket
    const deadline = Date.now() + WAIT.timeout;
    while (server.parley.connectionsOf('tabby') < 2 && Date.now() < deadline) await settle(second);
    assert.equal(server.parley.connectionsOf('tabby'), 2);

    await first.click('#logout');
    await first.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    // The other tab did nothing: the server closed its socket, and it went back to sign-in.
    await second.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    await second.locator('#chat-screen').waitFor({ state: 'hidden', ...WAIT });
    assert.equal(await second.locator('#messages .message').count(), 0, 'the chat was cleared from the page');
    while (server.parley.connectionsOf('tabby') > 0 && Date.now() < deadline) await settle(second);
    assert.equal(server.parley.connectionsOf('tabby'), 0);
    // A reload stays signed out: the session is gone, not just the UI.
    await second.reload();
    await second.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
  });
});
