// Tests for server/ws/upgrade-gate.ts: every WebSocket handshake is checked (path, exact
// Origin, session, per-user cap, per-address failure throttle) before a 101 is ever sent.
// Run: npx node --test test/upgrade-gate.test.ts
// Refusals are observed over a raw TLS socket, so the test sees exactly what the server
// wrote (status line, JSON body) and that it then closed the connection.
import { SESSION_COOKIE } from '../server/http/session.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import tls from 'node:tls';
import cookieSignature from 'cookie-signature';
import { connect, login, open, refusedStatus, request, signUp, sleep, startServer, type Attempt, type Client, type TestServer } from './helpers/server.ts';

type RawReply = {
  /** HTTP status of the reply (0 when the server sent nothing parseable). */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection after its reply (false: still open after the wait). */
  closed: boolean;
};

type RawOptions = {
  path?: string;
  origin?: string | null;
  cookie?: string;
  /** Host header value(s), each sent as its own line (default: the allowed origin's host). */
  host?: string | string[];
  /** Further header lines, as written. */
  extra?: string[];
};

/**
 * A WebSocket handshake written by hand over TLS. `origin` is sent verbatim (null: no Origin
 * header at all; default: the allowed origin). Resolves once the server closes the socket, or
 * after `waitMs` with `closed: false` (which is what a successful 101 looks like).
 */
