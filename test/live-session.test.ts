// Live sockets follow their session (server/ws/server.ts revocation subscription,
// server/ws/connection.ts deadline timer): logout, password change and expiry close the
// sockets with 1008; a frame on an expired session is refused; socket activity keeps the
// session's idle deadline moving. Run: npx node --test test/live-session.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, joined, login, open, register, request, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';

const POLICY_VIOLATION = 1008;

/** Resolves with the close code and how long after `since` the socket closed; fails after `limitMs`. */
async function closedWithin(client: Client, since: number, limitMs: number): Promise<{ code: number; elapsed: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open ${limitMs} ms later`)), limitMs);
  });
  try {
    const { code } = await Promise.race([client.closed, timeout]);
    return { code, elapsed: Date.now() - since };
  } finally {
    clearTimeout(timer);
  }
}

function hasSessionExpiredFrame(client: Client): boolean {
  return client.frames.some((f) => f.type === 'error' && f.code === 'session_expired');
}

/** Sends a lobby message and waits for the server's ack (it is acknowledged only once stored). */
async function say(client: Client, text: string, clientId: string): Promise<void> {
  client.send({ type: 'send', room: 'lobby', text, clientId });
  const ack = await client.next('ack');
  assert.equal(ack.clientId, clientId);
}

async function closeClient(client: Client): Promise<void> {
  client.ws.close();
  await client.closed;
}

// ASVS 7.4.1: logout ends the session everywhere it is used, its live sockets included — and only that session.
describe('logout closes the sockets of that session', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test("logout closes every socket of the session with 1008 within a second; the same user's other session keeps its socket", async () => {
    const sessionA = await signUp(server, 'livealice');
    const sessionB = await login(server, 'livealice');
    const a1 = await joined(server, sessionA);
    const a2 = await open(server, sessionA);
    const b = await joined(server, sessionB);

    const sent = Date.now();
    const reply = await request(server, 'POST', '/api/logout', { cookie: sessionA, body: {} });
    assert.equal(reply.status, 204);
    for (const client of [a1, a2]) {
      const { code, elapsed } = await closedWithin(client, sent, 1000);
      assert.equal(code, POLICY_VIOLATION);
      assert.ok(elapsed < 1000, `closed after ${elapsed} ms`);
      assert.ok(hasSessionExpiredFrame(client), 'the client is told why before the close');
    }

    // The other session's socket is still open and still works.
    await sleep(200);
    assert.equal(b.ws.readyState, b.ws.OPEN);
    assert.ok(!hasSessionExpiredFrame(b));
    await say(b, 'still here after the other tab logged out', 'b-1');
    assert.equal((await request(server, 'GET', '/api/me', { cookie: sessionB })).status, 200);
    await closeClient(b);
  });
});

// ASVS 7.4.3: a password change ends the user's live sockets, in every session.
describe('password change closes every socket of the user', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test("password change closes every socket of the user with 1008 within a second; another user's socket stays", async () => {
    const current = await signUp(server, 'livebob');
    const other = await login(server, 'livebob');
    const sockets = [await joined(server, current), await open(server, current), await joined(server, other)];
    const bystander = await joined(server, await signUp(server, 'livecarol'));

    const sent = Date.now();
    const reply = await request(server, 'POST', '/api/password', {
      cookie: current,
      body: { currentPassword: PASSWORD, newPassword: 'an entirely new passphrase' },
    });
    assert.equal(reply.status, 204, reply.text);
    for (const client of sockets) {
      const { code, elapsed } = await closedWithin(client, sent, 1000);
      assert.equal(code, POLICY_VIOLATION);
      assert.ok(elapsed < 1000, `closed after ${elapsed} ms`);
      assert.ok(hasSessionExpiredFrame(client));
    }
    await sleep(100);
    assert.equal(bystander.ws.readyState, bystander.ws.OPEN);
    await say(bystander, 'unaffected', 'c-1');
    await closeClient(bystander);
  });
});

// ASVS 7.3.1: the idle timeout reaches live sockets; a frame on an expired session is refused, not stored.
describe('session expiry closes live sockets (SESSION_IDLE_SECONDS=1)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_IDLE_SECONDS: '1' } });
    await register(server, 'expdave');
    await register(server, 'expfrank');
  });
  after(() => server.close());

  test('an idle socket is closed with 1008 between 0.9 s and 2.5 s after login', async () => {
    const cookie = await login(server, 'expdave');
    const loggedIn = Date.now();
    const client = await open(server, cookie);
    const { code, elapsed } = await closedWithin(client, loggedIn, 3000);
    assert.equal(code, POLICY_VIOLATION);
    assert.ok(elapsed >= 900 && elapsed <= 2500, `closed ${elapsed} ms after login`);
    assert.ok(hasSessionExpiredFrame(client));
  });

  test('a message sent over a still-open socket after its session expired is refused and never reaches the lobby history', async () => {
    const loginSent = Date.now();
    const cookie = await login(server, 'expdave');
    const loggedIn = Date.now();
    // Join without lingering: no frame after the first 1/4 idle period, so nothing moves the deadline.
    const client = await joined(server, cookie);
    const secret = `sent after expiry ${loggedIn}`;

    // Sleep until just before the deadline, then hold the whole process (server included) until
    // just past it, and send. The server has had no chance to run its expiry timer, so the socket
    // is still open when the frame goes out on it.
    await sleep(Math.max(0, loginSent + 1000 - 40 - Date.now()));
    const until = loggedIn + 1000 + 40;
    while (Date.now() < until) {
      // busy-wait on purpose: blocks the server's timers too
    }
    assert.equal(client.ws.readyState, client.ws.OPEN, 'the frame is sent on an open socket');
    client.send({ type: 'send', room: 'lobby', text: secret, clientId: 'late-1' });

    const { code } = await closedWithin(client, Date.now(), 2000);
    assert.equal(code, POLICY_VIOLATION);
    assert.ok(hasSessionExpiredFrame(client), 'an error frame session_expired');
    assert.ok(!client.frames.some((f) => f.type === 'ack'), 'the message was not acknowledged');

    // Another user reads the lobby: their own message is there (the check can see messages), the late one is not.
    const reader = await joined(server, await login(server, 'expfrank'));
    await say(reader, 'control message from another user', 'f-1');
    reader.send({ type: 'join', room: 'lobby' });
    const history = await reader.next('history');
    const texts = history.messages.map((m) => m.html);
    assert.ok(
      texts.some((t) => t.includes('control message from another user')),
      JSON.stringify(texts),
    );
    assert.ok(!texts.some((t) => t.includes(secret)), `the late message was stored: ${JSON.stringify(texts)}`);
    assert.ok(!reader.frames.some((f) => f.type === 'message' && f.html.includes(secret)), 'nor was it broadcast');
    await closeClient(reader);
  });
});

// ASVS 7.3.1: WebSocket activity is activity — it moves the idle deadline (touches at most every idle/4).
describe('socket activity keeps the session alive (SESSION_IDLE_SECONDS=2)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_IDLE_SECONDS: '2' } });
  });
  after(() => server.close());

  test('a message every 0.3 s for 3 s keeps the socket open past the idle timeout; once idle, it closes with 1008', async () => {
    const cookie = await signUp(server, 'activeerin');
    const client = await joined(server, cookie);
    const start = Date.now();
    let n = 0;
    while (Date.now() - start < 3000) {
      await sleep(300);
      n += 1;
      await say(client, `keepalive ${n}`, `k-${n}`);
      assert.equal(client.ws.readyState, client.ws.OPEN, `open at ${Date.now() - start} ms`);
    }
    assert.ok(Date.now() - start > 2000 + 500, 'outlived the idle timeout by more than one touch interval');
    assert.ok(!hasSessionExpiredFrame(client));
    // The socket's activity moved the session itself, not just the socket: the cookie still works.
    const lastActivity = Date.now();
    assert.equal((await request(server, 'GET', '/api/me', { cookie })).status, 200);
    // Now idle: the deadline is real, the socket closes about 2 s after the last activity.
    const { code, elapsed } = await closedWithin(client, lastActivity, 4000);
    assert.equal(code, POLICY_VIOLATION);
    assert.ok(elapsed >= 1500 && elapsed <= 3500, `closed ${elapsed} ms after the last activity`);
  });
});
