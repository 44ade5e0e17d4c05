// tier: unit
// Stored XSS through the whole pipeline: a real client sends every payload over WSS, the
// server validates, sanitizes, stores and broadcasts it, and what another user receives
// (live and from history) is parsed the way a browser would and walked node by node.
// Run: npx node --test test/xss-pipeline.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Control } from '../server/config.ts';
import { joined, open, signUp, startServer, type Client, type TestServer } from './helpers/server.ts';
import { BENIGN_CASES, XSS_PAYLOADS } from './fixtures/xss-payloads.ts';
import { violations } from './helpers/inert-html.ts';

const HIGH_RATE = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' };

type Sent = { name: string; input: string; clientId: string };
type Delivery = { server: TestServer; sender: Client; victim: Client; sent: Sent[]; ids: Map<string, number>; broadcast: Map<number, string> };

/** Starts a server, has "mallory" send every payload and benign case to the lobby, and "victim" receive them. */
async function deliver(disabled?: Control[]): Promise<Delivery> {
  const server = await startServer({ env: HIGH_RATE, ...(disabled ? { disabled } : {}) });
  const victim = await joined(server, await signUp(server, 'victim'));
  const sender = await open(server, await signUp(server, 'mallory'));
  const sent: Sent[] = [
    ...XSS_PAYLOADS.map((p, i) => ({ name: p.name, input: p.input, clientId: `x${i}` })),
    ...BENIGN_CASES.map((b, i) => ({ name: b.name, input: b.input, clientId: `g${i}` })),
  ];
  for (const s of sent) sender.send({ type: 'send', room: 'lobby', text: s.input, clientId: s.clientId });
  const ids = new Map<string, number>();
  for (let i = 0; i < sent.length; i++) {
    const ack = await sender.next('ack');
    ids.set(ack.clientId, ack.id);
  }
  const broadcast = new Map<number, string>();
  while (broadcast.size < sent.length) {
    const message = await victim.next('message');
    assert.equal(message.room, 'lobby');
    assert.equal(message.user, 'mallory');
    broadcast.set(message.id, message.html);
  }
  return { server, sender, victim, sent, ids, broadcast };
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

// ASVS 1.2.1 / 1.3.1 (sanitize untrusted HTML with an allowlist), OWASP XSS prevention: stored XSS end to end
describe('stored XSS through WSS → sanitize → store → broadcast → history', () => {
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

  test('every payload reaches another user only as allowlisted, inert HTML', async (t) => {
    assert.ok(XSS_PAYLOADS.length >= 30, `${XSS_PAYLOADS.length} payloads`);
    for (const s of d!.sent.filter((x) => x.clientId.startsWith('x'))) {
      await t.test(s.name, () => {
        const html = received(d!, s);
        assert.deepEqual(violations(html), [], `broadcast html ${JSON.stringify(html)} for ${JSON.stringify(s.input)}`);
      });
    }
  });

  test('benign formatting survives: <b>bold</b> arrives as <b>bold</b>, links get rel/target, text stays text', async (t) => {
    const bold = d!.sent.find((s) => s.input === '<b>bold</b>');
    assert.ok(bold, 'the benign cases include <b>bold</b>');
    assert.equal(received(d!, bold), '<b>bold</b>');
    for (const [i, b] of BENIGN_CASES.entries()) {
      await t.test(b.name, () => {
        const html = received(d!, d!.sent.find((s) => s.clientId === `g${i}`)!);
        assert.equal(html, b.expected);
        assert.deepEqual(violations(html), []);
      });
    }
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
    assert.equal(stored.size, d!.sent.length, 'history holds every message');
    for (const s of d!.sent) {
      const id = d!.ids.get(s.clientId)!;
      assert.equal(stored.get(id), d!.broadcast.get(id), `stored html of ${s.name} equals the broadcast html`);
    }
    reader.ws.close();
  });
});

// Control-off proof: with the sanitizer switched off the same pipeline delivers live markup
describe('sanitizer switched off (proves the pipeline test can fail)', () => {
  let d: Delivery | undefined;
  before(async () => {
    d = await deliver(['sanitize']);
  });
  after(async () => close(d));

  test('with sanitize disabled, the walker flags dangerous elements/attributes in what the victim receives', (t) => {
    const flagged = d!.sent.filter((s) => s.clientId.startsWith('x') && violations(received(d!, s)).length > 0);
    t.diagnostic(`${flagged.length} of ${XSS_PAYLOADS.length} payloads arrive dangerous with the sanitizer off`);
    assert.ok(flagged.length > 0);
    const img = d!.sent.find((s) => s.input === '<img src=x onerror=alert(1)>');
    assert.ok(img);
    assert.equal(received(d!, img), '<img src=x onerror=alert(1)>');
    assert.ok(violations(received(d!, img)).some((v) => v.includes('onerror')));
  });
});
