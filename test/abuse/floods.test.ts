// Floods from an authenticated user, and slow consumers, against the real server (a child
// process running server/main.ts, so its RSS is its own). Run: npx node --test test/abuse/floods.test.ts
//
// - Message flood: one user floods from every socket it may open; the per-user rate limit
//   (WS_MESSAGES_PER_SECOND 10, burst 30, abuse threshold 20 — the defaults) and the per-user
//   socket cap (8) hold, and two other users chatting in the same room see at most
//   ADDED_P99_BOUND_MS more p99 latency than without the flood.
// - Slow consumers: ten clients stop reading while a producer floods the room; each is dropped
//   once its buffer passes WS_MAX_BUFFERED_BYTES (1 MiB, the default), the server's RSS stays
//   bounded, and a reader that keeps reading gets every message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { connect, joined, open, signUp, type Client, type TestServer } from '../helpers/server.ts';
import { frame, OP, percentile, RawWs, sleep, spawnServer, startObserver, type ChildServer, type Observer } from './harness.ts';

/** Added observer p99 the flood may cause; generous for a loaded 2-core CI box. */
const ADDED_P99_BOUND_MS = 250;

function stats(values: number[]): string {
  return `p50 ${percentile(values, 50)} ms, p99 ${percentile(values, 99)} ms, max ${Math.max(...values)} ms`;
}

describe('flood from an authenticated user (default limits)', () => {
  let child: ChildServer;
  let server: TestServer;
  let observer: Observer;
  let listener: Client;
  let flooderCookie: string;

  before(async () => {
    child = await spawnServer();
    server = child.server;
    // The two well-behaved users run in their own process (see observer.ts); `listener` here only counts flood messages.
    const listenerCookie = await signUp(server, 'listener');
    observer = await startObserver(server, await signUp(server, 'observer'), await signUp(server, 'listener2'), 100);
    listener = await joined(server, listenerCookie);
    flooderCookie = await signUp(server, 'flooder');
  });
  after(async () => {
    await observer?.close();
    listener?.ws.close();
    await child?.stop();
  });

  test('the rate limit and the socket cap hold, and the other users see no more than the stated added delay', async (t) => {
    observer.start();
    await sleep(4000);
    const baseline = await observer.stop();

    // The flooder opens sockets up to the cap (8); the ninth is refused 429.
    const sockets: Client[] = [];
    for (let i = 0; i < 8; i++) sockets.push(await open(server, flooderCookie));
    const ninth = await connect(server, { cookie: flooderCookie });
    assert.equal('status' in ninth ? ninth.status : undefined, 429, 'the ninth socket of one user is refused');

    // Flood: every socket sends as fast as it can; closed sockets are reopened (as an attacker would).
    const FLOOD_MS = 5000;
    const floodStart = Date.now();
    let framesSent = 0;
    let opened = 8;
    let refusedOpens = 0;
    const closes = new Map<number, number>();
    const rateLimitedErrors = { count: 0 };
    const all: Client[] = [];
    const watch = (client: Client) => {
      all.push(client);
      client.ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string; code?: string };
        if (frame.type === 'error' && frame.code === 'rate_limited') rateLimitedErrors.count += 1;
      });
      client.closed.then(({ code }) => closes.set(code, (closes.get(code) ?? 0) + 1));
    };
    sockets.forEach(watch);
    const flooding = Promise.all(
      sockets.map(async (first) => {
        let client: Client | undefined = first;
        while (Date.now() - floodStart < FLOOD_MS) {
          if (!client || client.ws.readyState !== WebSocket.OPEN) {
            const attempt = await connect(server, { cookie: flooderCookie });
            if (!('client' in attempt)) {
              refusedOpens += 1;
              client = undefined;
              await sleep(50);
              continue;
            }
            client = attempt.client;
            opened += 1;
            watch(client);
          }
          for (let i = 0; i < 50 && client.ws.readyState === WebSocket.OPEN; i++) {
            client.send({ type: 'send', room: 'lobby', text: `flood ${framesSent}` });
            framesSent += 1;
          }
          await sleep(5);
        }
      }),
    );
    observer.start();
    await flooding;
    const during = await observer.stop();
    const floodMs = Date.now() - floodStart;
    await sleep(500);
    for (const client of all) client.ws.terminate();

    const flooderMessages = listener.frames.filter((f) => f.type === 'message' && f.user === 'flooder').length;
    const allowed = 30 + Math.ceil((10 * (floodMs + 500)) / 1000);
    const addedP99 = percentile(during.latencies, 99) - percentile(baseline.latencies, 99);
    t.diagnostic(
      `flood: ${framesSent} frames in ${floodMs} ms from ${opened} sockets (${refusedOpens} reopen attempts refused); ` +
        `${flooderMessages} messages got through (allowed ≤ ${allowed}), ${rateLimitedErrors.count} rate_limited errors, closes ${[...closes].map(([k, v]) => `${k}×${v}`).join(', ')}`,
    );
    t.diagnostic(`observer without flood: ${baseline.sent} sent, ${baseline.latencies.length} delivered, ${stats(baseline.latencies)}`);
    t.diagnostic(
      `observer during flood: ${during.sent} sent, ${during.latencies.length} delivered, ${stats(during.latencies)}; added p99 ${addedP99} ms (bound ${ADDED_P99_BOUND_MS} ms)`,
    );

    assert.ok(flooderMessages <= allowed, `${flooderMessages} flood messages got through; the limit allows ${allowed}`);
    assert.ok(flooderMessages >= 1, 'the limiter lets a bounded amount through, not nothing');
    assert.ok((closes.get(1008) ?? 0) >= 8, 'flooding sockets are closed 1008 past the abuse threshold');
    assert.ok(rateLimitedErrors.count > 0, 'refused frames get rate_limited errors first');
    assert.equal(baseline.latencies.length, baseline.sent, 'every calm message delivered');
    assert.equal(during.latencies.length, during.sent, 'every observer message delivered during the flood');
    assert.ok(addedP99 <= ADDED_P99_BOUND_MS, `the flood added ${addedP99} ms to the observer p99`);
    assert.equal(child.proc.exitCode, null);
  });
});

