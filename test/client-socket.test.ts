// tier: unit
// The chat socket's reconnect logic without a browser (client/socket.ts): a fake WebSocket the
// test opens and closes like a server would, node:test's fake clock, and Math.random pinned so
// each backoff wait is exact. What the socket must do: wait longer after each failure (with
// jitter, up to a cap), start short again after a healthy connection, stop for good when the
// session is over, stop and say so after a few refused handshakes while signed in, never
// replay a frame on its own, and drop a malformed frame instead of throwing.
// The browser end-to-end suites (test/e2e/client-limits.test.ts, chat.test.ts) drive the same
// code against a real server.
// Run: npx node --test test/client-socket.test.ts
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatController, type ChatView } from '../client/chat-controller.ts';
import { ChatSocket, type SessionCheck, type SocketEvents, type SocketPlatform } from '../client/socket.ts';
import { CLOSE } from '../shared/protocol.ts';

/** The socket's own constants, restated: a change to them should be a change to this test too. */
const BASE_MS = 500;
const MAX_MS = 30_000;
const STABLE_AFTER_MS = 10_000;
const MAX_REFUSED = 4;

/** A WebSocket the test drives: open(), receive(), drop() are what the server (or the network) does. */
class FakeWebSocket {
  static readonly OPEN = 1;
  readyState = 0;
  readonly sent: string[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly url: string;
  constructor(url: string, created: FakeWebSocket[]) {
    this.url = url;
    created.push(this);
  }
  send(data: string): void {
    assert.equal(this.readyState, FakeWebSocket.OPEN, 'send only on an open socket');
    this.sent.push(data);
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.({});
  }
  receive(data: unknown): void {
    this.onmessage?.({ data });
  }
  /** The connection ends: refused before open (the browser only says 1006), or closed by the server. */
  drop(code: number = 1006, reason = ''): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }
}

const URL = 'wss://parley.test/ws';

function setup(options: { session?: SessionCheck; onLine?: boolean } = {}) {
  const sockets: FakeWebSocket[] = [];
  const events = new EventTarget();
  const net = { onLine: options.onLine ?? true };
  const session = { answer: options.session ?? ('valid' as SessionCheck), asked: 0 };
  const platform: SocketPlatform = {
    // The fake has what socket.ts uses of a WebSocket, not the whole DOM interface.
    WebSocket: class extends FakeWebSocket {
      constructor(url: string) {
        super(url, sockets);
      }
    } as unknown as SocketPlatform['WebSocket'],
    events,
    onLine: () => net.onLine,
  };
  const socket = new ChatSocket({
    url: URL,
    checkSession: async () => {
      session.asked += 1;
      return session.answer;
    },
    platform,
  });
  const seen: string[] = [];
  const closed: SocketEvents['closed'][] = [];
  const frames: SocketEvents['frame'][] = [];
  socket.on('state', (state) => seen.push(`state:${state}`));
  socket.on('open', () => seen.push('open'));
  socket.on('ended', () => seen.push('ended'));
  socket.on('refused', () => seen.push('refused'));
  socket.on('closed', (detail) => closed.push(detail));
  socket.on('frame', (frame) => frames.push(frame));
  const last = () => sockets.at(-1)!;
  return { socket, sockets, last, events, net, session, seen, closed, frames };
}

/** Let checkSession's promise and what follows it run (setImmediate is not faked). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The wait before the next attempt is exactly `ms`: nothing one millisecond earlier, a new socket at `ms`. */
function assertNextAttemptAfter(sockets: FakeWebSocket[], ms: number, note = ''): void {
  const before = sockets.length;
  mock.timers.tick(Math.ceil(ms) - 1);
  assert.equal(sockets.length, before, `no attempt before ${ms} ms ${note}`);
  mock.timers.tick(1);
  assert.equal(sockets.length, before + 1, `an attempt at ${ms} ms ${note}`);
}

/** min(cap, base·2^attempt): the upper end of the jittered wait. */
const ceiling = (attempt: number) => Math.min(MAX_MS, BASE_MS * 2 ** attempt);

