// What a WebSocket frame must survive before a handler sees it, and what a misbehaving
// peer costs the server: size, type, encoding, schema, rate, liveness and backpressure.
// Every attack runs over real WSS against a real Parley (test/helpers/server.ts).
// Run: npx node --test test/frames.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket, type ClientOptions } from 'ws';
import type { IncomingMessage } from 'node:http';
import { MAX_TEXT_LENGTH, type ErrorCode } from '../shared/protocol.ts';
import { inviteAndAccept } from './helpers/rooms.ts';
import { joined, open, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';

const HIGH_RATE = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' };

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves with the close code, or rejects if the socket is still open after `ms`. */
function closedWithin(client: Client, ms: number): Promise<{ code: number; reason: string }> {
  return Promise.race([
    client.closed,
    sleep(ms).then(() => {
      throw new Error(`socket still open after ${ms} ms (frames: ${JSON.stringify(client.frames.slice(-3))})`);
    }),
  ]);
}

let counter = 0;
/** The socket still works: a valid send right after gets its ack. */
async function assertUsable(client: Client): Promise<void> {
  const clientId = `ok-${++counter}`;
  client.send({ type: 'send', room: 'lobby', text: `still usable ${counter}`, clientId });
  const ack = await client.next('ack');
  assert.equal(ack.clientId, clientId);
  assert.ok(client.ws.readyState === WebSocket.OPEN);
}

/** Sends `frame` (a raw string is sent as is), expects an error frame with `code`, then proves the socket usable. */
async function assertRefused(client: Client, frame: unknown, code: ErrorCode): Promise<void> {
  const acksBefore = client.frames.filter((f) => f.type === 'ack').length;
  client.send(frame);
  const error = await client.next('error');
  assert.equal(error.code, code, `${JSON.stringify(frame).slice(0, 200)} → ${error.code}: ${error.message}`);
  assert.equal(client.frames.filter((f) => f.type === 'ack').length, acksBefore, 'the refused frame was not acknowledged');
  await assertUsable(client);
}

/** A raw `ws` client with any options (compression offer, autoPong off), authenticated and same-origin. */
function rawSocket(server: TestServer, cookie: string, options: ClientOptions): { ws: WebSocket; opened: Promise<IncomingMessage> } {
  // servername is a tls.connect option ws passes through; @types/ws's ClientOptions does not list it.
  const all: ClientOptions & { servername: string } = {
    ca: server.ca,
    servername: 'localhost',
    origin: server.origin,
    headers: { cookie, host: new URL(server.origin).host },
    ...options,
  };
  const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, all);
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    let response: IncomingMessage | undefined;
    ws.once('upgrade', (res) => (response = res));
    ws.once('open', () => resolve(response!));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused ${res.statusCode}`)));
  });
  return { ws, opened };
}

// OWASP WS cheat sheet (validate every message, bound message size) / ASVS 4.4: frame-level input handling
describe('frame size, type and encoding', () => {
  let server: TestServer;
  let cookie: string;
  let listener: Client;

  before(async () => {
    server = await startServer({ env: HIGH_RATE });
    cookie = await signUp(server, 'vera');
    listener = await joined(server, await signUp(server, 'listener'));
  });
  after(async () => {
    listener?.ws.close();
    await server?.close();
  });

  test('oversize frame (70 000 chars > 64 KiB maxPayload) is closed 1009, and the server keeps serving new clients', async () => {
    const client = await open(server, cookie);
    client.send({ type: 'send', room: 'lobby', text: 'x'.repeat(70_000), clientId: 'huge' });
    const { code } = await closedWithin(client, 3000);
    assert.equal(code, 1009);
    assert.ok(!client.frames.some((f) => f.type === 'ack'));
    // The process survived the ws error (no uncaught exception) and still chats.
    const fresh = await open(server, cookie);
    fresh.send({ type: 'send', room: 'lobby', text: 'after the big one', clientId: 'after-huge' });
    assert.equal((await fresh.next('ack')).clientId, 'after-huge');
    const seen = await listener.next('message');
    assert.equal(seen.html, 'after the big one');
    fresh.ws.close();
  });

  test('a frame of exactly maxPayload (65 536 bytes) is not closed for size: bad_frame (text > 2000), socket stays open', async () => {
    const client = await open(server, cookie);
    const head = '{"type":"send","room":"lobby","clientId":"max","text":"';
    const tail = '"}';
    const frame = head + 'a'.repeat(64 * 1024 - head.length - tail.length) + tail;
    assert.equal(Buffer.byteLength(frame), 64 * 1024);
    await assertRefused(client, frame, 'bad_frame');
    client.ws.close();
  });

  test('one byte over maxPayload (65 537 bytes) is closed 1009', async () => {
    const client = await open(server, cookie);
    const head = '{"type":"send","room":"lobby","clientId":"max1","text":"';
    const tail = '"}';
    const frame = head + 'a'.repeat(64 * 1024 + 1 - head.length - tail.length) + tail;
    assert.equal(Buffer.byteLength(frame), 64 * 1024 + 1);
    client.send(frame);
    assert.equal((await closedWithin(client, 3000)).code, 1009);
  });

  test('a binary frame (even one holding a valid JSON send) is closed 1003 and not processed', async () => {
    const client = await open(server, cookie);
    client.ws.send(Buffer.from(JSON.stringify({ type: 'send', room: 'lobby', text: 'binary', clientId: 'bin' })), { binary: true });
    assert.equal((await closedWithin(client, 3000)).code, 1003);
    assert.ok(!client.frames.some((f) => f.type === 'ack'));
    assert.ok(server.logs.some((l) => l.includes('"ws_bad_frame"') && l.includes('"reason":"binary"')));
  });

  test('invalid UTF-8 in a text frame (0x22 0xFF 0x22) is closed 1007', async () => {
    const client = await open(server, cookie);
    client.ws.send(Buffer.from([0x22, 0xff, 0x22]), { binary: false });
    assert.equal((await closedWithin(client, 3000)).code, 1007);
    assert.ok(!client.frames.some((f) => f.type === 'error'), 'closed by ws before any frame handling');
  });

  test('permessage-deflate offered by the client is not negotiated: no extension header, empty extensions, socket works', async () => {
    const { ws, opened } = rawSocket(server, cookie, { perMessageDeflate: true });
    const response = await opened;
    assert.equal(response.headers['sec-websocket-extensions'], undefined);
    assert.equal(ws.extensions, '');
    const ack = new Promise<unknown>((resolve) =>
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string };
        if (frame.type === 'ack') resolve(frame);
      }),
    );
    ws.send(JSON.stringify({ type: 'send', room: 'lobby', text: 'uncompressed', clientId: 'plain' }));
    assert.deepEqual(Object.keys((await ack) as object).sort(), ['clientId', 'id', 'type']);
    ws.close();
  });
});

// OWASP WS cheat sheet: strict schema validation of every message; ASVS 1.5 (safe deserialization)
describe('schema validation: each refused frame leaves the socket usable', () => {
  let server: TestServer;
  let client: Client;
  let listener: Client;

  before(async () => {
    server = await startServer({ env: HIGH_RATE });
    client = await open(server, await signUp(server, 'schema'));
    listener = await joined(server, await signUp(server, 'watcher'));
  });
  after(async () => {
    client?.ws.close();
    listener?.ws.close();
    await server?.close();
  });

  test('malformed JSON → error bad_json, and the next valid send is acked', async () => {
    await assertRefused(client, '{"type":"send","room":"lobby",', 'bad_json');
    await assertRefused(client, 'not json at all', 'bad_json');
  });

  test('non-object JSON (array, null, string, number) → bad_frame', async () => {
    for (const raw of ['[]', 'null', '"send"', '42']) await assertRefused(client, raw, 'bad_frame');
  });

  test('unknown type → unknown_type (also prototype names used as a type: __proto__, constructor, toString)', async () => {
    await assertRefused(client, { type: 'shout', room: 'lobby', text: 'hi' }, 'unknown_type');
    await assertRefused(client, { room: 'lobby', text: 'no type' }, 'unknown_type');
    for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      await assertRefused(client, JSON.stringify({ type, room: 'lobby' }), 'unknown_type');
    }
  });

  test('missing field → bad_frame', async () => {
    await assertRefused(client, { type: 'send', room: 'lobby' }, 'bad_frame');
    await assertRefused(client, { type: 'send', text: 'where to?' }, 'bad_frame');
    await assertRefused(client, { type: 'history', room: 'lobby' }, 'bad_frame');
  });

  test('extra field → bad_frame', async () => {
    await assertRefused(client, { type: 'send', room: 'lobby', text: 'hi', user: 'admin' }, 'bad_frame');
    await assertRefused(client, { type: 'join', room: 'lobby', admin: true }, 'bad_frame');
  });

  test('wrong field type → bad_frame', async () => {
    await assertRefused(client, { type: 'send', room: 'lobby', text: 42 }, 'bad_frame');
    await assertRefused(client, { type: 'send', room: 'lobby', text: ['a'] }, 'bad_frame');
    await assertRefused(client, { type: 'send', room: 7, text: 'hi' }, 'bad_frame');
    await assertRefused(client, { type: 'send', room: 'lobby', text: 'hi', clientId: 5 }, 'bad_frame');
    await assertRefused(client, { type: 'history', room: 'lobby', before: '5' }, 'bad_frame');
  });

  test('empty or whitespace-only text → bad_frame', async () => {
    await assertRefused(client, { type: 'send', room: 'lobby', text: '' }, 'bad_frame');
    await assertRefused(client, { type: 'send', room: 'lobby', text: ' \n\t ' }, 'bad_frame');
  });

  test(`text over ${MAX_TEXT_LENGTH} chars → bad_frame; exactly ${MAX_TEXT_LENGTH} is accepted`, async () => {
    await assertRefused(client, { type: 'send', room: 'lobby', text: 'y'.repeat(MAX_TEXT_LENGTH + 1) }, 'bad_frame');
    client.send({ type: 'send', room: 'lobby', text: 'y'.repeat(MAX_TEXT_LENGTH), clientId: 'max-text' });
    assert.equal((await client.next('ack')).clientId, 'max-text');
  });

  test('room names __proto__ and Lobby (not in the lowercase name pattern) → bad_frame', async () => {
    await assertRefused(client, JSON.stringify({ type: 'join', room: '__proto__' }), 'bad_frame');
    await assertRefused(client, JSON.stringify({ type: 'send', room: '__proto__', text: 'x' }), 'bad_frame');
    await assertRefused(client, { type: 'join', room: 'Lobby' }, 'bad_frame');
    await assertRefused(client, { type: 'send', room: 'LOBBY', text: 'x' }, 'bad_frame');
  });

  test('room name "constructor" is a valid lowercase name and is treated as plain data: no_such_room, then an ordinary room once created', async () => {
    // NAME_PATTERN admits "constructor" by design; what matters is that no lookup resolves it
    // through a prototype (store is SQLite, fan-out uses Map).
    await assertRefused(client, { type: 'join', room: 'constructor' }, 'no_such_room');
    await assertRefused(client, { type: 'send', room: 'constructor', text: 'x' }, 'no_such_room');
    client.send({ type: 'create', room: 'constructor' });
    const added = await client.next('room_added');
    assert.deepEqual(added.room, { name: 'constructor', private: true, owner: 'schema' });
    // the stranger "watcher" is refused as for any private room
    listener.send({ type: 'join', room: 'constructor' });
    assert.equal((await listener.next('error')).code, 'forbidden');
  });

  test('huge numbers for before (1e21, a 60 000-digit literal → Infinity), negative, zero and fractional before → bad_frame', async () => {
    await assertRefused(client, '{"type":"history","room":"lobby","before":1e21}', 'bad_frame');
    await assertRefused(client, `{"type":"history","room":"lobby","before":1${'0'.repeat(60_000)}}`, 'bad_frame');
    await assertRefused(client, { type: 'history', room: 'lobby', before: -1 }, 'bad_frame');
    await assertRefused(client, { type: 'history', room: 'lobby', before: 0 }, 'bad_frame');
    await assertRefused(client, { type: 'history', room: 'lobby', before: 1.5 }, 'bad_frame');
    // a normal before is fine
    client.send({ type: 'history', room: 'lobby', before: 999 });
    assert.equal((await client.next('history')).room, 'lobby');
  });

  test('prototype-pollution payloads ("__proto__": {...}, constructor.prototype) are refused and pollute nothing', async () => {
    // JSON.parse makes "__proto__" an own key; the validator rejects unknown own keys and
    // copies only the checked own fields into a fresh object, so nothing is ever merged.
    await assertRefused(client, '{"type":"send","room":"lobby","text":"hi","__proto__":{"polluted":true}}', 'bad_frame');
    await assertRefused(client, '{"type":"send","room":"lobby","text":"hi","constructor":{"prototype":{"polluted":true}}}', 'bad_frame');
    // Fields offered only through the prototype are not read: no own "type" → unknown_type.
    await assertRefused(client, '{"__proto__":{"type":"send","room":"lobby","text":"inherited","clientId":"p"}}', 'unknown_type');
    await assertRefused(client, '{"type":"send","__proto__":{"room":"lobby","text":"inherited"}}', 'bad_frame');
    // The server runs in this process (startServer → startParley), so this is the server's own realm.
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
    // And it still behaves: a normal message is acked and broadcast with exactly its own fields.
    client.send({ type: 'send', room: 'lobby', text: 'after pollution attempts', clientId: 'post-pollution' });
    const ack = await client.next('ack');
    assert.equal(ack.clientId, 'post-pollution');
    let message = await listener.next('message');
    while (message.id !== ack.id) message = await listener.next('message');
    assert.deepEqual(Object.keys(message).sort(), ['html', 'id', 'room', 'ts', 'type', 'user']);
    assert.equal(message.html, 'after pollution attempts');
    assert.equal(message.user, 'schema');
  });

  test('every refusal was audit-logged as ws_bad_frame, and the socket was never closed', () => {
    assert.ok(server.logs.filter((l) => l.includes('"ws_bad_frame"') && l.includes('"user":"schema"')).length >= 20);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
  });
});

// OWASP WS cheat sheet: rate-limit messages per user; ASVS 2.4 anti-automation
describe('message rate limit (1/s, burst 5, abuse threshold 10)', () => {
  let server: TestServer;
  let flooder: string;
  let watcher: Client;
  let talker: Client;
  // A slow refill (one token a second), so what the tests see does not depend on how fast a busy
  // machine opens the next socket: the burst comes back only after 5 s.
  const RATE_ENV = { WS_MESSAGES_PER_SECOND: '1', WS_MESSAGE_BURST: '5', WS_ABUSE_THRESHOLD: '10' };

  before(async () => {
    server = await startServer({ env: RATE_ENV });
    flooder = await signUp(server, 'flooder');
    watcher = await joined(server, await signUp(server, 'watcher'));
    talker = await open(server, await signUp(server, 'talker'));
  });
  after(async () => {
    watcher?.ws.close();
    talker?.ws.close();
    await server?.close();
  });

  let first: Client;

  test('a burst of 8 sends gets 5 acks, then 3 rate_limited error frames', async () => {
    first = await open(server, flooder);
    for (let i = 1; i <= 8; i++) first.send({ type: 'send', room: 'lobby', text: `burst ${i}`, clientId: `b${i}` });
    await waitFor(() => first.frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= 8, 3000, '8 replies');
    await sleep(50);
    const acks = first.frames.filter((f) => f.type === 'ack');
    const errors = first.frames.filter((f) => f.type === 'error');
    assert.deepEqual(
      acks.map((a) => a.clientId),
      ['b1', 'b2', 'b3', 'b4', 'b5'],
    );
    assert.deepEqual(
      errors.map((e) => e.code),
      ['rate_limited', 'rate_limited', 'rate_limited'],
    );
    // each refusal names the refused send, so a client can mark exactly that one as not sent
    assert.deepEqual(
      errors.map((e) => (e.type === 'error' ? e.clientId : undefined)),
      ['b6', 'b7', 'b8'],
    );
    // the watcher got exactly the 5 accepted messages
    await waitFor(() => watcher.frames.filter((f) => f.type === 'message').length >= 5, 2000, '5 messages at the watcher');
    const seen = watcher.frames.filter((f) => f.type === 'message').map((m) => m.html);
    assert.deepEqual(seen, ['burst 1', 'burst 2', 'burst 3', 'burst 4', 'burst 5']);
  });

  test('keeping on flooding past the abuse threshold closes the socket 1008', async () => {
    for (let i = 1; i <= 20; i++) first.send({ type: 'send', room: 'lobby', text: `flood ${i}`, clientId: `f${i}` });
    const { code } = await closedWithin(first, 3000);
    assert.equal(code, 1008);
    assert.ok(server.logs.some((l) => l.includes('"ws_rate_limited"') && l.includes('"reason":"abuse"') && l.includes('"user":"flooder"')));
  });

  test('another user in the room keeps sending and receiving while the flooder is limited', async () => {
    talker.send({ type: 'send', room: 'lobby', text: 'unaffected', clientId: 't1' });
    assert.equal((await talker.next('ack')).clientId, 't1');
    let message = await watcher.next('message');
    while (message.html !== 'unaffected') message = await watcher.next('message');
    assert.equal(message.user, 'talker');
    watcher.send({ type: 'send', room: 'lobby', text: 'me too', clientId: 'w1' });
    assert.equal((await watcher.next('ack')).clientId, 'w1');
  });

  test('reconnecting does not reset the bucket; after waiting, the limited user (new socket) can send again', async () => {
    const again = await open(server, flooder);
    for (let i = 1; i <= 5; i++) again.send({ type: 'send', room: 'lobby', text: `retry ${i}`, clientId: `r${i}` });
    await waitFor(() => again.frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= 5, 3000, '5 replies');
    const refused = again.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
    assert.ok(refused >= 1, `a fresh socket of the same user right after the flood got ${refused} rate_limited`);
    await sleep(1200); // 1/s: at least one token is back
    const mark = again.frames.length;
    again.send({ type: 'send', room: 'lobby', text: 'patient now', clientId: 'patient' });
    assert.equal((await again.next('ack')).clientId, 'patient');
    assert.ok(!again.frames.slice(mark).some((f) => f.type === 'error'));
    again.ws.close();
  });

  test('the bucket is per user, not per socket: two sockets of one user share 5 tokens', async () => {
    const cookie = await signUp(server, 'twin');
    const [one, two] = [await open(server, cookie), await open(server, cookie)];
    for (let i = 1; i <= 3; i++) {
      one.send({ type: 'send', room: 'lobby', text: `one ${i}`, clientId: `one${i}` });
      two.send({ type: 'send', room: 'lobby', text: `two ${i}`, clientId: `two${i}` });
    }
    const replies = () => [...one.frames, ...two.frames].filter((f) => f.type === 'ack' || f.type === 'error');
    await waitFor(() => replies().length >= 6, 3000, '6 replies');
    await sleep(50);
    const acks = replies().filter((f) => f.type === 'ack').length;
    const limited = replies().filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
    // Per-socket buckets would have acked all 6 (3 ≤ burst on each socket).
    assert.equal(acks, 5);
    assert.equal(limited, 1);
    one.ws.close();
    two.ws.close();
  });
});

// Control-off proof for the rate limit: the same flood succeeds when the control is switched off
describe('message rate limit switched off (proves the test above can fail)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      env: { WS_MESSAGES_PER_SECOND: '5', WS_MESSAGE_BURST: '5', WS_ABUSE_THRESHOLD: '10' },
      disabled: ['rate-limit'],
    });
  });
  after(async () => server?.close());

  test('with rate-limit disabled, 40 rapid sends are all acked and none refused', async () => {
    const client = await open(server, await signUp(server, 'flooder'));
    for (let i = 1; i <= 40; i++) client.send({ type: 'send', room: 'lobby', text: `n ${i}`, clientId: `n${i}` });
    await waitFor(() => client.frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= 40, 5000, '40 replies');
    assert.equal(client.frames.filter((f) => f.type === 'ack').length, 40);
    assert.equal(client.frames.filter((f) => f.type === 'error').length, 0);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.ws.close();
  });
});

// OWASP WS cheat sheet: detect dead peers (ping/pong heartbeat) so they do not hold resources
describe('heartbeat (every 0.3 s)', () => {
  let server: TestServer;
  let cookie: string;
  before(async () => {
    server = await startServer({ env: { WS_HEARTBEAT_SECONDS: '0.3' } });
    cookie = await signUp(server, 'beat');
  });
  after(async () => server?.close());

  test('a client that never answers pings (autoPong: false) is terminated (1006) within ~1 s; a normal client stays open', async () => {
    const normal = await open(server, cookie);
    const { ws: silent, opened } = rawSocket(server, cookie, { autoPong: false, perMessageDeflate: false });
    await opened;
    const start = Date.now();
    let pings = 0;
    silent.on('ping', () => pings++);
    const code = await new Promise<number>((resolve) => silent.on('close', (c) => resolve(c)));
    const elapsed = Date.now() - start;
    assert.equal(code, 1006, 'terminated without a close frame');
    assert.ok(elapsed <= 1500, `terminated after ${elapsed} ms`);
    assert.ok(pings >= 1, 'the server did ping it');
    assert.ok(server.logs.some((l) => l.includes('"ws_heartbeat_timeout"')));
    // Over the same period (and a bit more) the client that answers pings stays open and works.
    await sleep(Math.max(0, 1200 - elapsed));
    assert.equal(normal.ws.readyState, WebSocket.OPEN);
    normal.send({ type: 'send', room: 'lobby', text: 'still alive', clientId: 'alive' });
    assert.equal((await normal.next('ack')).clientId, 'alive');
    normal.ws.close();
  });
});

// OWASP WS cheat sheet (resource limits): a peer that stops reading is dropped, not buffered without bound
describe('backpressure (WS_MAX_BUFFERED_BYTES 64 KiB)', () => {
  let server: TestServer;
  before(async () => {
    // Rate limit off so one user can flood fast enough to fill the slow reader's buffers.
    server = await startServer({ env: { WS_MAX_BUFFERED_BYTES: '65536' }, disabled: ['rate-limit'] });
  });
  after(async () => server?.close());

  test('a client that stops reading is dropped (ws_dropped_slow_consumer); the flooder and other readers get everything', async (t) => {
    const slow = await joined(server, await signUp(server, 'slow'));
    const observer = await joined(server, await signUp(server, 'observer'));
    const flooder = await open(server, await signUp(server, 'flooder'));
    (slow.ws as unknown as { _socket: { pause: () => void } })._socket.pause();
    const rssBefore = process.memoryUsage().rss;

    const text = '€'.repeat(MAX_TEXT_LENGTH); // 2000 chars, 6000 bytes of UTF-8
    const dropped = () => server.logs.some((l) => l.includes('"ws_dropped_slow_consumer"') && l.includes('"user":"slow"'));
    const BATCH = 20; // small batches: the in-process observer never falls a whole grace period behind
    let sent = 0;
    let batchesAfterDrop = 0;
    while (sent < 20_000 && batchesAfterDrop < 2) {
      for (let i = 0; i < BATCH; i++) {
        sent++;
        flooder.send({ type: 'send', room: 'lobby', text, clientId: `m${sent}` });
      }
      for (let i = 0; i < BATCH; i++) await flooder.next('ack', 10_000); // the flooder is paced by its acks
      if (dropped()) batchesAfterDrop++;
    }
    t.diagnostic(
      `sent ${sent} messages (${((sent * text.length * 3) / 1e6).toFixed(1)} MB); ` +
        `RSS ${(rssBefore / 1e6).toFixed(0)} MB → ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );
    const wrongDrops = server.logs.filter((l) => l.includes('"ws_dropped_slow_consumer"') && !l.includes('"user":"slow"'));
    assert.deepEqual(wrongDrops, [], 'only the client that stopped reading may be dropped');
    assert.ok(dropped(), 'the slow consumer was dropped');
    assert.equal(server.parley.connectionsOf('slow'), 0, 'the server holds no connection for the slow user');

    // Flooder: every message acked, in order.
    const acks = flooder.frames.filter((f) => f.type === 'ack');
    assert.equal(acks.length, sent);
    assert.deepEqual(
      acks.map((a) => a.clientId),
      Array.from({ length: sent }, (_, i) => `m${i + 1}`),
    );
    // Observer: every message delivered, and still connected.
    const delivered = () => observer.frames.filter((f) => f.type === 'message' && f.user === 'flooder').length;
    await waitFor(() => delivered() >= sent, 10_000, `${sent} messages at the observer (have ${delivered()})`);
    assert.equal(delivered(), sent);
    assert.equal(observer.ws.readyState, WebSocket.OPEN);
    flooder.ws.close();
    observer.ws.close();
    slow.ws.terminate();
  });

  test('a reader that keeps reading is not dropped when one frame (a 20 × 6 KB history page) exceeds the buffer limit', async () => {
    const archivist = await open(server, await signUp(server, 'archivist'));
    const readerCookie = await signUp(server, 'reader');
    archivist.send({ type: 'create', room: 'archive' });
    await archivist.next('room_added');
    const invitee = await open(server, readerCookie);
    await inviteAndAccept(archivist, invitee, 'archive', 'reader');
    invitee.ws.close();
    const text = '€'.repeat(MAX_TEXT_LENGTH);
    for (let i = 1; i <= 20; i++) {
      archivist.send({ type: 'send', room: 'archive', text, clientId: `a${i}` }); // one at a time: no burst
      await archivist.next('ack');
    }
    const reader = await open(server, readerCookie);
    reader.send({ type: 'join', room: 'archive' });
    const page = await reader.next('history');
    assert.equal(page.messages.length, 20);
    await sleep(200);
    assert.deepEqual(
      server.logs.filter((l) => l.includes('"ws_dropped_slow_consumer"') && l.includes('"user":"reader"')),
      [],
    );
    assert.equal(reader.ws.readyState, WebSocket.OPEN, 'the reader read everything and must still be connected');
    reader.send({ type: 'send', room: 'archive', text: 'thanks', clientId: 'r1' });
    assert.equal((await reader.next('ack')).clientId, 'r1');
    reader.ws.close();
    archivist.ws.close();
  });
});

