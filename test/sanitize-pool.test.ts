// requires: postgres
// What a `send` may cost, and what it may store: the sanitizer pool, its bounds and its budget,
// cost-charged rate limits, empty messages and ill-formed text — over real WSS against the real
// server (and PostgreSQL where the store matters), plus the small pieces on their own. A message
// is text with a Markdown subset (decision 019); the HTML shape bounds apply where text is taken
// as HTML, which is the lab switch `encoding` off (ENCODING_OFF below).
// Run: npx node --test test/sanitize-pool.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../server/config.ts';
import { markupShape } from '../server/security/markup-shape.ts';
import { TokenBuckets } from '../server/security/rate-limit.ts';
import { SanitizerPool } from '../server/security/sanitizer-pool.ts';
import { hasVisibleText } from '../server/security/visible-text.ts';
import type { ServerFrame } from '../shared/protocol.ts';
import { joined, open, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';
import { startPostgres, type PostgresService } from './helpers/services.ts';
import { COSTLY_MARKDOWN } from '../bench/costly-messages.ts';

/** 2,000 characters of nested tags: ~300 ms of jsdom + DOMPurify on this machine's main thread. */
const NESTED = '<table><td>x'.repeat(166);
const HIGH_RATE = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' };
/** Text is HTML (the lab switch): the sanitizer's own bounds are what stands between a sender and the workers. */
const ENCODING_OFF = { disabled: ['encoding' as const] };
/** 2,000 characters of e-mail addresses: the costliest Markdown shape found (~55 ms: linkify, then DOMPurify on 285 links). */
const COSTLY = COSTLY_MARKDOWN[0]!;

type Answer = { type: 'ack'; id: number } | { type: 'error'; code: string };

/** The ack or error that names `clientId` (the server answers every send with exactly one). */
async function answer(client: Client, clientId: string, timeoutMs = 10_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const f of client.frames) {
      if (f.type === 'ack' && f.clientId === clientId) return { type: 'ack', id: f.id };
      if (f.type === 'error' && f.clientId === clientId) return { type: 'error', code: f.code };
    }
    await sleep(10);
  }
  throw new Error(`no answer for ${clientId}: ${JSON.stringify(client.frames.slice(-5))}`);
}

async function historyOf(server: TestServer, cookie: string): Promise<Map<number, string>> {
  const reader = await open(server, cookie);
  reader.send({ type: 'join', room: 'lobby' });
  const page = await reader.next('history');
  reader.ws.close();
  return new Map(page.messages.map((m) => [m.id, m.html]));
}

const broadcastOf = (client: Client, id: number) =>
  client.frames.find((f): f is Extract<ServerFrame, { type: 'message' }> => f.type === 'message' && f.id === id)?.html;

