// Tests for server/http/session.ts, server/http/auth-routes.ts and the session store:
// the cookie's attributes, no cookie before login, a fresh id at login (fixation),
// logout, idle and absolute timeouts enforced by the server, hashed ids at rest, the
// secret file's mode, and a password change ending the user's other sessions.
// Run: npx node --test test/session.test.ts
import { SESSION_COOKIE } from '../server/http/session.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import cookieSignature from 'cookie-signature';
import {
  PASSWORD,
  connect,
  joined,
  login,
  register,
  request,
  sessionCookie,
  signUp,
  sleep,
  startServer,
  type Reply,
  type TestServer,
} from './helpers/server.ts';

const COOKIE_NAME = SESSION_COOKIE;

function setCookies(reply: Reply): string[] {
  const value = reply.headers['set-cookie'];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** `name=value; Attr; Attr=v` → name, value and lowercase attribute names → values. */
function parseSetCookie(line: string): { name: string; value: string; attributes: Map<string, string> } {
  const [pair = '', ...parts] = line.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const part of parts) {
    const at = part.indexOf('=');
    attributes.set((at === -1 ? part : part.slice(0, at)).toLowerCase(), at === -1 ? '' : part.slice(at + 1));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

/** The raw session id inside a `__Host-parley.sid=s%3A<id>.<sig>` cookie pair. */
function sessionId(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  assert.ok(value.startsWith('s:'), `signed cookie value: ${value}`);
  return value.slice(2, value.lastIndexOf('.'));
}

async function me(server: TestServer, cookie: string): Promise<number> {
  return (await request(server, 'GET', '/api/me', { cookie })).status;
}

// ASVS 3.3.1–3.3.4: __Host- prefix, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain; a browser-session cookie.
describe('session cookie attributes', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    await register(server, 'cookiealice');
  });
  after(() => server.close());

  test('login sets exactly one __Host-parley.sid cookie: Secure, HttpOnly, SameSite=Strict, Path=/, no Domain, no Expires/Max-Age', async () => {
    const reply = await request(server, 'POST', '/api/login', { body: { username: 'cookiealice', password: PASSWORD } });
    assert.equal(reply.status, 200);
    // The other Set-Cookie is the long-lived device cookie (test/login-lockout.test.ts checks it).
    const lines = setCookies(reply).filter((line) => !line.startsWith('__Host-parley.device='));
    assert.equal(lines.length, 1, `one session Set-Cookie: ${JSON.stringify(setCookies(reply))}`);
    const cookie = parseSetCookie(lines[0]!);
    assert.equal(cookie.name, COOKIE_NAME);
    assert.ok(cookie.name.startsWith('__Host-'));
    assert.match(cookie.value, /^s%3A[A-Za-z0-9_-]{20,}\.[A-Za-z0-9%+/_-]+$/, 'a signed, unguessable id');
    assert.deepEqual([...cookie.attributes.keys()].sort(), ['httponly', 'path', 'samesite', 'secure']);
    assert.equal(cookie.attributes.get('path'), '/');
    assert.equal(cookie.attributes.get('samesite'), 'Strict');
    assert.ok(!cookie.attributes.has('domain'), 'no Domain (the __Host- prefix forbids it)');
    assert.ok(!cookie.attributes.has('expires') && !cookie.attributes.has('max-age'), 'a browser-session cookie');
  });

  test('an anonymous GET /api/me gets 401 and no Set-Cookie (nothing to fixate before login)', async () => {
    const reply = await request(server, 'GET', '/api/me');
    assert.equal(reply.status, 401);
    assert.deepEqual(setCookies(reply), []);
  });

  test('a failed login sets no cookie', async () => {
    const reply = await request(server, 'POST', '/api/login', { body: { username: 'cookiealice', password: 'wrong password entirely' } });
    assert.equal(reply.status, 401);
    assert.deepEqual(setCookies(reply), []);
  });

  test('a GET /api/me with an unknown (forged) cookie gets 401 and no new cookie', async () => {
    const forged = `${COOKIE_NAME}=${encodeURIComponent('s:' + cookieSignature.sign('attacker-id', 'x'.repeat(32)))}`;
    const reply = await request(server, 'GET', '/api/me', { cookie: forged });
    assert.equal(reply.status, 401);
    assert.deepEqual(setCookies(reply), []);
  });
});