function rawUpgrade(server: TestServer, options: RawOptions = {}, waitMs = 3000): Promise<RawReply> {
  const origin = options.origin === undefined ? server.origin : options.origin;
  const lines = [
    `GET ${options.path ?? '/ws'} HTTP/1.1`,
    ...[options.host ?? `localhost:${server.port}`].flat().map((host) => `Host: ${host}`),
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...(origin !== null ? [`Origin: ${origin}`] : []),
    ...(options.cookie ? [`Cookie: ${options.cookie}`] : []),
    ...(options.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' });
    let raw = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const split = raw.indexOf('\r\n\r\n');
      const head = split === -1 ? raw : raw.slice(0, split);
      const body = split === -1 ? '' : raw.slice(split + 4);
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers, body, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => socket.write(lines.join('\r\n') + '\r\n\r\n'));
    socket.on('data', (chunk: string) => (raw += chunk));
    socket.on('close', () => finish(true));
    socket.on('error', (error) => {
      if (raw) finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The shape of every refusal: the expected plain HTTP status (never 101), a JSON body of exactly
 * {error, message}, the connection closed by the server, and an audit line naming the reason.
 */
function assertRefused(server: TestServer, logsBefore: number, reply: RawReply, status: number, error: string, reason: string): void {
  assert.notEqual(reply.status, 101, 'the handshake must never be accepted');
  assert.equal(reply.status, status, `expected ${status}, got ${reply.status}: ${reply.body}`);
  assert.equal(reply.closed, true, 'the server must close the connection after refusing');
  assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
  const body = parseJson(reply.body) as Record<string, unknown> | undefined;
  assert.ok(body && typeof body === 'object', `body is JSON: ${reply.body}`);
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
  assert.equal(body['error'], error);
  assert.equal(typeof body['message'], 'string');
  const lines = server.logs.slice(logsBefore).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(
    lines.some((line) => line['event'] === 'upgrade_refused' && line['reason'] === reason && line['status'] === status),
    `an upgrade_refused audit line with reason "${reason}"; got ${JSON.stringify(lines)}`,
  );
}

async function refused(server: TestServer, options: RawOptions, status: number, error: string, reason: string): Promise<void> {
  const logsBefore = server.logs.length;
  const reply = await rawUpgrade(server, options);
  assertRefused(server, logsBefore, reply, status, error, reason);
}

function opened(attempt: Attempt): Client {
  if (!('client' in attempt)) assert.fail(`expected the upgrade to open, got ${JSON.stringify(attempt)}`);
  return attempt.client;
}

async function closeClient(client: Client): Promise<void> {
  client.ws.close();
  await client.closed;
}

/** Waits until the server has let go of a user's closed sockets (the registry is the cap's count). */
async function untilCount(server: TestServer, user: string, count: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (server.parley.connectionsOf(user) > count) {
    if (Date.now() > deadline) assert.fail(`server still counts ${server.parley.connectionsOf(user)} connections for ${user}`);
    await sleep(10);
  }
}

/** A cookie whose signature was made with a secret the server does not have. */
function forgedCookie(id: string): string {
  return `${SESSION_COOKIE}=${encodeURIComponent('s:' + cookieSignature.sign(id, 'attacker-secret-attacker-secret-1234'))}`;
}

/** Flips one character of the signature of a real cookie. */
function tamperedCookie(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  const dot = value.lastIndexOf('.');
  const signature = value.slice(dot + 1);
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
  return `${SESSION_COOKIE}=${encodeURIComponent(value.slice(0, dot + 1) + flipped)}`;
}

// ASVS 4.4.1–4.4.4 / OWASP WebSocket cheat sheet: path, exact Origin allowlist and session checked at the handshake.
describe('upgrade gate: refusals are plain HTTP statuses and the socket is closed', () => {
  let server: TestServer;
  let cookie: string;

  before(async () => {
    // A high failure threshold: this suite refuses many upgrades on purpose.
    server = await startServer({ env: { UPGRADE_ADDRESS_FAILURES: '1000' } });
    cookie = await signUp(server, 'gatealice');
  });
  after(() => server.close());

  test('a valid upgrade (allowed Origin, live session cookie, /ws) opens and gets the room list', async () => {
    const client = await open(server, cookie);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    await closeClient(client);
  });

  for (const path of ['/wss', '/ws/x', '/', '/ws/', '/WS']) {
    test(`upgrade to the wrong path ${path} is refused 404, never 101`, async () => {
      await refused(server, { path, cookie }, 404, 'not_found', 'path');
    });
  }

  test('upgrade to /ws with a query string still reaches the gate checks (and opens when all pass)', async () => {
    const attempt = await connect(server, { cookie, path: '/ws?x=1' });
    await closeClient(opened(attempt));
  });

  test('upgrade without an Origin header is refused 403, never 101', async () => {
    await refused(server, { origin: null, cookie }, 403, 'origin_not_allowed', 'origin');
  });

  test('upgrade with Origin "null" (sandboxed iframe, file:) is refused 403, never 101', async () => {
    await refused(server, { origin: 'null', cookie }, 403, 'origin_not_allowed', 'origin');
  });

  test('upgrade with a sibling origin (https://evil.localhost:PORT) is refused 403, never 101', async () => {
    await refused(server, { origin: `https://evil.localhost:${server.port}`, cookie }, 403, 'origin_not_allowed', 'origin');
  });

  const lookAlikes: Array<[string, (port: number) => string]> = [
    ['the allowed origin as a prefix of another host (https://localhost:PORT.evil.test)', (p) => `https://localhost:${p}.evil.test`],
    ['the plain-http origin (http://localhost:PORT)', (p) => `http://localhost:${p}`],
    ['another port (https://localhost:OTHERPORT)', (p) => `https://localhost:${p === 65535 ? p - 1 : p + 1}`],
    ['no port (https://localhost)', () => 'https://localhost'],
    ['a trailing slash (https://localhost:PORT/), not a serialized origin', (p) => `https://localhost:${p}/`],
    ['a trailing path (https://localhost:PORT/chat)', (p) => `https://localhost:${p}/chat`],
    ['an upper-case host (https://LOCALHOST:PORT), not a serialized origin', (p) => `https://LOCALHOST:${p}`],
    ['userinfo before the host (https://localhost:PORT@evil.test)', (p) => `https://localhost:${p}@evil.test`],
    ['a hyphenated look-alike (https://evil-localhost:PORT)', (p) => `https://evil-localhost:${p}`],
    ['two origins in one header', (p) => `https://localhost:${p} https://evil.test`],
  ];
  for (const [label, make] of lookAlikes) {
    test(`upgrade with a look-alike Origin, ${label}, is refused 403, never 101`, async () => {
      await refused(server, { origin: make(server.port), cookie }, 403, 'origin_not_allowed', 'origin');
    });
  }

  test('the ws client sends its origin option verbatim, so a trailing-slash origin through it is refused 403 too', async () => {
    const attempt = await connect(server, { cookie, origin: `${server.origin}/` });
    assert.equal(refusedStatus(attempt), 403, JSON.stringify(attempt));
  });

  // Fetch Metadata, as on the HTTP routes: a browser says where the request came from.
  for (const site of ['cross-site', 'same-site', 'none']) {
    test(`upgrade with Sec-Fetch-Site: ${site} is refused 403 cross_site, even with the allowed Origin and a live session`, async () => {
      const reply = await rawUpgrade(server, { cookie, extra: [`Sec-Fetch-Site: ${site}`] });
      assert.equal(reply.status, 403);
      assert.equal(JSON.parse(reply.body).error, 'cross_site');
      assert.ok(reply.closed);
    });
  }

  test('upgrade with Sec-Fetch-Site: same-origin opens', async () => {
    const reply = await rawUpgrade(server, { cookie, extra: ['Sec-Fetch-Site: same-origin'] }, 500);
    assert.equal(reply.status, 101);
  });

  // DNS rebinding: a page on another name that resolves to this server.
  test('upgrade naming another Host (evil.example) is refused 403 host_not_allowed, even with the allowed Origin and a live session', async () => {
    const reply = await rawUpgrade(server, { cookie, host: `evil.example:${server.port}` });
    assert.equal(reply.status, 403);
    assert.equal(JSON.parse(reply.body).error, 'host_not_allowed');
  });

  test('upgrade with two Host headers is refused 400', async () => {
    const reply = await rawUpgrade(server, { cookie, host: [`localhost:${server.port}`, `evil.example:${server.port}`] });
    assert.equal(reply.status, 400);
    assert.equal(JSON.parse(reply.body).error, 'bad_request');
  });

  test('upgrade without a session cookie is refused 401, never 101', async () => {
    await refused(server, {}, 401, 'unauthenticated', 'session');
  });

  test('upgrade with a forged cookie (random id, signed with the wrong secret) is refused 401', async () => {
    await refused(server, { cookie: forgedCookie(crypto.randomBytes(18).toString('base64url')) }, 401, 'unauthenticated', 'session');
  });

  test('upgrade with an unsigned cookie value (a bare attacker-chosen id) is refused 401', async () => {
    await refused(server, { cookie: `${SESSION_COOKIE}=${crypto.randomBytes(18).toString('base64url')}` }, 401, 'unauthenticated', 'session');
  });

  test('upgrade with a real session id but a tampered signature is refused 401', async () => {
    await refused(server, { cookie: tamperedCookie(cookie) }, 401, 'unauthenticated', 'session');
  });

  test('upgrade with a real session id re-signed by the attacker is refused 401', async () => {
    const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
    const id = value.slice(2, value.lastIndexOf('.'));
    await refused(server, { cookie: forgedCookie(id) }, 401, 'unauthenticated', 'session');
  });

  test('upgrade with the cookie of a logged-out session is refused 401', async () => {
    const other = await login(server, 'gatealice');
    await closeClient(opened(await connect(server, { cookie: other })));
    const reply = await request(server, 'POST', '/api/logout', { cookie: other, body: {} });
    assert.equal(reply.status, 204);
    await refused(server, { cookie: other }, 401, 'unauthenticated', 'session');
  });

  test('after every refusal above the process still serves: a valid upgrade opens', async () => {
    const client = await open(server, cookie);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    const reply = await request(server, 'GET', '/api/me', { cookie });
    assert.equal(reply.status, 200);
    await closeClient(client);
  });
});

// ASVS 7.3.1 / OWASP WS cheat sheet: the server-side idle timeout applies at the handshake too.
describe('upgrade gate: an expired session cannot open a socket', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_IDLE_SECONDS: '1', UPGRADE_ADDRESS_FAILURES: '1000' } });
  });
  after(() => server.close());

  test('upgrade with the cookie of a session idle past SESSION_IDLE_SECONDS is refused 401', async () => {
    const cookie = await signUp(server, 'idlebob');
    // While the session is live, the same cookie opens (opening a socket does not touch the session).
    await closeClient(opened(await connect(server, { cookie })));
    await sleep(1300);
    await refused(server, { cookie }, 401, 'unauthenticated', 'session');
  });
});

