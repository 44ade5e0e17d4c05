// tier: unit
// Stored XSS through the whole pipeline: a real client sends every payload over WSS, the
// server validates, encodes (a message is text with a Markdown subset), sanitizes, stores and
// broadcasts it, and what another user receives (live and from history) is parsed the way a
// browser would and walked node by node. Each server layer is also shown holding with the other
// one switched off (the lab switches `encoding` and `sanitize`), and with both off the payloads
// arrive live — the control-off proof. With encoding off a payload that sanitizes to nothing
// visible (a lone <script>) is refused with an `empty_message` error, and nothing of it is stored.
// Run: npx node --test test/xss-pipeline.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Control } from '../server/config.ts';
import { joined, open, signUp, startServer, type Client, type TestServer } from './helpers/server.ts';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import { BENIGN_CASES, XSS_PAYLOADS } from './fixtures/xss-payloads.ts';
import { MARKDOWN_CASES, MARKDOWN_PAYLOADS, TRICKY_TEXTS } from './fixtures/texts.ts';
import { violations } from './helpers/inert-html.ts';
import { sanitizeMessage, textOfSanitized } from '../server/security/sanitize.ts';
import { hasVisibleText } from '../server/security/visible-text.ts';
import { canonical } from '../server/security/render-message.ts';

// Rendering is under test, not limits: the rate limit and the time budget are generous (a loaded CI
// machine must not turn a payload into too_complex; test/sanitize-pool.test.ts covers the budget).
const HIGH_RATE = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000', SANITIZE_BUDGET_SECONDS: '10' };

type Sent = { name: string; input: string; clientId: string };
type Delivery = {
  server: TestServer;
  sender: Client;
  victim: Client;
  sent: Sent[];
  ids: Map<string, number>;
  /** clientId → error code, for sends the server refused. */
  refused: Map<string, string>;
  broadcast: Map<number, string>;
};

/** clientId prefixes: x XSS payload, m Markdown payload, g benign HTML, t tricky text, f Markdown formatting. */
const ALL_INPUTS: Sent[] = [
  ...XSS_PAYLOADS.map((p, i) => ({ name: p.name, input: p.input, clientId: `x${i}` })),
  ...MARKDOWN_PAYLOADS.map((p, i) => ({ name: p.name, input: p.input, clientId: `m${i}` })),
  ...BENIGN_CASES.map((b, i) => ({ name: b.name, input: b.input, clientId: `g${i}` })),
  ...TRICKY_TEXTS.map((t, i) => ({ name: t.name, input: t.input, clientId: `t${i}` })),
  ...MARKDOWN_CASES.map((c, i) => ({ name: c.name, input: c.input, clientId: `f${i}` })),
];
const attacks = (d: Delivery) => d.sent.filter((s) => s.clientId.startsWith('x') || s.clientId.startsWith('m'));

const { document } = new JSDOM('').window;
/** The text a browser shows for message HTML. */
function textOf(html: string): string {
  const template = document.createElement('template');
  template.innerHTML = html;
  return template.content.textContent ?? '';
}