describe('the small pieces', () => {
  test('markupShape counts markup tokens and estimates nesting without parsing', () => {
    assert.deepEqual(markupShape('plain < text > & more'), { tags: 0, depth: 0 });
    assert.deepEqual(markupShape('<b>bold</b> and <i>it</i>'), { tags: 4, depth: 1 });
    assert.deepEqual(markupShape('<b><i><u>x</u></i></b>'), { tags: 6, depth: 3 });
    assert.deepEqual(markupShape('a<br>b<img src=x><hr/>'), { tags: 3, depth: 0 }, 'void elements do not nest');
    assert.deepEqual(markupShape('<ul><li>a<li>b<li>c</ul>'), { tags: 5, depth: 2 }, 'sibling <li>s close each other');
    assert.deepEqual(markupShape('<!-- c --><!doctype html></x'), { tags: 3, depth: 0 });
    assert.equal(markupShape(NESTED).depth, 332);
    assert.equal(markupShape(NESTED).tags, 332);
  });

  test('hasVisibleText: white space, zero-width, fillers and controls are not visible', () => {
    for (const blank of [
      '',
      ' \n\t',
      '\u200b\u200c\u200d\u2060\ufeff',
      '\u3164',
      '\u115f\u1160',
      '\uffa0',
      '\u00a0\u3000',
      '\u202e\u2066',
      '\u2800',
      '\u0000\u0007',
      '\u00ad',
    ]) {
      assert.equal(hasVisibleText(blank), false, JSON.stringify(blank));
    }
    for (const text of ['a', '\u200bx', '😀', '\ufffd', '.', '\u3164한']) assert.equal(hasVisibleText(text), true, JSON.stringify(text));
  });

  test('the sanitizer limits come from env, validated at start', () => {
    const config = loadConfig(
      { SANITIZE_WORKERS: '3', SANITIZE_BUDGET_SECONDS: '0.05', SANITIZE_MAX_TAGS: '40', SANITIZE_MAX_DEPTH: '8', SANITIZE_MAX_QUEUE: '9' },
      [],
    );
    assert.deepEqual(config.sanitize, {
      workers: 3,
      budgetMs: 50,
      maxTags: 40,
      maxDepth: 8,
      maxQueue: 9,
      maxHtmlChars: 16_384,
      workerHeapMb: 256,
      maxInFlightPerUser: 4,
      maxInFlightPerAddress: 6, // half of workers + queue: one address keeps half the pool
    });
    const defaults = loadConfig({}, []).sanitize;
    assert.ok(defaults.workers >= 1 && defaults.budgetMs === 200 && defaults.maxTags === 100 && defaults.maxDepth === 16);
    assert.equal(defaults.maxInFlightPerAddress, Math.floor((defaults.workers + 256) / 2));
    const shares = loadConfig({ SANITIZE_MAX_IN_FLIGHT_PER_USER: '2', SANITIZE_MAX_IN_FLIGHT_PER_ADDRESS: '50' }, []).sanitize;
    assert.deepEqual([shares.maxInFlightPerUser, shares.maxInFlightPerAddress], [2, 50]);
    for (const [name, value] of [
      ['SANITIZE_WORKERS', '0'],
      ['SANITIZE_BUDGET_SECONDS', '0'],
      ['SANITIZE_MAX_TAGS', 'many'],
      ['SANITIZE_MAX_DEPTH', '-1'],
      ['SANITIZE_MAX_QUEUE', '1.5'],
      ['SANITIZE_MAX_IN_FLIGHT_PER_USER', '0'],
      ['SANITIZE_MAX_IN_FLIGHT_PER_ADDRESS', 'half'],
    ]) {
      assert.throws(
        () => loadConfig({ [name!]: value! }, []),
        (error: unknown) => error instanceof ConfigError && error.message.includes(name!),
      );
    }
  });

  test('TokenBuckets: take(units) is all or nothing; charge() may run into debt, refused until repaid', () => {
    let now = 0;
    const buckets = new TokenBuckets(10, 30, () => now);
    assert.equal(buckets.take('a', 25), true);
    assert.equal(buckets.take('a', 6), false, 'not enough left: nothing taken');
    assert.equal(buckets.take('a', 5), true);
    assert.equal(buckets.charge('a', 100), false, 'in debt');
    now += 2900; // 29 tokens back: still 1 short of the burst-sized debt floor (−30) + 1
    assert.equal(buckets.take('a'), false, 'debt is capped at one burst, and repaid before the next frame');
    now += 200;
    assert.equal(buckets.take('a'), true);
    assert.equal(buckets.take('b'), true, 'per key');
  });
});