// Coalesced writes (server/ws/connection.ts) must not reorder frames: every server frame to a
// socket goes through one queue, so a sender sees each ack before its own broadcast message,
// and everyone sees messages in commit order.
describe('frame order with coalesced writes', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' } });
  });
  after(async () => server?.close());

  test('50 back-to-back sends: each ack precedes its message for the sender; ids ascend for every reader', async () => {
    const sender = await joined(server, await signUp(server, 'orderly'));
    const reader = await joined(server, await signUp(server, 'watcher'));
    for (let i = 0; i < 50; i++) sender.send({ type: 'send', room: 'lobby', text: `m${i}`, clientId: `c${i}` });
    for (let i = 0; i < 50; i++) await sender.next('ack');
    for (let i = 0; i < 50; i++) await reader.next('message');
    const seen = sender.frames.filter((f) => f.type === 'ack' || f.type === 'message');
    for (let i = 0; i < 50; i++) {
      const ackAt = seen.findIndex((f) => f.type === 'ack' && f.clientId === `c${i}`);
      const ack = seen[ackAt];
      assert.ok(ack && ack.type === 'ack');
      const messageAt = seen.findIndex((f) => f.type === 'message' && f.id === ack.id);
      assert.ok(ackAt !== -1 && messageAt > ackAt, `ack of c${i} at ${ackAt}, its message at ${messageAt}`);
    }
    const ids = reader.frames.flatMap((f) => (f.type === 'message' ? [f.id] : []));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.deepEqual(
      reader.frames.flatMap((f) => (f.type === 'message' ? [f.html] : [])),
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    sender.ws.close();
    reader.ws.close();
  });
});