// OWASP WS cheat sheet (resource limits): at most WS_MAX_CONNECTIONS_PER_USER sockets per user.
describe('upgrade gate: per-user connection cap', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { WS_MAX_CONNECTIONS_PER_USER: '2', UPGRADE_ADDRESS_FAILURES: '1000' } });
  });
  after(() => server.close());

  test('a third socket of one user is refused 429; after one closes, a new one opens', async () => {
    const cookie = await signUp(server, 'capcarol');
    const first = await open(server, cookie);
    const second = await open(server, cookie);
    await refused(server, { cookie }, 429, 'too_many_connections', 'cap');
    // The refusal did not disturb the two open sockets.
    assert.equal(first.ws.readyState, first.ws.OPEN);
    assert.equal(second.ws.readyState, second.ws.OPEN);
    await closeClient(first);
    await untilCount(server, 'capcarol', 1);
    const third = await open(server, cookie);
    await refused(server, { cookie }, 429, 'too_many_connections', 'cap');
    await closeClient(second);
    await closeClient(third);
  });

  test('the cap counts per user, across sessions: a second login of the same user gets no more sockets', async () => {
    const a = await signUp(server, 'capdave');
    const b = await login(server, 'capdave');
    const one = await open(server, a);
    const two = await open(server, b);
    await refused(server, { cookie: b }, 429, 'too_many_connections', 'cap');
    // Another user is unaffected by capdave's cap.
    const erin = await open(server, await signUp(server, 'caperin'));
    await Promise.all([closeClient(one), closeClient(two), closeClient(erin)]);
  });

  test('six upgrades fired in parallel open at most 2 sockets; the rest get 429', async () => {
    const cookie = await signUp(server, 'capfrank');
    const attempts = await Promise.all(Array.from({ length: 6 }, () => connect(server, { cookie })));
    const clients = attempts.flatMap((a) => ('client' in a ? [a.client] : []));
    const statuses = attempts.map(refusedStatus).filter((s) => s !== undefined);
    assert.ok(clients.length <= 2, `at most 2 may open, ${clients.length} did`);
    assert.equal(clients.length, 2, 'with no socket open before, exactly 2 open');
    assert.deepEqual(statuses, [429, 429, 429, 429]);
    assert.equal(server.parley.connectionsOf('capfrank'), 2);
    await Promise.all(clients.map(closeClient));
  });
});