describe('the sanitizer pool', () => {
  test('a message over the time budget is refused and its worker replaced; the pool keeps serving', async () => {
    // No length limit in the pool itself: 12,000 characters of nesting take seconds, far over 500 ms.
    const pool = new SanitizerPool({ workers: 1, budgetMs: 500, maxQueue: 16, workerHeapMb: 256 });
    try {
      const first = await pool.sanitize('<b>before</b><script>x</script>');
      assert.deepEqual(first.ok && { html: first.html, visible: first.visible }, { html: '<b>before</b>', visible: true });
      const threadsBefore = pool.threadIds();
      // Queued behind the slow one: the budget counts from when a worker starts a message, not from the queue.
      const [slow, queued] = await Promise.all([pool.sanitize('<table><td>x'.repeat(1000)), pool.sanitize('<i>queued</i>')]);
      assert.deepEqual(slow, { ok: false, reason: 'over_budget' });
      assert.ok(queued.ok && queued.html === '<i>queued</i>', `the message queued behind it is served: ${JSON.stringify(queued)}`);
      assert.equal(pool.replaced, 1);
      const after = await pool.sanitize('<b>after</b>');
      assert.ok(after.ok && after.html === '<b>after</b>');
      assert.notDeepEqual(pool.threadIds(), threadsBefore, 'the stuck worker was terminated and a new one started');
      assert.equal(pool.threadIds().length, 1);
    } finally {
      await pool.close();
    }
  });

  test('a full queue answers busy instead of growing without bound', async () => {
    const pool = new SanitizerPool({ workers: 1, budgetMs: 5000, maxQueue: 2, workerHeapMb: 256 });
    try {
      await pool.sanitize('<b>ready</b>'); // the worker has started
      const verdicts = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.sanitize(`<b>${i}</b>${'<u>x'.repeat(60)}`)));
      assert.ok(
        verdicts.some((v) => !v.ok && v.reason === 'busy'),
        JSON.stringify(verdicts.map((v) => v.ok || v.reason)),
      );
      assert.ok(verdicts.filter((v) => v.ok).length >= 3, 'one running and two queued are served');
    } finally {
      await pool.close();
    }
  });
});

describe('the sanitizer pool is shared: per-user and per-address shares, served in turn', () => {
  // One worker and a message that keeps it busy for a while: every decision below is taken while
  // the first message still runs, since admission is decided at once, in the calling turn.
  const SLOW = COSTLY;
  const markdown = { format: 'markdown' as const, sanitize: true };
  const verdictOf = (v: { ok: boolean; reason?: string }) => (v.ok ? 'ok' : v.reason);

  test('a user past SANITIZE_MAX_IN_FLIGHT_PER_USER is refused in_flight; other users are not', async () => {
    const pool = new SanitizerPool({ workers: 1, budgetMs: 5000, maxQueue: 64, workerHeapMb: 256, maxInFlightPerUser: 2, maxInFlightPerAddress: 64 });
    try {
      await pool.ready();
      const alice = { user: 'alice', address: '192.0.2.1' };
      const verdicts = await Promise.all([
        ...Array.from({ length: 5 }, () => pool.render(SLOW, markdown, alice)),
        pool.render('see https://example.org', markdown, { user: 'bob', address: '192.0.2.1' }),
      ]);
      assert.deepEqual(verdicts.map(verdictOf), ['ok', 'ok', 'in_flight', 'in_flight', 'in_flight', 'ok']);
      const again = await pool.render(SLOW, markdown, alice);
      assert.ok(again.ok, 'the share is given back when a message is done');
    } finally {
      await pool.close();
    }
  });

  test('waiting messages are served one user at a time, in turn, not first come first served', async () => {
    const pool = new SanitizerPool({ workers: 1, budgetMs: 5000, maxQueue: 64, workerHeapMb: 256, maxInFlightPerUser: 4, maxInFlightPerAddress: 64 });
    try {
      await pool.ready();
      const order: string[] = [];
      const send = (user: string, label: string) =>
        pool.render(SLOW, markdown, { user, address: '192.0.2.1' }).then((v) => {
          assert.ok(v.ok, JSON.stringify(v));
          order.push(label);
        });
      await Promise.all([send('alice', 'a1'), send('alice', 'a2'), send('alice', 'a3'), send('alice', 'a4'), send('bob', 'b1'), send('carol', 'c1')]);
      // One message per waiting user per round: alice's a2 (she was waiting first), then bob's and
      // carol's, then alice's other two. First come, first served would be a1 a2 a3 a4 b1 c1.
      assert.deepEqual(order, ['a1', 'a2', 'b1', 'c1', 'a3', 'a4']);
    } finally {
      await pool.close();
    }
  });

  test("an address's share: the heaviest user there gives way to a lighter one; other addresses keep the rest", async () => {
    const pool = new SanitizerPool({ workers: 1, budgetMs: 5000, maxQueue: 64, workerHeapMb: 256, maxInFlightPerUser: 4, maxInFlightPerAddress: 3 });
    try {
      await pool.ready();
      // One IPv6 /64 is one address: what a host is normally handed, and could rotate through.
      const at = (user: string) => ({ user, address: `2001:db8:1:2::${user.length}${user.charCodeAt(0).toString(16)}` });
      const verdicts = await Promise.all([
        pool.render(SLOW, markdown, at('mallory')), // runs
        pool.render(SLOW, markdown, at('mallory')), // waits
        pool.render(SLOW, markdown, at('mallory')), // waits, the newest: pushed out for bob
        pool.render(SLOW, markdown, { user: 'carol', address: '192.0.2.7' }), // another address: its own share
        pool.render('see https://example.org', markdown, at('bob')), // mallory holds 3 > bob's 1: mallory gives way
        pool.render('see https://example.org', markdown, at('dave')), // mallory 2 > 1: gives way again (her waiting one)
        pool.render('see https://example.org', markdown, at('erin')), // mallory 1 (running), bob 1, dave 1: nobody holds more; refused
      ]);
      assert.deepEqual(verdicts.map(verdictOf), ['ok', 'busy', 'busy', 'ok', 'ok', 'ok', 'busy']);
    } finally {
      await pool.close();
    }
  });

  test('a full pool: the heaviest user gives way to a newcomer with less; among equals the newcomer is refused', async () => {
    const pool = new SanitizerPool({ workers: 1, budgetMs: 5000, maxQueue: 3, workerHeapMb: 256, maxInFlightPerUser: 4, maxInFlightPerAddress: 100 });
    try {
      await pool.ready();
      const verdicts = await Promise.all([
        ...Array.from({ length: 4 }, (_, i) => pool.render(SLOW, markdown, { user: 'mallory', address: `198.51.100.${i}` })), // fills all 4
        pool.render('see https://example.org', markdown, { user: 'bob', address: '192.0.2.1' }), // mallory 4 > 1: her newest goes
        pool.render('see https://example.org', markdown, { user: 'carol', address: '192.0.2.2' }), // mallory 3 > 1: again
        pool.render('see https://example.org', markdown, { user: 'dave', address: '192.0.2.3' }), // mallory 2 > 1: again
        pool.render('see https://example.org', markdown, { user: 'erin', address: '192.0.2.4' }), // mallory's one runs: nobody gives way
      ]);
      assert.deepEqual(verdicts.map(verdictOf), ['ok', 'busy', 'busy', 'busy', 'ok', 'ok', 'ok', 'busy']);
    } finally {
      await pool.close();
    }
  });
});