let random: ReturnType<typeof mock.method>;
let warnings: ReturnType<typeof mock.method>;
beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  random = mock.method(Math, 'random', () => 0);
  warnings = mock.method(console, 'warn', () => {});
});
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

describe('ChatSocket: connecting', () => {
  test('start() opens one socket to the given URL; open reports connected', () => {
    const { socket, sockets, last, seen } = setup();
    socket.start();
    socket.start(); // a second start is a no-op
    assert.equal(sockets.length, 1);
    assert.equal(last().url, URL);
    assert.equal(socket.state, 'connecting');
    last().open();
    assert.equal(socket.state, 'connected');
    assert.deepEqual(seen, ['state:connecting', 'state:connected', 'open']);
  });
});

describe('ChatSocket: backoff', () => {
  test('each failure doubles the wait (base 500 ms), with the jitter at its low end the wait is half the ceiling', async () => {
    const { socket, sockets, last, session, seen } = setup({ session: 'unknown' });
    socket.start();
    for (let attempt = 0; attempt < 12; attempt++) {
      last().drop();
      await settle();
      assert.equal(socket.state, 'reconnecting');
      assertNextAttemptAfter(sockets, ceiling(attempt) / 2, `(attempt ${attempt})`);
    }
    // An unknown answer from /api/me (the server restarting) is never counted as a refusal.
    assert.equal(session.asked, 12);
    assert.ok(!seen.includes('refused'), 'no answer is not a refusal');
  });

  test('the wait is capped at 30 s however long the server stays away (jitter at its high end)', async () => {
    random.mock.mockImplementation(() => 0.999_999);
    const { socket, sockets, last } = setup({ session: 'unknown' });
    socket.start();
    for (let attempt = 0; attempt < 20; attempt++) {
      last().drop();
      await settle();
      const wait = ceiling(attempt) / 2 + 0.999_999 * (ceiling(attempt) / 2);
      assert.ok(wait <= MAX_MS);
      assertNextAttemptAfter(sockets, wait, `(attempt ${attempt})`);
    }
  });

  test('the jitter spreads the wait over [ceiling/2, ceiling): clients a restart dropped together do not return together', async () => {
    const waits: number[] = [];
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      random.mock.mockImplementation(() => r);
      const { socket, sockets, last } = setup({ session: 'unknown' });
      socket.start();
      for (let attempt = 0; attempt < 3; attempt++) {
        last().drop();
        await settle();
        const expected = ceiling(attempt) / 2 + r * (ceiling(attempt) / 2);
        assert.ok(expected >= ceiling(attempt) / 2 && expected < ceiling(attempt));
        assertNextAttemptAfter(sockets, expected, `(r=${r}, attempt ${attempt})`);
        if (attempt === 2) waits.push(expected);
      }
      socket.stop();
    }
    assert.equal(new Set(waits).size, waits.length, 'different random draws, different waits');
  });

  test('a connection that stayed up 10 s resets the backoff; a shorter one does not', async () => {
    const { socket, sockets, last } = setup({ session: 'unknown' });
    socket.start();
    for (let attempt = 0; attempt < 5; attempt++) {
      last().drop();
      await settle();
      mock.timers.tick(ceiling(attempt));
    }
    // Up for less than STABLE_AFTER_MS: a flapping server keeps the wait growing.
    last().open();
    mock.timers.tick(STABLE_AFTER_MS - 1);
    last().drop(CLOSE.goingAway);
    await settle();
    assertNextAttemptAfter(sockets, ceiling(5) / 2, '(short connection: backoff continues)');
    // Up for STABLE_AFTER_MS: healthy, so the next failure starts from the base again.
    last().open();
    mock.timers.tick(STABLE_AFTER_MS);
    last().drop(CLOSE.goingAway);
    await settle();
    assertNextAttemptAfter(sockets, ceiling(0) / 2, '(after a stable connection)');
  });

  test('reconnectNow() skips the rest of the wait', async () => {
    const { socket, sockets, last } = setup({ session: 'unknown' });
    socket.start();
    last().drop();
    await settle();
    assert.equal(sockets.length, 1);
    socket.reconnectNow();
    assert.equal(sockets.length, 2);
    mock.timers.tick(MAX_MS);
    assert.equal(sockets.length, 2, 'the skipped timer does not fire as well');
  });
});

