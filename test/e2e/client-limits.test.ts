// requires: chromium
// The browser client under load and under text meant to mislead, in Chromium against a real
// Parley over HTTPS/WSS:
//  - a reader's tab keeps at most MAX_ROOM_MESSAGES messages in the DOM, however many
//    arrive, and a live message costs one appended node (not a pass over the list; past the
//    cap, a batch of the oldest goes at once);
//  - every link shows its destination host beside it; an IDN look-alike shows as xn--…;
//  - a U+202E (RIGHT-TO-LEFT OVERRIDE) in a message reorders nothing outside that message;
//  - a tab refused by the per-user connection cap stops polling /api/me after a few tries
//    and says the connection limit may have been reached.
// Run (after npm run build): npx node --test test/e2e/client-limits.test.ts
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { MAX_ROOM_MESSAGES, TRIM_BATCH } from '../../client/state.ts';
import { joined, signUp, startServer, type Client, type TestServer } from '../helpers/server.ts';
import { ensureClientBuilt, launchBrowser, newContext, settle, signIn, WAIT, waitConnected, waitForMessage, newPerson, type Person } from './browser.ts';

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
const bots: Client[] = [];

before(async () => {
  await ensureClientBuilt();
  server = await startServer({
    env: {
      // A sender fast enough to fill a room quickly; this file tests the reader, not rate limits.
      WS_MESSAGE_BURST: '100000',
      WS_MESSAGES_PER_SECOND: '100000',
      WS_ABUSE_THRESHOLD: '1000000',
      // One socket per user: a second tab of the same account is refused at the upgrade.
      WS_MAX_CONNECTIONS_PER_USER: '1',
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  for (const bot of bots) bot.ws.close();
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

const person = async (): Promise<Person> => newPerson(await newContext(browser), contexts);

/** A raw-WebSocket user in the lobby. */
async function bot(name: string): Promise<Client> {
  const client = await joined(server, await signUp(server, name));
  bots.push(client);
  return client;
}

/** Sends each text as a message and waits until the server has acked them all. */
async function post(client: Client, texts: string[]): Promise<void> {
  const acked = () => client.frames.filter((frame) => frame.type === 'ack').length;
  const target = acked() + texts.length;
  texts.forEach((text, i) => client.send({ type: 'send', room: 'lobby', text, clientId: `c${Date.now()}-${i}` }));
  const deadline = Date.now() + 60_000;
  while (acked() < target) {
    if (Date.now() > deadline) throw new Error(`only ${acked()} of ${target} acks`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Left edges of each character of `text` (found in the element matching `selector` that contains `within`). */
function characterLefts(page: Page, selector: string, within: string, text: string): Promise<number[] | null> {
  return page.evaluate(
    ({ selector, within, text }) => {
      const host = [...document.querySelectorAll(selector)].find((element) => element.textContent?.includes(within));
      if (!host) return null;
      const walker = document.createTreeWalker(host, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const data = (node as Text).data;
        const at = data.indexOf(text);
        if (at < 0) continue;
        return [...text].map((_, k) => {
          const range = document.createRange();
          range.setStart(node, at + k);
          range.setEnd(node, at + k + 1);
          return range.getBoundingClientRect().left;
        });
      }
      return null;
    },
    { selector, within, text },
  );
}

function assertLeftToRight(lefts: number[] | null, what: string): void {
  assert.ok(lefts, `${what}: not found`);
  for (let i = 1; i < lefts.length; i++) assert.ok(lefts[i]! > lefts[i - 1]!, `${what} is reordered: character lefts ${JSON.stringify(lefts)}`);
}

describe("a busy room in a reader's tab", () => {
  test(`the DOM holds at most ${MAX_ROOM_MESSAGES} messages, a live message appends one node, and Load older / Show newest page through`, async () => {
    const reader = await person();
    await signIn(reader.page, server.origin, 'reader');
    const sender = await bot('busy-sender');
    const total = MAX_ROOM_MESSAGES + 150;
    await post(
      sender,
      Array.from({ length: total }, (_, i) => `busy message ${i + 1}`),
    );
    await waitForMessage(reader.page, `busy message ${total}`);
    await settle(reader.page);
    const shown = await reader.page.locator('#messages .message').count();
    assert.ok(shown > MAX_ROOM_MESSAGES - TRIM_BATCH && shown <= MAX_ROOM_MESSAGES, `${shown} message nodes for ${total} messages`);
    assert.equal(await reader.page.locator('#load-older').isVisible(), true, '"Load older messages" offers the dropped ones');

    // One more live message: watch the log's children and keep a handle on the current nodes.
    await reader.page.evaluate(() => {
      const log = document.getElementById('messages')!;
      const record = { added: 0, removed: 0, kept: [...log.children] };
      (window as unknown as { __mutations: typeof record }).__mutations = record;
      new MutationObserver((mutations) => {
        for (const mutation of mutations) {
          record.added += mutation.addedNodes.length;
          record.removed += mutation.removedNodes.length;
        }
      }).observe(log, { childList: true });
    });
    await post(sender, ['one more live message']);
    await waitForMessage(reader.page, 'one more live message');
    await settle(reader.page);
    const after = await reader.page.evaluate(() => {
      const log = document.getElementById('messages')!;
      const record = (window as unknown as { __mutations: { added: number; removed: number; kept: Element[] } }).__mutations;
      const children = [...log.children];
      return {
        added: record.added,
        removed: record.removed,
        count: children.length,
        // Every node that was there and is still there is the same object (no re-render).
        sameNodes: record.kept.filter((node) => node.isConnected).every((node, i) => children[i] === node),
        keptNodes: record.kept.filter((node) => node.isConnected).length,
        last: children.at(-1)?.textContent ?? '',
      };
    });
    // One node added; none removed unless this message crossed the cap (then a batch of the oldest).
    const trimmed = shown + 1 > MAX_ROOM_MESSAGES ? MAX_ROOM_MESSAGES + 1 - (MAX_ROOM_MESSAGES - TRIM_BATCH) : 0;
    assert.deepEqual(
      { added: after.added, removed: after.removed, count: after.count, sameNodes: after.sameNodes, keptNodes: after.keptNodes },
      { added: 1, removed: trimmed, count: shown + 1 - trimmed, sameNodes: true, keptNodes: shown - trimmed },
    );
    assert.match(after.last, /one more live message/);

    // Scrolling back: an older page comes in, the cap holds, and the newest wait behind a button.
    const oldestShown = Number(/busy message (\d+)/.exec((await reader.page.locator('#messages .message-body').first().textContent()) ?? '')?.[1]);
    assert.ok(oldestShown > 1, `the oldest shown is busy message ${oldestShown}`);
    await reader.page.click('#load-older');
    await waitForMessage(reader.page, `busy message ${oldestShown - 1}`);
    await settle(reader.page);
    assert.equal(await reader.page.locator('#messages .message').count(), MAX_ROOM_MESSAGES);
    assert.equal(await reader.page.locator('#load-newer').isVisible(), true);
    await reader.page.click('#load-newer');
    await waitForMessage(reader.page, 'one more live message');
    await reader.page.locator('#load-newer').waitFor({ state: 'hidden', ...WAIT });
    assert.ok((await reader.page.locator('#messages .message').count()) <= MAX_ROOM_MESSAGES);
    assert.deepEqual(reader.watch.pageErrors, []);
    assert.deepEqual(reader.watch.violations, []);
  });
});

describe('a busy room, read scrolled up', () => {
  test('when the oldest messages are dropped, what the reader is looking at stays where it is', async () => {
    const reader = await person();
    await signIn(reader.page, server.origin, 'scrolled-reader');
    const sender = await bot('scroll-sender');
    await post(
      sender,
      Array.from({ length: MAX_ROOM_MESSAGES }, (_, i) => `scroll message ${i + 1}`),
    );
    await waitForMessage(reader.page, `scroll message ${MAX_ROOM_MESSAGES}`);
    await settle(reader.page);
    // Scroll so a message in the middle of the list is at the top of the log.
    const before = await reader.page.evaluate(() => {
      const log = document.getElementById('messages')!;
      const target = log.children[Math.floor(log.children.length / 2)] as HTMLElement;
      log.scrollTop += target.getBoundingClientRect().top - log.getBoundingClientRect().top;
      // Relative to the log: the "Load older messages" button may appear above it meanwhile.
      return { id: target.dataset['id']!, top: target.getBoundingClientRect().top - log.getBoundingClientRect().top, count: log.children.length };
    });
    await settle(reader.page);
    // Enough live messages to cross the cap: a batch of the oldest is dropped above the reader.
    await post(
      sender,
      Array.from({ length: TRIM_BATCH + 5 }, (_, i) => `later message ${i + 1}`),
    );
    await waitForMessage(reader.page, `later message ${TRIM_BATCH + 5}`);
    await settle(reader.page);
    const after = await reader.page.evaluate((id) => {
      const log = document.getElementById('messages')!;
      const target = log.querySelector(`[data-id="${id}"]`);
      return { top: target ? target.getBoundingClientRect().top - log.getBoundingClientRect().top : null, count: log.children.length };
    }, before.id);
    assert.ok(after.count <= MAX_ROOM_MESSAGES && after.count < before.count + TRIM_BATCH + 5, `nothing was dropped: ${before.count} → ${after.count}`);
    assert.ok(after.top !== null && Math.abs(after.top - before.top) <= 2, `the message read moved from ${before.top} to ${after.top}`);
  });
});

describe('links say where they go', () => {
  test('an IDN look-alike of apple.com, with link text "https://apple.com", shows xn--80ak6aa92e.com beside it', async () => {
    const reader = await person();
    await signIn(reader.page, server.origin, 'link-reader');
    const sender = await bot('link-sender');
    await post(sender, ['look-alike: [https://apple.com](https://\u0430\u0440\u0440\u04cf\u0435.com/login) and [here](https://example.com/x)']);
    await waitForMessage(reader.page, 'look-alike:');
    const message = reader.page.locator('#messages .message-body', { hasText: 'look-alike:' });
    const labels = await message.locator('.link-host').allTextContents();
    assert.deepEqual(labels, ['xn--80ak6aa92e.com', 'example.com']);
    assert.ok(await message.locator('.link-host').first().isVisible());
    // Beside the link, outside it: clicking the label does not follow the link, and the label is text.
    const placement = await message.evaluate((body) =>
      [...body.querySelectorAll('.link-host')].map((label) => ({
        after: label.previousElementSibling?.localName,
        inLink: Boolean(label.closest('a')),
        children: label.children.length,
      })),
    );
    assert.deepEqual(placement, [
      { after: 'a', inLink: false, children: 0 },
      { after: 'a', inLink: false, children: 0 },
    ]);
    assert.deepEqual(reader.watch.violations, []);
  });
});

describe('bidi controls stay inside their message', () => {
  test("a U+202E in one message reorders neither the next message, its username, the text after a link, nor the link's host", async () => {
    const reader = await person();
    await signIn(reader.page, server.origin, 'bidi-reader');
    const mallory = await bot('mallory');
    const bob = await bot('bob');
    await post(mallory, ['first part \u202E']);
    await post(bob, ['plain-after-override']);
    await post(mallory, ['[click\u202E](https://example.com/) tail-after-link']);
    await waitForMessage(reader.page, 'tail-after-link');
    await settle(reader.page);
    assertLeftToRight(await characterLefts(reader.page, '#messages .message-body', 'plain-after-override', 'plain-after-override'), 'the next message');
    assertLeftToRight(await characterLefts(reader.page, '#messages .message', 'plain-after-override', 'bob'), 'the next username');
    assertLeftToRight(
      await characterLefts(reader.page, '#messages .message-body', 'tail-after-link', 'tail-after-link'),
      'the text after a link whose text ends in U+202E',
    );
    assertLeftToRight(await characterLefts(reader.page, '#messages .message-body', 'tail-after-link', 'example.com'), "the link's host");
    // The check can fail: the same U+202E in an un-isolated element does reorder what follows it.
    const control = await reader.page.evaluate(() => {
      const p = document.createElement('p');
      p.textContent = 'x\u202E abcdef';
      document.body.append(p);
      const node = p.firstChild as Text;
      const lefts = [3, 4, 5].map((k) => {
        const range = document.createRange();
        range.setStart(node, k);
        range.setEnd(node, k + 1);
        return range.getBoundingClientRect().left;
      });
      p.remove();
      return lefts;
    });
    assert.ok(control[0]! > control[1]! && control[1]! > control[2]!, `the control text was not reversed: ${JSON.stringify(control)}`);
  });
});

describe('a tab refused by the per-user connection cap', () => {
  test('stops after a few tries, says the connection limit may have been reached, and stops polling /api/me; Try again works once a tab closes', async () => {
    const { context, page: first } = await person();
    await signIn(first, server.origin, 'many-tabs');
    const second = await context.newPage();
    const probes: number[] = [];
    second.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/me') probes.push(Date.now());
    });
    await second.goto(`${server.origin}/`);
    await second.locator('#connection-refused').waitFor({ state: 'visible', timeout: 60_000 });
    assert.match((await second.locator('#connection-refused').textContent()) ?? '', /connection\s+limit may have been reached/);
    const atNotice = probes.length;
    // 1 at start-up plus one per refused handshake (4): a few, not a stream.
    assert.ok(atNotice <= 6, `${atNotice} /api/me requests before the notice`);
    // Then silence. (Old behaviour: another probe within the backoff ceiling, 30 s at most;
    // the window below covers at least two of its steps after four refusals: 4–8 s, 8–16 s.)
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    assert.equal(probes.length, atNotice, `/api/me kept being polled: ${probes.length - atNotice} more in 12 s`);
    assert.equal(await second.textContent('#connection-state'), 'offline');

    // Closing the other tab frees the slot; Try again connects.
    await first.close();
    const deadline = Date.now() + WAIT.timeout;
    while (server.parley.connectionsOf('many-tabs') > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await second.click('#connection-retry');
    await waitConnected(second);
    assert.equal(await second.locator('#connection-refused').isHidden(), true);
  });
});