// ASVS 7.2.4 / OWASP Session Management: a new session id at login defeats session fixation.
describe('session fixation', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    await register(server, 'fixbob');
  });
  after(() => server.close());

  test('logging in while presenting the cookie of a previous login yields a different id, and the old id stops working', async () => {
    const old = await login(server, 'fixbob');
    assert.equal(await me(server, old), 200);
    const reply = await request(server, 'POST', '/api/login', { cookie: old, body: { username: 'fixbob', password: PASSWORD } });
    assert.equal(reply.status, 200);
    const fresh = sessionCookie(reply);
    assert.notEqual(sessionId(fresh), sessionId(old));
    assert.equal(await me(server, old), 401, 'the pre-login id must be dead');
    assert.equal(await me(server, fresh), 200);
  });

  test('an attacker-chosen (signed with a guessed secret) cookie presented at login is not adopted', async () => {
    const attackerId = 'attacker-chosen-session-id-0001';
    const planted = `${COOKIE_NAME}=${encodeURIComponent('s:' + cookieSignature.sign(attackerId, 'guessed-secret-guessed-secret-00'))}`;
    const reply = await request(server, 'POST', '/api/login', { cookie: planted, body: { username: 'fixbob', password: PASSWORD } });
    assert.equal(reply.status, 200);
    const fresh = sessionCookie(reply);
    assert.notEqual(sessionId(fresh), attackerId);
    assert.equal(await me(server, planted), 401, 'the planted cookie does not ride along into the session');
    assert.equal(await me(server, fresh), 200);
  });

  test('an attacker-chosen unsigned id presented at login is not adopted', async () => {
    const attackerId = 'attacker-chosen-session-id-0002';
    const planted = `${COOKIE_NAME}=${attackerId}`;
    const reply = await request(server, 'POST', '/api/login', { cookie: planted, body: { username: 'fixbob', password: PASSWORD } });
    assert.equal(reply.status, 200);
    const fresh = sessionCookie(reply);
    assert.notEqual(sessionId(fresh), attackerId);
    assert.equal(await me(server, planted), 401);
  });
});

// ASVS 7.4.1: logout invalidates the session on the server and clears the client.
describe('logout', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('logout answers 204 with Clear-Site-Data and a cookie-clearing Set-Cookie; the old cookie then gets 401', async () => {
    const cookie = await signUp(server, 'logoutcarol');
    assert.equal(await me(server, cookie), 200);
    const reply = await request(server, 'POST', '/api/logout', { cookie, body: {} });
    assert.equal(reply.status, 204);
    assert.doesNotMatch(String(reply.headers['clear-site-data'] ?? ''), /"cookies"/, 'cookies are cleared by name, not for the whole site');
    const clearing = setCookies(reply)
      .map(parseSetCookie)
      .find((c) => c.name === COOKIE_NAME);
    assert.ok(clearing, `a Set-Cookie for ${COOKIE_NAME}: ${JSON.stringify(setCookies(reply))}`);
    assert.equal(clearing.value, '');
    const expires = clearing.attributes.get('expires');
    assert.ok(expires !== undefined && Date.parse(expires) < Date.now(), `expires in the past: ${expires}`);
    // A browser only accepts a __Host- cookie (even a clearing one) with Secure and Path=/.
    assert.ok(clearing.attributes.has('secure'));
    assert.equal(clearing.attributes.get('path'), '/');
    assert.equal(await me(server, cookie), 401, 'the session is gone on the server, not only in the browser');
  });

  test('replaying the logged-out cookie on a state-changing route is refused too', async () => {
    const cookie = await signUp(server, 'logoutdan');
    assert.equal((await request(server, 'POST', '/api/logout', { cookie, body: {} })).status, 204);
    const reply = await request(server, 'POST', '/api/password', {
      cookie,
      body: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase here' },
    });
    assert.equal(reply.status, 401);
  });
});