describe('ChatSocket: the session and the connection limit', () => {
  test('a refused handshake while signed out ends the socket for good: "ended", offline, no more attempts', async () => {
    const { socket, sockets, last, session, seen } = setup({ session: 'ended' });
    socket.start();
    last().drop();
    await settle();
    assert.equal(session.asked, 1, 'the refused handshake is explained by GET /api/me');
    assert.equal(socket.state, 'offline');
    assert.equal(seen.at(-1), 'ended');
    mock.timers.tick(10 * MAX_MS);
    assert.equal(sockets.length, 1);
  });

  test('1008 on an open socket asks /api/me: session over → ended; still signed in (e.g. a password change elsewhere) → reconnect', async () => {
    const over = setup({ session: 'ended' });
    over.socket.start();
    over.last().open();
    over.last().drop(CLOSE.policyViolation, 'session ended');
    await settle();
    assert.deepEqual(over.closed, [{ code: CLOSE.policyViolation, reason: 'session ended' }]);
    assert.equal(over.session.asked, 1);
    assert.equal(over.seen.at(-1), 'ended');
    mock.timers.tick(10 * MAX_MS);
    assert.equal(over.sockets.length, 1);

    const valid = setup({ session: 'valid' });
    valid.socket.start();
    valid.last().open();
    valid.last().drop(CLOSE.policyViolation, 'rate limit exceeded');
    await settle();
    // The close reason reaches the screen, which turns "rate limit exceeded" into the flood notice.
    assert.deepEqual(valid.closed, [{ code: CLOSE.policyViolation, reason: 'rate limit exceeded' }]);
    assert.ok(!valid.seen.includes('ended'));
    assertNextAttemptAfter(valid.sockets, ceiling(0) / 2);
  });

  test(`${MAX_REFUSED} refused handshakes in a row while signed in (the per-user connection cap): stop, say "refused", poll no more`, async () => {
    const { socket, sockets, last, session, seen } = setup({ session: 'valid' });
    socket.start();
    for (let refusal = 1; refusal < MAX_REFUSED; refusal++) {
      last().drop();
      await settle();
      assert.ok(!seen.includes('refused'), `still retrying after ${refusal}`);
      assertNextAttemptAfter(sockets, ceiling(refusal - 1) / 2);
    }
    last().drop();
    await settle();
    assert.equal(seen.filter((event) => event === 'refused').length, 1);
    assert.equal(socket.state, 'offline');
    assert.equal(session.asked, MAX_REFUSED);
    mock.timers.tick(60 * 60_000);
    assert.equal(sockets.length, MAX_REFUSED, 'no attempt and no /api/me poll for an hour');
    assert.equal(session.asked, MAX_REFUSED);
    // The 'online' event does not restart it either: only the user's "Try again" does.
    socket.reconnectNow();
    assert.equal(sockets.length, MAX_REFUSED + 1);
    last().drop();
    await settle();
    assertNextAttemptAfter(sockets, ceiling(0) / 2, '(short waits again after "Try again")');
  });

  test('only handshakes refused before open count: 1008 closes of open sockets while signed in never give up', async () => {
    const { socket, last, seen, session } = setup({ session: 'valid' });
    socket.start();
    for (let close = 0; close < 2 * MAX_REFUSED; close++) {
      last().open();
      last().drop(CLOSE.policyViolation, 'rate limit exceeded');
      await settle();
      mock.timers.tick(MAX_MS);
    }
    assert.equal(session.asked, 2 * MAX_REFUSED);
    assert.ok(!seen.includes('refused'));
    assert.equal(socket.state, 'reconnecting');
  });

  test('the refusal count is "in a row": an open connection in between starts it again', async () => {
    const { socket, last, seen } = setup({ session: 'valid' });
    const refuseAndWait = async () => {
      last().drop();
      await settle();
      mock.timers.tick(MAX_MS); // longer than any wait
    };
    socket.start();
    for (let refusal = 1; refusal < MAX_REFUSED; refusal++) await refuseAndWait();
    last().open();
    last().drop(CLOSE.goingAway);
    await settle();
    mock.timers.tick(MAX_MS);
    for (let refusal = 1; refusal < MAX_REFUSED; refusal++) await refuseAndWait();
    assert.ok(!seen.includes('refused'), `${MAX_REFUSED - 1} + ${MAX_REFUSED - 1} refusals with an open in between`);
    await refuseAndWait();
    assert.ok(seen.includes('refused'), `${MAX_REFUSED} in a row`);
  });

  test('stop() while /api/me is being asked: no reconnect follows the answer', async () => {
    const { socket, sockets, last } = setup({ session: 'valid' });
    socket.start();
    last().drop();
    socket.stop(); // before the answer arrives
    await settle();
    mock.timers.tick(10 * MAX_MS);
    assert.equal(sockets.length, 1);
    assert.equal(socket.state, 'offline');
  });
});

