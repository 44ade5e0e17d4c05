// tier: unit
// The slow-consumer rule's timing, exactly: a peer over WS_MAX_BUFFERED_BYTES is dropped when
// it stays over for the whole 1 s grace period, not when it is over at two instants a second
// apart. The attack itself (a client that stops reading, over real WSS) is in frames.test.ts
// and test/abuse/floods.test.ts; those cannot steer the kernel's socket buffers, so the grace
// boundaries are pinned here on one Connection with a socket whose buffered bytes the test
// sets, and with mocked setTimeout (no sleeps, no flakiness).
// Run: npx node --test test/backpressure-grace.test.ts
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { Connection, textFrame } from '../server/ws/connection.ts';

const LIMIT = 64 * 1024;

/** The TLS socket's write side as Connection sees it: writableLength is what the peer has not read. */
class FakeSocket extends EventEmitter {
  writableLength = 0;
  destroyed = false;
  writable = true;
  write(chunk: Buffer): boolean {
    this.writableLength += chunk.length;
    return this.writableLength < 65536;
  }
  cork(): void {}
  uncork(): void {}
  /** The peer read some of it. */
  readUntil(left: number): void {
    this.writableLength = left;
    if (left === 0) this.emit('drain');
  }
}

/** What Connection uses of a ws WebSocket; bufferedAmount is the socket's writableLength, as in ws. */
class FakeWebSocket extends EventEmitter {
  readonly extensions = '';
  readonly OPEN = 1;
  readyState = 1;
  readonly #socket: FakeSocket;
  constructor(socket: FakeSocket) {
    super();
    this.#socket = socket;
  }
  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }
  terminate(): void {
    this.readyState = 3;
    this.emit('close', 1006);
  }
}

function connection() {
  const socket = new FakeSocket();
  const ws = new FakeWebSocket(socket);
  const events: string[] = [];
  const conn = new Connection(
    ws as unknown as WebSocket,
    { socket: socket as unknown as Duplex, user: 'reader', sid: 'sid', ip: '127.0.0.1', expiresAt: Date.now() + 3_600_000 },
    {
      readFrame: () => ({ kind: 'refuse', code: 'bad_frame', message: 'unused' }), // this test sends no frames
      handle: async () => {},
      sessionDeadline: async () => Date.now() + 3_600_000,
      onClose: () => {},
      log: (event) => events.push(event),
      maxBufferedBytes: LIMIT,
      slowConsumerGraceMs: 1000, // the defaults (WS_SLOW_CONSUMER_GRACE_SECONDS, WS_MAX_BUFFERED_HARD_BYTES = 16 × limit)
      maxBufferedHardBytes: 16 * LIMIT,
      touchEveryMs: 60_000,
      recheckMs: 3_600_000,
    },
  );
  const dropped = () => events.includes('ws_dropped_slow_consumer');
  /** Queues `bytes` of frames and lets the end-of-turn flush write them to the socket. */
  const burst = (bytes: number) => {
    conn.sendFrame(textFrame('x'.repeat(bytes)));
    conn.flush(); // what the end-of-turn setImmediate does (its own later call finds the queue empty)
  };
  return { socket, conn, dropped, burst };
}

describe('slow-consumer grace period (WS_MAX_BUFFERED_BYTES, 1 s)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('a peer that stays over the limit is dropped when the grace period ends, not before', () => {
    const { conn, dropped, burst } = connection();
    burst(100_000);
    mock.timers.tick(999);
    assert.equal(dropped(), false);
    mock.timers.tick(1);
    assert.equal(dropped(), true, 'over the limit for the whole second');
    assert.equal(conn.isOpen, false);
  });

  test('a peer that drains in between is not dropped for being over again a second later (a busy reader, not a stopped one)', () => {
    const { socket, conn, dropped, burst } = connection();
    burst(100_000); // over at t = 0: grace until t = 1000
    mock.timers.tick(400);
    socket.readUntil(0); // read everything: 'drain'
    mock.timers.tick(200);
    burst(100_000); // over again at t = 600: a new grace period, until t = 1600
    mock.timers.tick(400); // t = 1000
    assert.equal(dropped(), false, 'over at t = 0 and at t = 1000, but it caught up in between');
    assert.equal(conn.isOpen, true);
    mock.timers.tick(600); // t = 1600: over since t = 600 without catching up
    assert.equal(dropped(), true);
  });

  test('a peer found under the limit at the next flush (read most, not all) starts a new grace period', () => {
    const { socket, dropped, burst } = connection();
    burst(100_000); // grace until t = 1000
    mock.timers.tick(500);
    socket.readUntil(10_000); // under the limit, not empty: no 'drain'
    burst(80_000); // t = 500: under before this flush, over after it; grace until t = 1500
    mock.timers.tick(500); // t = 1000
    assert.equal(dropped(), false);
    mock.timers.tick(500); // t = 1500
    assert.equal(dropped(), true);
  });

  test('a peer still over at every flush is dropped on the first grace period, however often it reads a little', () => {
    const { socket, dropped, burst } = connection();
    burst(200_000);
    for (let t = 0; t < 900; t += 100) {
      mock.timers.tick(100);
      socket.readUntil(socket.writableLength - 1_000); // reads a little, stays far over
      burst(1_000);
    }
    assert.equal(dropped(), false); // t = 900
    mock.timers.tick(100); // t = 1000
    assert.equal(dropped(), true);
  });

  test('past 16× the limit the peer is dropped at once, grace or not', () => {
    const { dropped, burst } = connection();
    burst(100_000);
    assert.equal(dropped(), false);
    burst(16 * LIMIT);
    assert.equal(dropped(), true);
  });
});