describe('slow consumers (WS_MAX_BUFFERED_BYTES 1 MiB, the default)', () => {
  let child: ChildServer;
  let server: TestServer;

  before(async () => {
    // The producer's rate limit is raised so one user can fill the slow readers' buffers.
    child = await spawnServer({ WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '100000' });
    server = child.server;
  });
  after(async () => child?.stop());

  test('ten clients that stop reading are dropped once past the bound; RSS stays bounded; a reader that keeps reading gets everything', async (t) => {
    const SLOW = 10;
    const slowCookies: string[] = [];
    for (let i = 0; i < SLOW; i++) slowCookies.push(await signUp(server, `slow${i}`));
    const slow: RawWs[] = [];
    for (const cookie of slowCookies) {
      const ws = await RawWs.open(server, cookie);
      ws.write(frame({ opcode: OP.text, payload: '{"type":"join","room":"lobby"}' }));
      await ws.until(() => ws.texts.some((x) => x.startsWith('{"type":"history"')), 5000, 'history');
      slow.push(ws);
    }
    const reader = await joined(server, await signUp(server, 'reader'));
    const producer = await open(server, await signUp(server, 'producer'));
    await sleep(300);
    const rssBefore = child.rssMb();
    const pausedAt = Date.now();
    for (const ws of slow) ws.socket.pause(); // stop reading: the kernel buffers fill, then the server's
    // A paused socket does not see its own end; the server's log says when each was dropped.
    const droppedCount = () => child.output.filter((l) => l.includes('"ws_dropped_slow_consumer"')).length;
    const dropLines = () => child.output.filter((l) => l.includes('"ws_dropped_slow_consumer"'));
    const dropSeenAt: number[] = [];

    const text = 'slow consumers '.repeat(130); // 1950 chars
    let sent = 0;
    let rssPeak = rssBefore;
    const started = Date.now();
    let afterAllDropped = 0;
    while (Date.now() - started < 30_000 && afterAllDropped < 300) {
      for (let i = 0; i < 100; i++) {
        sent += 1;
        producer.send({ type: 'send', room: 'lobby', text, clientId: `p${sent}` });
      }
      for (let i = 0; i < 100; i++) await producer.next('ack', 10_000);
      rssPeak = Math.max(rssPeak, child.rssMb());
      while (dropSeenAt.length < droppedCount()) dropSeenAt.push(Date.now() - pausedAt);
      if (droppedCount() >= SLOW) afterAllDropped += 100;
    }
    const bytesPerSlow = sent * (text.length + 100);
    await sleep(1000);
    const rssAfter = child.rssMb();
    const delivered = () => reader.frames.filter((f) => f.type === 'message' && f.user === 'producer').length;
    const deadline = Date.now() + 10_000;
    while (delivered() < sent && Date.now() < deadline) await sleep(20);

    const bytes = dropLines().map((l) => Number((JSON.parse(l) as { count?: number }).count ?? 0));
    t.diagnostic(
      `producer: ${sent} messages of ${text.length} chars (${(bytesPerSlow / 2 ** 20).toFixed(1)} MiB to each reader) in ${Date.now() - started} ms`,
    );
    t.diagnostic(
      `slow consumers dropped: ${droppedCount()}/${SLOW}, seen in the log at ${dropSeenAt.join(', ')} ms after they stopped reading; server-side buffer at the drop ${bytes.map((b) => (b / 2 ** 20).toFixed(2)).join(', ')} MiB`,
    );
    t.diagnostic(
      `server RSS: before ${rssBefore.toFixed(1)} MB, peak ${rssPeak.toFixed(1)} MB (+${(rssPeak - rssBefore).toFixed(1)}), 1 s after ${rssAfter.toFixed(1)} MB`,
    );
    t.diagnostic(`reader: ${delivered()}/${sent} delivered, still open: ${reader.ws.readyState === WebSocket.OPEN}`);

    assert.equal(droppedCount(), SLOW, 'every slow consumer dropped');
    assert.ok(
      dropSeenAt.every((ms) => ms <= 10_000),
      'each dropped within 10 s of it stopping reading',
    );
    assert.ok(
      dropLines().every((l) => /"user":"slow\d"/.test(l)),
      'only slow consumers dropped',
    );
    // Each was dropped past the bound (1 MiB) and below the hard bound (16 MiB).
    for (const b of bytes) assert.ok(b > 2 ** 20 && b <= 16 * 2 ** 20 + 64 * 1024, `dropped at ${b} bytes`);
    // Memory: ten slow readers may cost at most their bounded buffers, not the whole stream.
    assert.ok(rssPeak - rssBefore <= 200, `RSS grew ${(rssPeak - rssBefore).toFixed(1)} MB`);
    assert.equal(delivered(), sent, 'the reader got every message');
    assert.equal(reader.ws.readyState, WebSocket.OPEN);
    assert.equal(child.output.filter((l) => l.includes('"server_error"')).length, 0);
    for (const ws of slow) ws.destroy();
    reader.ws.close();
    producer.ws.close();
  });
});