describe('send over WSS, text as HTML (encoding off): bounds, budget, empty messages (default limits)', () => {
  let server: TestServer;
  let sender: Client;
  let listener: Client;
  let readerCookie: string;
  before(async () => {
    server = await startServer({ env: HIGH_RATE, ...ENCODING_OFF });
    sender = await joined(server, await signUp(server, 'sender'));
    listener = await joined(server, await signUp(server, 'listener'));
    readerCookie = await signUp(server, 'reader');
  });
  after(async () => {
    sender?.ws.close();
    listener?.ws.close();
    await server?.close();
  });

  test('2,000 characters of nested tags are refused too_complex, fast, and not stored', async () => {
    const started = Date.now();
    sender.send({ type: 'send', room: 'lobby', text: NESTED, clientId: 'nested' });
    assert.deepEqual(await answer(sender, 'nested'), { type: 'error', code: 'too_complex' });
    const ms = Date.now() - started;
    // Refused by the shape bound before any parse (the parse alone takes ~300 ms); generous for a loaded box.
    assert.ok(ms < 250, `answered in ${ms} ms`);
    sender.send({ type: 'send', room: 'lobby', text: '<b>fine</b>', clientId: 'fine' });
    const ok = await answer(sender, 'fine');
    assert.equal(ok.type, 'ack');
    const history = await historyOf(server, readerCookie);
    assert.equal([...history.values()].filter((h) => h.includes('<td>') || h.startsWith('x')).length, 0, 'nothing of it stored');
  });

  test('a message with nothing visible after sanitizing is refused empty_message and not stored', async () => {
    const blanks = [
      '<script>alert(1)</script>',
      '<img src=x onerror=alert(1)>',
      '\u200b\u200b\u200b',
      '\u3164',
      '\u115f\u1160',
      '\uffa0\uffa0',
      '<b>\u200b</b>',
      '&nbsp;&#8203;',
      '<a href="https://example.org/"></a>',
    ];
    const before = (await historyOf(server, readerCookie)).size;
    for (const [i, text] of blanks.entries()) {
      sender.send({ type: 'send', room: 'lobby', text, clientId: `blank${i}` });
      assert.deepEqual(await answer(sender, `blank${i}`), { type: 'error', code: 'empty_message' }, JSON.stringify(text));
    }
    sender.send({ type: 'send', room: 'lobby', text: '\u200bvisible', clientId: 'visible' });
    assert.equal((await answer(sender, 'visible')).type, 'ack');
    sender.send({ type: 'send', room: 'lobby', text: '<i>&amp;</i>', clientId: 'ampersand' });
    assert.equal((await answer(sender, 'ampersand')).type, 'ack', 'a character reference is visible text');
    assert.equal((await historyOf(server, readerCookie)).size, before + 2, 'only the visible messages were stored');
  });

  test('the refusals name their clientId and the socket stays usable', async () => {
    const errors = sender.frames.filter((f) => f.type === 'error');
    assert.ok(errors.every((f) => f.type === 'error' && typeof f.clientId === 'string' && f.message.length > 0));
    assert.equal(sender.ws.readyState, sender.ws.OPEN);
  });
});