// ASVS 7.3.1: an idle timeout enforced by the server; activity moves it.
describe('idle timeout (SESSION_IDLE_SECONDS=1)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_IDLE_SECONDS: '1' } });
  });
  after(() => server.close());

  test('activity every 0.4 s keeps the session alive for 2 s; then 1.3 s idle ends it (401)', async () => {
    const cookie = await signUp(server, 'idleerin');
    // Chat activity: frames on the socket (a state-changing HTTP request would count too).
    const socket = await joined(server, cookie);
    const start = Date.now();
    let checks = 0;
    while (Date.now() - start < 2000) {
      await sleep(400);
      socket.send({ type: 'join', room: 'lobby' });
      await socket.next('history');
      assert.equal(await me(server, cookie), 200, `alive at ${Date.now() - start} ms`);
      checks += 1;
    }
    socket.ws.close();
    assert.ok(checks >= 4);
    assert.ok(Date.now() - start > 1000, 'the session outlived one idle period only thanks to activity');
    await sleep(1300);
    assert.equal(await me(server, cookie), 401);
    // And it stays dead: the expired request destroyed it, it did not restart the clock.
    assert.equal(await me(server, cookie), 401);
  });

  test('GET /api/me is a probe, not activity: polling it every 0.3 s does not keep the session alive', async () => {
    const cookie = await signUp(server, 'idleprobe');
    const start = Date.now();
    let last = 200;
    while (Date.now() - start < 2500 && last === 200) {
      await sleep(300);
      last = await me(server, cookie);
    }
    assert.equal(last, 401, 'the idle timeout (1 s) ended the session although the tab kept asking');
    assert.ok(Date.now() - start < 2000, `ended within about one idle period (${Date.now() - start} ms)`);
  });
});

// ASVS 7.3.2: an absolute lifetime that activity cannot extend.
describe('absolute timeout (SESSION_ABSOLUTE_SECONDS=2)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_ABSOLUTE_SECONDS: '2', SESSION_IDLE_SECONDS: '3600' } });
    await register(server, 'absfrank');
  });
  after(() => server.close());

  test('even with a request every 0.3 s, the session ends 2 s after login (401)', async () => {
    const loginSent = Date.now();
    const cookie = await login(server, 'absfrank');
    const loggedIn = Date.now();
    const results: Array<{ sent: number; status: number }> = [];
    while (Date.now() - loggedIn < 2600) {
      const sent = Date.now();
      results.push({ sent, status: await me(server, cookie) });
      await sleep(300);
    }
    // The session was created at some instant in [loginSent, loggedIn]; it ends 2 s later.
    const early = results.filter((r) => r.sent < loginSent + 1700);
    const late = results.filter((r) => r.sent > loggedIn + 2100);
    assert.ok(early.length >= 4 && late.length >= 1, JSON.stringify(results));
    for (const r of early) assert.equal(r.status, 200, `alive at ${r.sent - loggedIn} ms`);
    for (const r of late) assert.equal(r.status, 401, `dead at ${r.sent - loggedIn} ms`);
  });
});

// ASVS 7.2.x / 14.2: session tokens are secrets at rest too — only their hashes are stored; the secret file is private.
describe('session storage at rest', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('the SQLite session store holds a row for a live session but never the raw session id', async () => {
    const cookie = await signUp(server, 'storegina');
    const id = sessionId(cookie);
    assert.equal(await me(server, cookie), 200);
    const file = path.join(server.dataDir, 'parley.sqlite');
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const rows = db.prepare('SELECT * FROM sessions').all() as Array<Record<string, unknown>>;
      const mine = rows.filter((row) => row['user'] === 'storegina');
      assert.equal(mine.length, 1, `one session row for the user: ${JSON.stringify(rows)}`);
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          assert.ok(!String(value).includes(id), `column ${column} holds the raw session id`);
        }
      }
      // What is stored is a one-way hash of the id, not an encoding of it.
      assert.equal(mine[0]!['sid_hash'], crypto.createHash('sha256').update(id).digest('base64url'));
    } finally {
      db.close();
    }
    // Nor anywhere in the files on disk (database, WAL).
    for (const name of fs.readdirSync(server.dataDir).filter((n) => n.startsWith('parley.sqlite'))) {
      const bytes = fs.readFileSync(path.join(server.dataDir, name));
      assert.equal(bytes.includes(Buffer.from(id)), false, `${name} contains the raw session id`);
    }
  });

  test('the generated session secret file DATA_DIR/session-secret has mode 0600', () => {
    const stat = fs.statSync(path.join(server.dataDir, 'session-secret'));
    assert.equal(stat.mode & 0o777, 0o600);
    assert.ok(fs.readFileSync(path.join(server.dataDir, 'session-secret'), 'utf8').trim().length >= 64);
  });
});