// Control-off proof for the cap: the same third socket opens when 'connection-cap' is switched off.
describe('upgrade gate with the connection cap switched off (proves the cap test can fail)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { WS_MAX_CONNECTIONS_PER_USER: '2' }, disabled: ['connection-cap'] });
  });
  after(() => server.close());

  test('without the cap, a third socket of one user opens', async () => {
    const cookie = await signUp(server, 'nocap');
    const clients = [await open(server, cookie), await open(server, cookie)];
    const attempt = await connect(server, { cookie });
    assert.equal(refusedStatus(attempt), undefined, `the third upgrade was refused: ${JSON.stringify(attempt)}`);
    const third = opened(attempt);
    assert.equal((await third.next('rooms')).user, 'nocap', 'the third socket is live: it got its room list');
    await Promise.all([...clients, third].map(closeClient));
  });
});

// Control-off proof for the Origin check: an evil-origin upgrade opens (101) when 'origin' is off.
describe('upgrade gate with the Origin check switched off (proves the Origin tests can fail)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ disabled: ['origin'] });
  });
  after(() => server.close());

  test('without the Origin check, an upgrade from https://evil.localhost:PORT opens', async () => {
    const cookie = await signUp(server, 'noorigin');
    const reply = await rawUpgrade(server, { origin: `https://evil.localhost:${server.port}`, cookie }, 500);
    assert.equal(reply.status, 101);
    assert.equal(reply.closed, false);
    await closeClient(opened(await connect(server, { cookie, origin: `https://evil.localhost:${server.port}` })));
  });

  test('without the same-origin checks, a cross-site Sec-Fetch-Site and a foreign Host open too', async () => {
    const cookie = await signUp(server, 'noorigin2');
    const crossSite = await rawUpgrade(server, { cookie, extra: ['Sec-Fetch-Site: cross-site'] }, 500);
    assert.equal(crossSite.status, 101);
    const foreignHost = await rawUpgrade(server, { cookie, host: `evil.example:${server.port}` }, 500);
    assert.equal(foreignHost.status, 101);
  });
});

