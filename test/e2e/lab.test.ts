// requires: chromium
// The workshop attack lab (lab/), driven in Chromium: a victim signed in to Parley, the
// attacker's pages run each attack against them. With every control on, each attack is
// shown blocked; with the lab switch (PARLEY_UNSAFE_DISABLE=origin,csrf,encoding,sanitize) the
// WebSocket hijack and the logout CSRF succeed, which proves these pages can tell.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Control } from '../../server/config.ts';
import { startLab, type Lab } from '../../lab/lab.ts';
import { labPayloads } from '../../lab/payloads.ts';
import { VICTIM } from '../../lab/victim.ts';
import { axeViolations } from './axe.ts';
import {
  ensureClientBuilt,
  freePort,
  launchBrowser,
  newContext,
  screenshot,
  settle,
  signIn,
  WAIT,
  waitForMessage,
  watchContext,
  type Watch,
} from './browser.ts';

let browser: Browser;

before(async () => {
  await ensureClientBuilt();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

type Setup = { lab: Lab; context: BrowserContext; victim: Page; watch: Watch; close: () => Promise<void> };

/** A lab, and a browser profile in which 'victim' is signed in to Parley (tab 1). */
async function setUp(disabled: Control[]): Promise<Setup> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-lab-test-'));
  const parleyPort = await freePort();
  let attackerPort = await freePort();
  while (attackerPort === parleyPort) attackerPort = await freePort();
  // The sanitizer's time budget is not under test here (a busy CI box must not turn a payload
  // into too_complex); test/sanitize-pool.test.ts covers it.
  const lab = await startLab({ dataDir, parleyPort, attackerPort, disabled, env: { SANITIZE_BUDGET_SECONDS: '10' } });
  const context = await newContext(browser);
  const watch = await watchContext(context);
  const victim = await context.newPage();
  // The lab seeded 'victim' (with a private note) at start: sign in as them.
  await signIn(victim, lab.parleyOrigin, VICTIM.username, 'login', VICTIM.password);
  return {
    lab,
    context,
    victim,
    watch,
    close: async () => {
      await context.close().catch(() => {});
      await lab.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Opens a lab page in the victim's browser, runs its attack, returns the verdict. */
async function runAttack(setup: Setup, url: string): Promise<{ page: Page; outcome: string; text: string }> {
  const page = await setup.context.newPage();
  await page.goto(url);
  await page.locator('#run:enabled').waitFor(WAIT);
  await page.click('#run');
  const outcome = page.locator('#outcome[data-outcome]');
  await outcome.waitFor(WAIT);
  return { page, outcome: (await outcome.getAttribute('data-outcome')) ?? '', text: (await outcome.textContent()) ?? '' };
}

async function stepsText(page: Page): Promise<string> {
  return (await page.locator('#steps').textContent()) ?? '';
}

async function victimStillSignedIn(setup: Setup): Promise<void> {
  await setup.victim.bringToFront();
  assert.equal(await setup.victim.textContent('#connection-state'), 'connected');
  assert.equal(await setup.victim.locator('#auth-screen').isHidden(), true);
  assert.ok(setup.lab.parley.connectionsOf('victim') >= 1);
}

describe('attack lab, every control on: each attack is blocked', () => {
  let setup: Setup;
  before(async () => {
    setup = await setUp([]);
  });
  after(() => setup?.close());

  test('overview page: origins, no controls off, links to every attack', async () => {
    const page = await setup.context.newPage();
    await page.goto(`${setup.lab.attackerOrigin}/`);
    await page.locator('[data-fill="parleyOrigin"]', { hasText: setup.lab.parleyOrigin }).first().waitFor(WAIT);
    assert.equal(await page.locator('#disabled-banner').isHidden(), true);
    const links = await page.locator('.attacks a').evaluateAll((nodes) => nodes.map((a) => (a as HTMLAnchorElement).href));
    assert.deepEqual(
      links.map((href) => new URL(href).pathname),
      ['/cswsh.html', '/csrf.html', '/clickjacking.html', '/xss.html', '/sibling.html'],
    );
    assert.equal(new URL(links[4]!).origin, setup.lab.siblingOrigin);
    await screenshot(page, 'lab-overview');
    await page.close();
  });

  test('cross-site WebSocket hijacking: the cookie is sent (same site), the Origin check refuses 403', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/cswsh.html`);
    assert.equal(outcome, 'blocked', text);
    assert.match(text, /HTTP 403 \(origin\)/);
    assert.match(text, /even though the browser sent the victim's cookie/);
    assert.match(await stepsText(page), /close code 1006/);
    await page.locator('#server-log li', { hasText: 'upgrade_refused' }).first().waitFor(WAIT);
    // Nothing of the victim's was read: no loot, and the note appears nowhere on the page.
    assert.equal(await page.locator('#loot').isHidden(), true);
    assert.ok(!((await page.textContent('body')) ?? '').includes(VICTIM.note), "the victim's note is on the attacker's page");
    // The "why" panel explains the control that held, not a switched-off one.
    assert.equal(await page.locator('[data-when-off="origin"]').isHidden(), true);
    assert.equal(await page.locator('[data-when-on="origin"]').isVisible(), true);
    await screenshot(page, 'lab-cswsh', { fullPage: true });
    await victimStillSignedIn(setup);
  });

  test('CSRF: forged login, logout, password change and send are refused; the JSON fetch never leaves the browser', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/csrf.html`);
    assert.equal(outcome, 'blocked', text);
    for (const name of ['login', 'logout', 'password', 'send']) {
      const result = page.locator(`#result-${name}`);
      assert.equal(await result.getAttribute('data-outcome'), 'blocked', name);
      assert.match((await result.textContent()) ?? '', /HTTP 403 csrf_origin/, name);
    }
    assert.equal(await page.locator('[data-when-off="csrf"]').isHidden(), true, 'the why panel claims the CSRF guard is off');
    assert.equal(await page.locator('#result-fetch').getAttribute('data-outcome'), 'blocked');
    assert.match((await page.locator('#result-fetch').textContent()) ?? '', /preflight/);
    // Same site, so SameSite=Strict let the cookie through: the guard is what stopped these.
    assert.match(
      await stepsText(page),
      new RegExp(`POST /api/logout: the browser sent Origin ${setup.lab.attackerOrigin}, Sec-Fetch-Site same-site, the victim's cookie`),
    );
    await screenshot(page, 'lab-csrf', { fullPage: true });
    await victimStillSignedIn(setup);
  });

  test('clickjacking: Parley in an iframe is not rendered (frame-ancestors)', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/clickjacking.html`);
    assert.equal(outcome, 'blocked', text);
    assert.match(text, /frame-ancestors 'none'/);
    // What the page cannot see, the test can: the frame holds Chromium's error page, not Parley.
    const frame = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(frame, 'the attacker page has its iframe');
    assert.ok(!frame.url().startsWith(setup.lab.parleyOrigin), `the frame rendered Parley: ${frame.url()}`);
    assert.match(frame.url(), /^chrome-error:/);
    await screenshot(page, 'lab-clickjacking', { fullPage: true });
  });

  test('stored XSS: every payload reaches the victim as inert text; no beacon, no dialog, no violation', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/xss.html`);
    assert.equal(outcome, 'blocked', text);
    const payloads = labPayloads(setup.lab.attackerOrigin);
    await setup.victim.bringToFront();
    await waitForMessage(setup.victim, `[xss ${payloads.length}/${payloads.length}:`);
    await settle(setup.victim);
    assert.equal(new URL(setup.victim.url()).origin, setup.lab.parleyOrigin, 'the victim tab was navigated away');
    assert.equal(await page.textContent('#pwned-count'), '0');
    assert.deepEqual(
      setup.lab.events.recent.filter((e) => e.kind === 'pwned'),
      [],
    );
    assert.deepEqual(setup.watch.dialogs, []);
    assert.deepEqual(
      setup.watch.violations.filter((v) => v.documentURI.startsWith(setup.lab.parleyOrigin)),
      [],
      'no CSP / Trusted Types violation in Parley',
    );
    // Encoding: the victim reads each payload as the characters mallory typed.
    const first = payloads[0]!;
    const shown = await setup.victim
      .locator('#messages .message-body', { hasText: first.text.slice(0, 20) })
      .first()
      .innerText();
    assert.equal(shown, first.text);
    assert.equal(await page.locator('[data-when-off="encoding"]').first().isHidden(), true);
    await screenshot(setup.victim, 'lab-xss-victim');
    await page.bringToFront();
    await screenshot(page, 'lab-xss');
  });

  test('sibling origin https://evil.localhost: refused by the exact Origin match (and no cookie: a different site)', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.siblingOrigin}/sibling.html`);
    assert.equal(outcome, 'blocked', text);
    assert.match(text, /WebSocket: HTTP 403, the Origin is not in Parley's exact allowlist/);
    assert.match(text, /login form: HTTP 403 \(csrf_origin\)/);
    assert.match(await stepsText(page), /NO session cookie/);
    await screenshot(page, 'lab-sibling', { fullPage: true });
    await victimStillSignedIn(setup);
  });
});

describe('attack lab with origin, csrf, encoding and sanitize switched off (PARLEY_UNSAFE_DISABLE)', () => {
  let setup: Setup;
  before(async () => {
    setup = await setUp(['origin', 'csrf', 'encoding', 'sanitize']);
  });
  after(() => setup?.close());

  test('the overview page says which controls are off', async () => {
    const page = await setup.context.newPage();
    await page.goto(`${setup.lab.attackerOrigin}/`);
    await page.locator('#disabled-banner').waitFor({ state: 'visible', ...WAIT });
    assert.equal(await page.textContent('#disabled-list'), 'origin, csrf, encoding, sanitize');
    await page.close();
  });

  test("without the Origin check, the hijack works: the attacker page reads the victim's rooms and posts as them", async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/cswsh.html`);
    assert.equal(outcome, 'succeeded', text);
    assert.match(text, /"victim"/);
    const posted = `Posted by ${setup.lab.attackerOrigin} through a hijacked socket (CSWSH).`;
    await waitForMessage(setup.victim, posted);
    const message = setup.victim.locator('#messages .message', { hasText: posted });
    assert.equal(await message.locator('.message-user').textContent(), 'victim');
    // The victim's private note, read out on the attacker's page, visibly.
    const loot = page.locator('#loot');
    assert.equal(await loot.isVisible(), true);
    assert.equal(await loot.locator('.stolen-note').first().textContent(), VICTIM.note);
    assert.match((await loot.textContent()) ?? '', new RegExp(`#${VICTIM.room}, ${VICTIM.username}`));
    // The "why" panel names the switched-off control and why the attack therefore worked.
    const why = page.locator('[data-when-off="origin"]');
    assert.equal(await why.isVisible(), true);
    assert.match((await why.textContent()) ?? '', /Origin check is switched off.*--disable origin.*That is why the attack worked/s);
    assert.equal(await page.locator('[data-when-on="origin"]').isHidden(), true);
    assert.deepEqual(await axeViolations(page), [], 'axe, the hijacking page with the stolen note');
    await screenshot(page, 'lab-cswsh-succeeded', { fullPage: true });
  });

  test('from the sibling origin, SameSite=Strict still keeps the cookie off: the upgrade is refused 401', async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.siblingOrigin}/sibling.html`);
    assert.equal(outcome, 'blocked', text);
    assert.match(text, /WebSocket: HTTP 401/);
    assert.match(await stepsText(page), /NO session cookie/);
  });

  test("without encoding and the server sanitizer, the browser's own layers still render every payload inert", async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/xss.html`);
    assert.equal(outcome, 'blocked', text);
    // The "why" panel says both server layers are off, and that the browser layer held.
    for (const control of ['encoding', 'sanitize']) assert.equal(await page.locator(`li [data-when-off="${control}"]`).isVisible(), true, control);
    assert.match((await page.locator('p[data-when-off="encoding"]').textContent()) ?? '', /both server layers off.*browser layer holds/s);
    const payloads = labPayloads(setup.lab.attackerOrigin);
    await waitForMessage(setup.victim, `[xss ${payloads.length}/${payloads.length}:`);
    await settle(setup.victim);
    assert.equal(new URL(setup.victim.url()).origin, setup.lab.parleyOrigin);
    assert.equal(await page.textContent('#pwned-count'), '0');
    assert.deepEqual(
      setup.lab.events.recent.filter((e) => e.kind === 'pwned'),
      [],
    );
    assert.deepEqual(setup.watch.dialogs, []);
  });

  test("without the CSRF guard, the forged logout works: the victim's tab returns to the sign-in screen", async () => {
    const { page, outcome, text } = await runAttack(setup, `${setup.lab.attackerOrigin}/csrf.html`);
    assert.equal(outcome, 'succeeded', text);
    assert.equal(await page.locator('#result-logout').getAttribute('data-outcome'), 'succeeded');
    // The text/plain bodies still fail: Parley only parses application/json (the next layer).
    assert.equal(await page.locator('#result-login').getAttribute('data-outcome'), 'blocked');
    assert.equal(await page.locator('#result-fetch').getAttribute('data-outcome'), 'blocked');
    assert.equal(await page.locator('[data-when-off="csrf"]').isVisible(), true, 'the why panel names the switched-off CSRF guard');
    assert.equal(await page.locator('[data-when-on="csrf"]').isHidden(), true);
    await setup.victim.locator('#auth-screen').waitFor({ state: 'visible', ...WAIT });
    assert.equal(setup.lab.parley.connectionsOf('victim'), 0);
    await screenshot(page, 'lab-csrf-succeeded', { fullPage: true });
  });
});

// The lab's switch is the server's own: it refuses to run bound to anything but loopback.
describe('the lab switch outside loopback', () => {
  test('PARLEY_UNSAFE_DISABLE is refused when HOST is not loopback', async () => {
    const { loadConfig, ConfigError } = await import('../../server/config.ts');
    assert.throws(() => loadConfig({ HOST: '0.0.0.0', PARLEY_UNSAFE_DISABLE: 'origin' }, []), ConfigError);
  });
});