describe('send over WSS, text (the default): what used to cost is text, Markdown is bounded by the same budget', () => {
  let server: TestServer;
  let readerCookie: string;
  const sender = async (name: string, on = server) => joined(on, await signUp(on, name));
  before(async () => {
    server = await startServer({ env: HIGH_RATE });
    readerCookie = await signUp(server, 'reader');
  });
  after(async () => server?.close());

  test('2,000 characters of nested tags are text: delivered as typed', async () => {
    const typist = await sender('typist');
    typist.send({ type: 'send', room: 'lobby', text: NESTED, clientId: 'nested' });
    const a = await answer(typist, 'nested');
    assert.equal(a.type, 'ack');
    const history = await historyOf(server, readerCookie);
    assert.equal(history.get((a as { id: number }).id), NESTED.replaceAll('<', '&lt;').replaceAll('>', '&gt;'));
    typist.ws.close();
  });

  test('nothing visible is still refused empty_message; a tag written as text is visible', async () => {
    const blanks = await sender('blanks');
    for (const [i, text] of ['\u200b\u200b', '\u3164', '**\u200b**', '`\u3164`'].entries()) {
      blanks.send({ type: 'send', room: 'lobby', text, clientId: `blank${i}` });
      assert.deepEqual(await answer(blanks, `blank${i}`), { type: 'error', code: 'empty_message' }, JSON.stringify(text));
    }
    const other = await sender('scripter');
    other.send({ type: 'send', room: 'lobby', text: '<script>alert(1)</script>', clientId: 'script' });
    assert.equal((await answer(other, 'script')).type, 'ack');
    blanks.ws.close();
    other.ws.close();
  });

  test('links by the hundred render past SANITIZE_MAX_HTML_CHARS: refused too_complex, nothing stored; with the bound raised they pass', async () => {
    const links = '<a@b>'.repeat(400); // 2,000 characters → ~31,600 of HTML
    // A generous time budget on both servers, so that only the output bound can refuse it.
    const servers = [
      await startServer({ env: { ...HIGH_RATE, SANITIZE_BUDGET_SECONDS: '10' } }),
      await startServer({ env: { ...HIGH_RATE, SANITIZE_BUDGET_SECONDS: '10', SANITIZE_MAX_HTML_CHARS: '65536' } }),
    ];
    try {
      const verdicts = [];
      for (const [i, on] of servers.entries()) {
        const linker = await sender(`linker${i}`, on);
        linker.send({ type: 'send', room: 'lobby', text: links, clientId: 'links' });
        verdicts.push(await answer(linker, 'links', 30_000));
        linker.ws.close();
      }
      assert.deepEqual(verdicts[0], { type: 'error', code: 'too_complex' });
      assert.equal(verdicts[1]!.type, 'ack', 'the same message passes with the bound at 64 KiB (the control)');
      assert.equal((await historyOf(servers[0]!, await signUp(servers[0]!, 'auditor'))).size, 0, 'nothing stored');
    } finally {
      for (const on of servers) await on.close();
    }
  });

  test('Markdown over the time budget (10 ms here) is refused too_complex; the replaced worker serves the next message', async () => {
    // ~55 ms of work on this machine against a 10 ms budget; "**next**" takes well under 1 ms.
    // The output bound raised out of the way: only the time budget can refuse it here.
    const tight = await startServer({ env: { ...HIGH_RATE, SANITIZE_BUDGET_SECONDS: '0.01', SANITIZE_WORKERS: '1', SANITIZE_MAX_HTML_CHARS: '65536' } });
    try {
      const costly = await sender('costly', tight);
      costly.send({ type: 'send', room: 'lobby', text: COSTLY, clientId: 'costly' });
      assert.deepEqual(await answer(costly, 'costly'), { type: 'error', code: 'too_complex' });
      // Another user: the over-budget message cost its sender a whole burst.
      const next = await sender('next', tight);
      next.send({ type: 'send', room: 'lobby', text: '**next**', clientId: 'next' });
      assert.equal((await answer(next, 'next', 15_000)).type, 'ack');
      costly.ws.close();
      next.ws.close();
    } finally {
      await tight.close();
    }
  });
});

