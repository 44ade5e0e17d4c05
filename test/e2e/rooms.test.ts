// requires: chromium
// Rooms with consent in a real browser (Debian's Chromium through playwright-core), three
// people: an invitation waits for Accept or Decline; the owner's member list shows who is
// in the room and who is online, with Remove and Cancel invitation buttons; a removed member
// loses the room at once; the join/leave/invite lines show as text; every screen passes axe.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.ts';
import { axeViolations } from './axe.ts';
import { ensureClientBuilt, launchBrowser, newContext, screenshot, settle, signIn, WAIT, waitForMessage, newPerson, type Person } from './browser.ts';

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function person(name: string): Promise<Person> {
  const someone = await newPerson(await newContext(browser), contexts);
  await signIn(someone.page, server.origin, name);
  return someone;
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill('#composer', text);
  await page.click('#send');
  await waitForMessage(page, text);
}

async function axeClean(page: Page, screen: string): Promise<void> {
  await settle(page);
  assert.deepEqual(await axeViolations(page), [], `axe on ${screen}`);
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

describe('rooms with consent, three people in Chromium', () => {
  test('invite → accept / decline; the member list with presence; remove and cancel from buttons; lines in the room', async () => {
    const ann = await person('ann');
    const ben = await person('ben');
    const cat = await person('cat');

    await ann.page.fill('#new-room', 'book-club');
    await ann.page.click('#create-room');
    await ann.page.locator('#room-title', { hasText: 'book-club' }).waitFor(WAIT);
    // The owner alone: listed as the owner, online.
    await ann.page.locator('#member-list [data-member="ann"]', { hasText: 'online' }).waitFor(WAIT);

    // Ben and Cat are invited: each sees who invited them to what; the room is not theirs yet.
    for (const name of ['ben', 'cat']) {
      await ann.page.fill('#invite-user', name);
      await ann.page.click('#invite');
      await ann.page.locator('#room-events li', { hasText: `ann invited ${name}.` }).waitFor(WAIT);
    }
    await ben.page.locator('[data-invitation="book-club"]', { hasText: 'ann invited you to book-club' }).waitFor(WAIT);
    await cat.page.locator('[data-invitation="book-club"]', { hasText: 'ann invited you to book-club' }).waitFor(WAIT);
    assert.equal(await ben.page.locator('#room-list [data-room="book-club"]').count(), 0);
    await axeClean(ben.page, 'a pending invitation');
    await screenshot(ben.page, 'rooms-invitation');
    // The owner sees both as invited, each with a Cancel invitation button.
    await ann.page.locator('#member-list [data-invited="cat"] [data-testid="cancel-cat"]').waitFor(WAIT);

    // Ben accepts: the room opens for him; the owner sees him join, online, with a Remove button.
    await ben.page.click('[data-testid="accept-book-club"]');
    await ben.page.locator('#room-title', { hasText: 'book-club' }).waitFor(WAIT);
    assert.equal(await ben.page.locator('[data-invitation="book-club"]').count(), 0, 'the invitation is gone');
    await ann.page.locator('#room-events li', { hasText: 'ben joined the room.' }).waitFor(WAIT);
    await ann.page.locator('#member-list [data-member="ben"]', { hasText: 'online' }).waitFor(WAIT);
    await ann.page.locator('#member-list [data-member="ben"] [data-testid="remove-ben"]').waitFor(WAIT);
    // Ben (a member, not the owner) sees who is in the room, no management buttons, and a Leave button.
    await ben.page.locator('#member-list [data-member="ann"]', { hasText: 'online' }).waitFor(WAIT);
    assert.equal(await ben.page.locator('#member-list button').count(), 0);
    assert.equal(await ben.page.locator('#leave-room').isVisible(), true);
    await send(ann.page, 'Welcome to the club');
    await waitForMessage(ben.page, 'Welcome to the club');
    await axeClean(ann.page, "the owner's member list");
    await axeClean(ben.page, "a member's view of the room");
    await screenshot(ann.page, 'rooms-members');

    // Cancelled by the owner from the member list, then invited again (a cancel is not a decline).
    await ann.page.click('[data-testid="cancel-cat"]');
    await cat.page.locator('[data-invitation="book-club"]').waitFor({ state: 'detached', ...WAIT });
    await ann.page.locator('#room-events li', { hasText: 'The invitation of cat was cancelled.' }).waitFor(WAIT);
    await ann.page.fill('#invite-user', 'cat');
    await ann.page.click('#invite');
    await cat.page.locator('[data-invitation="book-club"]').waitFor(WAIT);

    // Cat declines: the owner sees the line; Cat never had the room; the decline is remembered,
    // so the owner's next invitation is refused with a notice and never reaches Cat.
    await cat.page.click('[data-testid="decline-book-club"]');
    await ann.page.locator('#room-events li', { hasText: 'cat declined the invitation.' }).waitFor(WAIT);
    await ann.page.locator('#member-list [data-invited="cat"]').waitFor({ state: 'detached', ...WAIT });
    assert.equal(await cat.page.locator('#room-list [data-room="book-club"]').count(), 0);
    await ann.page.fill('#invite-user', 'cat');
    await ann.page.click('#invite');
    await ann.page.locator('#error', { hasText: 'cat declined your invitation' }).waitFor(WAIT);
    await settle(cat.page);
    assert.equal(await cat.page.locator('[data-invitation="book-club"]').count(), 0);

    // The owner removes Ben: the room leaves his list at once; messages after it never reach him.
    await ann.page.click('[data-testid="remove-ben"]');
    await ben.page.locator('#room-list [data-room="book-club"]').waitFor({ state: 'detached', ...WAIT });
    await ann.page.locator('#room-events li', { hasText: 'ann removed ben from the room.' }).waitFor(WAIT);
    await send(ann.page, 'After ben was removed');
    await settle(ben.page);
    assert.ok(!(await ben.page.locator('#messages').textContent())?.includes('After ben was removed'));

    for (const { watch } of [ann, ben, cat]) {
      assert.deepEqual(watch.violations, []);
      assert.deepEqual(watch.pageErrors, []);
    }
  });

  test('a member leaves with the Leave button: the room goes from their list, the owner sees the line', async () => {
    const dee = await person('dee');
    const eve = await person('eve');
    await dee.page.fill('#new-room', 'garden');
    await dee.page.click('#create-room');
    await dee.page.locator('#room-title', { hasText: 'garden' }).waitFor(WAIT);
    await dee.page.fill('#invite-user', 'eve');
    await dee.page.click('#invite');
    await eve.page.click('[data-testid="accept-garden"]');
    await eve.page.locator('#room-title', { hasText: 'garden' }).waitFor(WAIT);
    await eve.page.click('#leave-room');
    await eve.page.locator('#room-list [data-room="garden"]').waitFor({ state: 'detached', ...WAIT });
    await dee.page.locator('#room-events li', { hasText: 'eve left the room.' }).waitFor(WAIT);
    await dee.page.locator('#member-list [data-member="eve"]').waitFor({ state: 'detached', ...WAIT });
    // The owner has no Leave button.
    assert.equal(await dee.page.locator('#leave-room').isVisible(), false);
  });
});