/** Starts a server, has "mallory" send every payload and text to the lobby, and "victim" receive them. */
async function deliver(disabled?: Control[]): Promise<Delivery> {
  const server = await startServer({ env: HIGH_RATE, ...(disabled ? { disabled } : {}) });
  const victim = await joined(server, await signUp(server, 'victim'));
  const sender = await open(server, await signUp(server, 'mallory'));
  const sent = ALL_INPUTS;
  for (const s of sent) sender.send({ type: 'send', room: 'lobby', text: s.input, clientId: s.clientId });
  const ids = new Map<string, number>();
  const refused = new Map<string, string>();
  // Every send is answered once: an ack, or an error naming its clientId.
  const deadline = Date.now() + 30_000;
  while (ids.size + refused.size < sent.length && Date.now() < deadline) {
    for (const f of sender.frames) {
      if (f.type === 'ack') ids.set(f.clientId, f.id);
      if (f.type === 'error' && f.clientId !== undefined) refused.set(f.clientId, f.code);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(ids.size + refused.size, sent.length, 'every send answered with an ack or an error');
  const broadcast = new Map<number, string>();
  while (broadcast.size < ids.size) {
    const message = await victim.next('message');
    assert.equal(message.room, 'lobby');
    assert.equal(message.user, 'mallory');
    broadcast.set(message.id, message.html);
  }
  return { server, sender, victim, sent, ids, refused, broadcast };
}

/** The html the victim received for one sent item. */
function received(d: Delivery, s: Sent): string {
  const id = d.ids.get(s.clientId);
  assert.ok(id !== undefined, `no ack for ${s.name}`);
  const html = d.broadcast.get(id);
  assert.ok(html !== undefined, `no broadcast for ${s.name} (id ${id})`);
  return html;
}

async function close(d: Delivery | undefined): Promise<void> {
  if (!d) return;
  d.sender.ws.close();
  d.victim.ws.close();
  await d.server.close();
}

// OWASP XSS prevention (encode text; sanitize what is HTML), ASVS 1.2.1 / 1.3.1: stored XSS end to end
describe('stored XSS through WSS → encode → sanitize → store → broadcast → history', () => {
  let d: Delivery | undefined;
  before(async () => {
    d = await deliver();
  });
  after(async () => close(d));

  test('the walker is not vacuous: every raw payload, parsed unsanitized, has a violation', async (t) => {
    for (const { name, input } of XSS_PAYLOADS) {
      await t.test(name, () => assert.notDeepEqual(violations(input), [], `nothing flagged in raw ${JSON.stringify(input)}`));
    }
  });

  test('every payload reaches another user as inert HTML, and nothing is refused: it is text', async (t) => {
    assert.ok(XSS_PAYLOADS.length >= 30, `${XSS_PAYLOADS.length} payloads`);
    assert.deepEqual([...d!.refused.entries()], [], 'no send refused');
    for (const s of attacks(d!)) {
      await t.test(s.name, () => {
        const html = received(d!, s);
        assert.deepEqual(violations(html), [], `broadcast html ${JSON.stringify(html)} for ${JSON.stringify(s.input)}`);
      });
    }
  });

  test('an HTML payload shows exactly as it was typed (what you type is what they see)', async (t) => {
    for (const s of d!.sent.filter((x) => x.clientId.startsWith('x') && !/[*_`\\[\]]/.test(x.input))) {
      await t.test(s.name, () => assert.equal(textOf(received(d!, s)), canonical(s.input)));
    }
  });

  test('tricky texts arrive with exactly the visible text typed', async (t) => {
    for (const [i, text] of TRICKY_TEXTS.entries()) {
      await t.test(text.name, () => {
        const html = received(
          d!,
          d!.sent.find((s) => s.clientId === `t${i}`)!,
        );
        assert.equal(textOf(html), text.shows ?? text.input, `received ${JSON.stringify(html)}`);
      });
    }
  });

  test('the Markdown subset arrives formatted; HTML-looking input arrives as text', async (t) => {
    for (const [i, c] of MARKDOWN_CASES.entries()) {
      await t.test(c.name, () =>
        assert.equal(
          received(
            d!,
            d!.sent.find((s) => s.clientId === `f${i}`)!,
          ),
          c.html,
        ),
      );
    }
    const bold = d!.sent.find((s) => s.input === '<b>bold</b>')!;
    assert.equal(received(d!, bold), '&lt;b&gt;bold&lt;/b&gt;');
  });

  test('a newly joined user reads the same stored html from history as was broadcast', async () => {
    const { server } = d!;
    const reader = await open(server, await signUp(server, 'latecomer'));
    const stored = new Map<number, string>();
    reader.send({ type: 'join', room: 'lobby' });
    let page = await reader.next('history');
    for (;;) {
      for (const m of page.messages) stored.set(m.id, m.html);
      if (!page.more) break;
      reader.send({ type: 'history', room: 'lobby', before: page.messages[0]!.id });
      page = await reader.next('history');
    }
    assert.equal(stored.size, d!.ids.size, 'history holds every acknowledged message, and nothing of the refused ones');
    for (const s of d!.sent.filter((x) => d!.ids.has(x.clientId))) {
      const id = d!.ids.get(s.clientId)!;
      assert.equal(stored.get(id), d!.broadcast.get(id), `stored html of ${s.name} equals the broadcast html`);
    }
    reader.ws.close();
  });

  test('the source text is stored beside its html, as typed (canonical: well-formed, NUL → U+FFFD, LF)', () => {
    const db = new DatabaseSync(path.join(d!.server.dataDir, 'parley.sqlite'), { readOnly: true });
    try {
      const row = db.prepare('SELECT text, html FROM messages WHERE id = ?');
      for (const s of d!.sent) {
        const stored = row.get(d!.ids.get(s.clientId)!) as { text: string; html: string };
        assert.equal(stored.text, canonical(s.input), s.name);
        assert.equal(stored.html, d!.broadcast.get(d!.ids.get(s.clientId)!), s.name);
      }
    } finally {
      db.close();
    }
  });
});

// Each layer holds alone: with the lab switch `encoding` off the text is HTML, and the sanitizer stops it
describe('encoding switched off: the sanitizer holds on its own', () => {
  let d: Delivery | undefined;
  before(async () => {
    d = await deliver(['encoding']);
  });
  after(async () => close(d));

  test('every payload reaches another user only as allowlisted, inert HTML', async (t) => {
    for (const s of attacks(d!)) {
      await t.test(s.name, () => {
        if (d!.refused.has(s.clientId)) {
          // Nothing visible survived the sanitizer: refused, not stored, nothing reaches the victim.
          assert.equal(d!.refused.get(s.clientId), 'empty_message', `${s.name} refused with empty_message`);
          assert.equal(hasVisibleText(textOfSanitized(sanitizeMessage(s.input))), false, `${s.name} sanitizes to nothing visible`);
          return;
        }
        const html = received(d!, s);
        assert.deepEqual(violations(html), [], `broadcast html ${JSON.stringify(html)} for ${JSON.stringify(s.input)}`);
      });
    }
  });

  test('payloads with nothing visible left are refused, the others delivered; every benign case delivered', (t) => {
    const refusedNames = d!.sent.filter((s) => d!.refused.has(s.clientId)).map((s) => s.name);
    t.diagnostic(`${refusedNames.length} of ${XSS_PAYLOADS.length} payloads refused as empty_message, ${d!.ids.size} delivered`);
    assert.ok(refusedNames.includes('script tag'), 'a lone <script> is refused');
    assert.ok(d!.ids.size >= 30, 'most payloads still go through the sanitizer and are delivered inert');
    assert.ok([...d!.refused.values()].every((code) => code === 'empty_message'));
    assert.ok(d!.sent.filter((s) => s.clientId.startsWith('g')).every((s) => d!.ids.has(s.clientId)));
  });

  test('HTML formatting survives as before: <b>bold</b> arrives as <b>bold</b>, links get rel/target', async (t) => {
    for (const [i, b] of BENIGN_CASES.entries()) {
      await t.test(b.name, () => {
        const html = received(
          d!,
          d!.sent.find((s) => s.clientId === `g${i}`)!,
        );
        assert.equal(html, b.expected);
        assert.deepEqual(violations(html), []);
      });
    }
  });
});

// …and with the lab switch `sanitize` off, encoding alone stops it
describe('sanitize switched off: encoding holds on its own', () => {
  let d: Delivery | undefined;
  before(async () => {
    d = await deliver(['sanitize']);
  });
  after(async () => close(d));

  test('every payload, HTML or Markdown, reaches another user as inert HTML', async (t) => {
    assert.deepEqual([...d!.refused.entries()], [], 'no send refused');
    for (const s of attacks(d!)) {
      await t.test(s.name, () => assert.deepEqual(violations(received(d!, s)), [], `broadcast ${JSON.stringify(received(d!, s))}`));
    }
  });
});

// Control-off proof: with both server layers switched off the same pipeline delivers live markup
describe('encoding and sanitize switched off (proves the pipeline tests can fail)', () => {
  let d: Delivery | undefined;
  before(async () => {
    d = await deliver(['encoding', 'sanitize']);
  });
  after(async () => close(d));

  test('with both server layers off, the walker flags dangerous elements/attributes in what the victim receives', (t) => {
    const flagged = d!.sent.filter((s) => s.clientId.startsWith('x') && violations(received(d!, s)).length > 0);
    t.diagnostic(`${flagged.length} of ${XSS_PAYLOADS.length} payloads arrive dangerous with encoding and the sanitizer off`);
    assert.ok(flagged.length > 0);
    const img = d!.sent.find((s) => s.input === '<img src=x onerror=alert(1)>');
    assert.ok(img);
    assert.equal(received(d!, img), '<img src=x onerror=alert(1)>');
    assert.ok(violations(received(d!, img)).some((v) => v.includes('onerror')));
  });
});