describe('send over WSS, text as HTML (encoding off): a message over the time budget (shape bounds raised so it gets parsed)', () => {
  let server: TestServer;
  let sender: Client;
  before(async () => {
    server = await startServer({
      env: { ...HIGH_RATE, SANITIZE_MAX_TAGS: '2000', SANITIZE_MAX_DEPTH: '2000', SANITIZE_BUDGET_SECONDS: '0.1', SANITIZE_WORKERS: '1' },
      ...ENCODING_OFF,
    });
    sender = await joined(server, await signUp(server, 'slowpoke'));
  });
  after(async () => {
    sender?.ws.close();
    await server?.close();
  });

  test('is refused too_complex while the event loop stays free; the replaced worker serves the next message', async () => {
    // While the worker is stuck in the parse, the event loop answers another user at once.
    const other = await open(server, await signUp(server, 'bystander'));
    sender.send({ type: 'send', room: 'lobby', text: NESTED, clientId: 'slow' });
    await sleep(5);
    const started = Date.now();
    other.send({ type: 'send', room: 'lobby', text: 'plain text is not held up', clientId: 'plain' });
    assert.equal((await answer(other, 'plain')).type, 'ack');
    const plainMs = Date.now() - started;
    assert.deepEqual(await answer(sender, 'slow'), { type: 'error', code: 'too_complex' });
    // Under 250 ms although the parse alone takes ~300 ms (generous bound for a loaded 2-core box).
    assert.ok(plainMs < 250, `plain message answered in ${plainMs} ms`);
    sender.send({ type: 'send', room: 'lobby', text: '<b>next</b>', clientId: 'next' });
    const next = await answer(sender, 'next', 15_000);
    assert.equal(next.type, 'ack');
    other.ws.close();
  });
});