describe('ChatSocket: close codes', () => {
  for (const [name, code] of [
    ['going away (1001: server shutting down)', CLOSE.goingAway],
    ['try again later (1013: store or bus unreachable)', CLOSE.tryAgainLater],
    ['abnormal (1006: network)', 1006],
  ] as const) {
    test(`${name} on an open socket: reported with its code, reconnect with backoff, no /api/me`, async () => {
      const { socket, sockets, last, session, closed, seen } = setup();
      socket.start();
      last().open();
      last().drop(code, 'bye');
      await settle();
      assert.deepEqual(closed, [{ code, reason: 'bye' }]);
      assert.equal(session.asked, 0, 'a close the server explains is not a session question');
      assert.equal(socket.state, 'reconnecting');
      assertNextAttemptAfter(sockets, ceiling(0) / 2);
      assert.ok(!seen.includes('ended') && !seen.includes('refused'));
    });
  }

  for (const [name, code] of [
    ['too big (1009)', CLOSE.tooBig],
    ['unsupported data (1003)', CLOSE.unsupportedData],
  ] as const) {
    test(`${name}: logged as a protocol error, then reconnect`, async () => {
      const { socket, sockets, last, session } = setup();
      socket.start();
      last().open();
      last().drop(code);
      await settle();
      assert.ok(warnings.mock.calls.some((call) => String(call.arguments[0]).includes(`protocol error (${code})`)));
      assert.equal(session.asked, 0);
      assertNextAttemptAfter(sockets, ceiling(0) / 2);
    });
  }

  test("stop() closes with 1000 and nothing follows, not even the old socket's late close event", async () => {
    const { socket, sockets, last, closed, seen } = setup();
    socket.start();
    last().open();
    const old = last();
    socket.stop();
    assert.equal(old.closedWith, CLOSE.normal);
    old.drop(CLOSE.normal); // handlers were detached: nothing happens
    await settle();
    mock.timers.tick(10 * MAX_MS);
    assert.equal(sockets.length, 1);
    assert.deepEqual(closed, []);
    assert.equal(seen.at(-1), 'state:offline');
  });
});

describe('ChatSocket: online and offline', () => {
  test('offline when a retry is due: wait without a timer; the online event reconnects at once', async () => {
    const { socket, sockets, last, events, net } = setup({ session: 'unknown' });
    socket.start();
    last().open();
    net.onLine = false;
    last().drop();
    await settle();
    assert.equal(socket.state, 'offline');
    mock.timers.tick(10 * MAX_MS);
    assert.equal(sockets.length, 1, 'no attempts while the browser is offline');
    net.onLine = true;
    events.dispatchEvent(new Event('online'));
    assert.equal(sockets.length, 2);
    assert.equal(socket.state, 'reconnecting');
  });

  test('the offline event cancels a pending retry; an open socket ignores it', async () => {
    const { socket, sockets, last, events } = setup({ session: 'unknown' });
    socket.start();
    last().open();
    events.dispatchEvent(new Event('offline'));
    assert.equal(socket.state, 'connected', 'an open socket may survive a blip');
    last().drop();
    await settle();
    events.dispatchEvent(new Event('offline'));
    assert.equal(socket.state, 'offline');
    mock.timers.tick(10 * MAX_MS);
    assert.equal(sockets.length, 1);
  });
});