// Control-off proof for the session check: a cookie-less upgrade opens when 'session' is off.
describe('upgrade gate with the session check switched off (proves the session tests can fail)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ disabled: ['session'] });
  });
  after(() => server.close());

  test('without the session check, an upgrade with no cookie opens', async () => {
    const client = opened(await connect(server));
    assert.equal(client.ws.readyState, client.ws.OPEN);
    await closeClient(client);
  });
});

// OWASP WS cheat sheet / ASVS 2.4.1: refused upgrades are throttled per client address.
describe('upgrade gate: per-address throttle of refused upgrades', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { UPGRADE_ADDRESS_FAILURES: '5' } });
  });
  after(() => server.close());

  test('after 5 refused upgrades from 127.0.0.1, every further bad attempt gets 429 (no cookie, wrong Origin, wrong path)', async () => {
    const cookie = await signUp(server, 'throttled');
    for (let i = 0; i < 5; i++) {
      await refused(server, { origin: 'https://evil.test', cookie }, 403, 'origin_not_allowed', 'origin');
    }
    await refused(server, {}, 429, 'too_many_failures', 'throttled');
    await refused(server, { origin: 'https://evil.test', cookie }, 429, 'too_many_failures', 'throttled');
    await refused(server, { path: '/nope', cookie }, 429, 'too_many_failures', 'throttled');
    const forged = await connect(server, { cookie: `${SESSION_COOKIE}=s%3Aforged.sig` });
    assert.equal(refusedStatus(forged), 429, JSON.stringify(forged));
  });

  test('a user with a valid session on the throttled address still connects: failures of neighbours never lock out a NAT', async () => {
    const attempt = await connect(server, { cookie: await login(server, 'throttled') });
    assert.ok('client' in attempt, JSON.stringify(attempt));
    attempt.client.ws.close();
  });
});

// Workshops share one NAT address: successful upgrades never count against it.
describe('upgrade gate: successful upgrades are never throttled', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { UPGRADE_ADDRESS_FAILURES: '5' } });
  });
  after(() => server.close());

  test('20 open/close cycles from one address with UPGRADE_ADDRESS_FAILURES=5 all succeed', async () => {
    const cookie = await signUp(server, 'manyopens');
    for (let i = 0; i < 20; i++) {
      const attempt = await connect(server, { cookie });
      await closeClient(opened(attempt));
    }
    assert.ok(!server.logs.some((line) => line.includes('"upgrade_refused"')), 'no upgrade was refused');
  });
});

// One user over their per-user cap is that user's problem, not the NAT's: cap refusals are
// not counted against the shared address.
describe('upgrade gate: cap refusals do not throttle the shared address', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { UPGRADE_ADDRESS_FAILURES: '3', WS_MAX_CONNECTIONS_PER_USER: '1' } });
  });
  after(() => server.close());

  test('a user refused 429 by the cap 6 times does not lock out another user on the same address', async () => {
    const greedy = await signUp(server, 'greedy');
    const first = await open(server, greedy);
    for (let i = 0; i < 6; i++) {
      await refused(server, { cookie: greedy }, 429, 'too_many_connections', 'cap');
    }
    const neighbour = await connect(server, { cookie: await signUp(server, 'neighbour') });
    assert.ok('client' in neighbour, `neighbour refused: ${JSON.stringify(neighbour)}`);
    neighbour.client.ws.close();
    first.ws.close();
  });
});