describe('send over WSS, text as HTML (encoding off): the rate limit is charged by cost (WS_MESSAGE_BURST 30, 10/s: the defaults)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(ENCODING_OFF);
  });
  after(async () => server?.close());

  test('an expensive sender runs out of its budget long before a chatty one', async () => {
    // 90 markup tokens: within the shape bounds, charged 9 tokens on top of its frame's one.
    const expensive = '<b>x</b>'.repeat(45);
    const heavy = await open(server, await signUp(server, 'heavy'));
    const chatty = await open(server, await signUp(server, 'chatty'));
    for (let i = 0; i < 10; i++) heavy.send({ type: 'send', room: 'lobby', text: expensive, clientId: `h${i}` });
    for (let i = 0; i < 25; i++) chatty.send({ type: 'send', room: 'lobby', text: `hello ${i}`, clientId: `c${i}` });
    const heavyAnswers = await Promise.all(Array.from({ length: 10 }, (_, i) => answer(heavy, `h${i}`)));
    const chattyAnswers = await Promise.all(Array.from({ length: 25 }, (_, i) => answer(chatty, `c${i}`)));
    const heavyAccepted = heavyAnswers.filter((a) => a.type === 'ack').length;
    const heavyLimited = heavyAnswers.filter((a) => a.type === 'error' && a.code === 'rate_limited').length;
    // 30 tokens at 10 each: 3 accepted, plus whatever refilled while the test ran (10/s).
    assert.ok(heavyAccepted <= 5, `${heavyAccepted} of 10 expensive messages accepted: ${JSON.stringify(heavyAnswers)}`);
    assert.ok(heavyLimited >= 5, `${heavyLimited} of 10 expensive messages rate_limited: ${JSON.stringify(heavyAnswers)}`);
    // (too_complex only if a box is so loaded that a 3 ms parse overran the 200 ms budget.)
    assert.ok(heavyAnswers.every((a) => a.type === 'ack' || a.code === 'rate_limited' || a.code === 'too_complex'));
    assert.equal(chattyAnswers.filter((a) => a.type === 'ack').length, 25, 'the chatty user, 25 plain messages in a burst: none refused');
    heavy.ws.close();
    chatty.ws.close();
  });
});

// Live and history are the same text: a lone surrogate (valid JSON: "\ud800") is made
// well-formed (U+FFFD) before it is sanitized, broadcast or stored, on SQLite and PostgreSQL.
for (const engine of ['sqlite', 'postgresql'] as const) {
  describe(`lone surrogates, live == history (${engine})`, () => {
    let server: TestServer;
    let postgres: PostgresService | undefined;
    before(async () => {
      const env: Record<string, string> = { ...HIGH_RATE };
      if (engine === 'postgresql') {
        postgres = await startPostgres();
        env['DATABASE_URL'] = postgres.url;
      }
      server = await startServer({ env });
    });
    after(async () => {
      await server?.close();
      await postgres?.stop();
    });

    test('what was broadcast is what history returns, with U+FFFD for each lone surrogate', async () => {
      const sender = await joined(server, await signUp(server, 'surrogate'));
      const cases = [
        { text: 'a\ud800b', expected: 'a\ufffdb' },
        { text: '<b>x\udc00</b>\ud83d', expected: '&lt;b&gt;x\ufffd&lt;/b&gt;\ufffd' },
        { text: '**x\udc00**', expected: '<strong>x\ufffd</strong>' },
        { text: 'pair 😀 stays', expected: 'pair 😀 stays' },
        // NUL: PostgreSQL cannot store it (before: `internal`, nothing stored); CR LF is one line break.
        { text: 'nul\u0000 and cr\r\nlf', expected: 'nul\ufffd and cr\nlf' },
        { text: '**nul\u0000**', expected: '<strong>nul\ufffd</strong>' },
      ];
      const ids: number[] = [];
      for (const [i, c] of cases.entries()) {
        sender.send({ type: 'send', room: 'lobby', text: c.text, clientId: `s${i}` });
        const a = await answer(sender, `s${i}`);
        assert.equal(a.type, 'ack');
        ids.push((a as { id: number }).id);
      }
      await sleep(200);
      const history = await historyOf(server, await signUp(server, 'archivist'));
      for (const [i, c] of cases.entries()) {
        assert.equal(broadcastOf(sender, ids[i]!), c.expected, `live ${JSON.stringify(c.text)}`);
        assert.equal(history.get(ids[i]!), c.expected, `history ${JSON.stringify(c.text)}`);
      }
      sender.ws.close();
    });
  });
}