describe('ChatSocket: frames', () => {
  test('a valid frame is delivered parsed; a malformed one is dropped with a warning, without throwing or closing', () => {
    const { socket, last, frames } = setup();
    socket.start();
    last().open();
    const rooms = { type: 'rooms', user: 'alice', rooms: [{ name: 'lobby', private: false, owner: null }] };
    last().receive(JSON.stringify(rooms));
    assert.deepEqual(frames, [rooms]);
    for (const bad of ['not json', '{"type":"message"}', JSON.stringify({ ...rooms, extra: 1 }), '{"type":"nope"}', new ArrayBuffer(8), '']) {
      assert.doesNotThrow(() => last().receive(bad));
    }
    assert.equal(frames.length, 1, 'none of the malformed frames reached a listener');
    assert.equal(warnings.mock.callCount(), 6);
    assert.equal(socket.state, 'connected');
    assert.equal(last().closedWith, undefined);
  });

  test('a listener that throws does not stop the others or the socket', () => {
    const { socket, last, frames } = setup();
    const errors = mock.method(console, 'error', () => {});
    socket.on('frame', () => {
      throw new Error('a broken listener');
    });
    socket.start();
    last().open();
    last().receive(JSON.stringify({ type: 'rooms', user: 'alice', rooms: [] }));
    socket.on('frame', (frame) => frames.push(frame));
    last().receive(JSON.stringify({ type: 'rooms', user: 'alice', rooms: [] }));
    assert.equal(frames.length, 3, 'the first listener got both, the one added later the second');
    assert.equal(errors.mock.callCount(), 2);
  });

  test('send() is false and queues nothing while not connected; on an open socket it sends the JSON', async () => {
    const { socket, last } = setup({ session: 'unknown' });
    const frame = { type: 'join', room: 'lobby' } as const;
    assert.equal(socket.send(frame), false, 'before start');
    socket.start();
    assert.equal(socket.send(frame), false, 'while connecting');
    last().open();
    assert.equal(socket.send(frame), true);
    assert.deepEqual(last().sent, [JSON.stringify(frame)]);
    last().drop();
    await settle();
    assert.equal(socket.send(frame), false, 'while waiting to reconnect');
    mock.timers.tick(MAX_MS);
    last().open();
    assert.deepEqual(last().sent, [], 'nothing replayed on its own after a reconnect');
  });

  test('with the chat controller: a message in flight when the socket drops is failed, and Retry sends it on the new socket with the same clientId', async () => {
    const { socket, last } = setup({ session: 'unknown' });
    const view = new Proxy({} as ChatView, { get: (_, key) => (key === 'describeEvent' ? () => '' : () => {}) });
    const chat = new ChatController('alice', view, {
      send: (frame) => socket.send(frame),
      get connected() {
        return socket.state === 'connected';
      },
    });
    // Wired as client/ui/chat-screen.ts wires them.
    socket.on('state', (state) => chat.connectionState(state));
    socket.on('open', () => chat.connected());
    socket.on('frame', (frame) => chat.frame(frame));
    socket.start();
    last().open();
    last().receive(JSON.stringify({ type: 'rooms', user: 'alice', rooms: [{ name: 'lobby', private: false, owner: null }] }));
    assert.equal(chat.sendText('lobby', 'hello', 'c-1'), true);
    const first = last();
    assert.deepEqual(first.sent.map((data) => JSON.parse(data)).at(-1), { type: 'send', room: 'lobby', text: 'hello', clientId: 'c-1' });
    first.drop();
    await settle();
    assert.equal(chat.state.getPending('c-1')?.status, 'failed');
    chat.retry('c-1'); // offline: refused with a notice, still failed
    assert.equal(chat.state.getPending('c-1')?.status, 'failed');
    mock.timers.tick(MAX_MS);
    const second = last();
    assert.notEqual(second, first);
    second.open();
    chat.retry('c-1');
    const sends = second.sent.map((data) => JSON.parse(data)).filter((frame) => frame.type === 'send');
    assert.deepEqual(sends, [{ type: 'send', room: 'lobby', text: 'hello', clientId: 'c-1' }], 'the same clientId, so the server stores it once');
  });
});