// ASVS 7.4.3: a password change ends the user's other sessions, keeps the one that made the change.
describe('password change', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('POST /api/password ends the other sessions of the user (401) and keeps the current one (200)', async () => {
    const current = await signUp(server, 'pwhenry');
    const other = await login(server, 'pwhenry');
    const bystander = await signUp(server, 'pwiris');
    assert.equal(await me(server, other), 200);
    const reply = await request(server, 'POST', '/api/password', {
      cookie: current,
      body: { currentPassword: PASSWORD, newPassword: 'a completely different passphrase' },
    });
    assert.equal(reply.status, 204, reply.text);
    assert.equal(await me(server, other), 401, 'the other session must end');
    // The browser that changed it stays signed in, under a fresh session id (the old one is gone).
    const renewed = sessionCookie(reply);
    assert.notEqual(renewed, current);
    assert.equal(await me(server, renewed), 200, 'the session that changed the password stays');
    assert.equal(await me(server, current), 401, 'under a new id: the old one is no longer a session');
    assert.equal(await me(server, bystander), 200, "another user's session is untouched");
  });

  test('a wrong current password changes nothing and ends no session', async () => {
    const current = await signUp(server, 'pwjack');
    const other = await login(server, 'pwjack');
    const reply = await request(server, 'POST', '/api/password', {
      cookie: current,
      body: { currentPassword: 'not the current password', newPassword: 'a completely different passphrase' },
    });
    assert.equal(reply.status, 401);
    assert.equal(await me(server, other), 200);
  });
});

// ASVS 7.4.1/7.4.3: an ended session stays ended. A request already in flight with a stolen
// cookie read the session before it ended; recording its activity must not write it back.
describe('an ended session cannot be revived by requests in flight', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('activity recorded for a session read before it ended does not write it back (store.extend is update-only)', async () => {
    // The race, made deterministic: a request reads the session, the victim changes the
    // password (ending every other session), then the request records its activity.
    await register(server, 'revived');
    const stolen = await login(server, 'revived');
    const sid = decodeURIComponent(stolen.split('=')[1]!).slice(2).split('.')[0]!;
    const sessions = server.parley.store.sessions;
    const read = await new Promise<any>((resolve) => sessions.get(sid, (_e, data) => resolve(data)));
    assert.equal(read?.user, 'revived');
    assert.equal(await sessions.destroyAllOf('revived'), 1);
    await sessions.extend(sid, { ...read, lastSeenAt: Date.now() });
    assert.equal((await request(server, 'GET', '/api/me', { cookie: stolen })).status, 401, 'the ended session stays ended');
    // The same write through an upsert (what express-session's save does) would revive it:
    await new Promise<void>((resolve) => sessions.set(sid, { ...read, lastSeenAt: Date.now() }, () => resolve()));
    assert.equal((await request(server, 'GET', '/api/me', { cookie: stolen })).status, 200, 'an upsert is what the race exploited');
  });

  test('logging in again over an existing session ends that session and its sockets', async () => {
    await register(server, 'relogin');
    const first = await login(server, 'relogin');
    const attempt = await connect(server, { cookie: first });
    assert.ok('client' in attempt, JSON.stringify(attempt));
    const reply = await request(server, 'POST', '/api/login', { cookie: first, body: { username: 'relogin', password: PASSWORD } });
    assert.equal(reply.status, 200);
    const closed = await Promise.race([attempt.client.closed, sleep(2000).then(() => undefined)]);
    assert.equal(closed?.code, 1008, "the old session's socket is closed with 1008");
    assert.equal((await request(server, 'GET', '/api/me', { cookie: first })).status, 401);
  });
});
