// Tests for server/http/csrf.ts: cross-site requests cannot change state through the API.
// Every attack is a real HTTPS request carrying the victim's cookie (as a browser would if
// SameSite were absent), and is asserted to be refused before the route runs.
// Run: npx node --test test/csrf.test.ts
import { SESSION_COOKIE } from '../server/http/session.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, register, request, signUp, startServer, type Reply, type RequestOptions, type TestServer } from './helpers/server.ts';

const NEW_PASSWORD = 'an attacker chose this passphrase';

type Endpoint = {
  path: '/api/login' | '/api/register' | '/api/logout' | '/api/password';
  /** The JSON body a legitimate page would send (and a forged request imitates). */
  body: Record<string, string>;
};

const ENDPOINTS: Endpoint[] = [
  // Login CSRF: sign the victim's browser into the attacker's account.
  { path: '/api/login', body: { username: 'mallory', password: PASSWORD } },
  { path: '/api/register', body: { username: 'csrf-made', password: PASSWORD } },
  { path: '/api/logout', body: {} },
  { path: '/api/password', body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } },
];

function formEncoded(body: Record<string, string>): string {
  return new URLSearchParams(body).toString();
}

function multipart(body: Record<string, string>, boundary: string): string {
  const parts = Object.entries(body).map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  return `${parts.join('')}--${boundary}--\r\n`;
}

function setCookies(reply: Reply): string[] {
  const raw = reply.headers['set-cookie'];
  return raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
}

/** A refused request: the status and error code, and no side effect the browser would act on. */
function assertRefused(reply: Reply, status: number, error: string): void {
  assert.equal(reply.status, status, `expected ${status} ${error}, got ${reply.status} ${reply.text}`);
  assert.equal(reply.json?.error, error);
  assert.equal(typeof reply.json?.message, 'string');
  // No session was created (login CSRF) and no cookie was cleared or replaced.
  assert.deepEqual(setCookies(reply), [], 'a refused request must not set or clear any cookie');
  // Clear-Site-Data on a cross-site response would still wipe our cookies: a logout by another road.
  assert.equal(reply.headers['clear-site-data'], undefined, 'a refused request must not send Clear-Site-Data');
}

// ASVS 3.5.1–3.5.3 / OWASP CSRF cheat sheet: exact Origin allowlist + Fetch Metadata + JSON-only bodies
describe('CSRF guard on state-changing API routes', () => {
  let server: TestServer;
  let victim: string;
  let victimHash: string;

  before(async () => {
    server = await startServer();
    victim = await signUp(server, 'victim');
    await register(server, 'mallory');
    victimHash = (await server.parley.store.findUser('victim'))!.passwordHash;
  });
  after(() => server.close());

  /** A forged request carrying the victim's cookie, with the given headers and body. */
  function forge(endpoint: Endpoint, options: RequestOptions): Promise<Reply> {
    return request(server, 'POST', endpoint.path, { cookie: victim, ...options });
  }

  async function victimStillSignedIn(): Promise<void> {
    const me = await request(server, 'GET', '/api/me', { cookie: victim });
    assert.equal(me.status, 200, `the victim's session must survive a refused request (got ${me.status} ${me.text})`);
    assert.equal(me.json?.username, 'victim');
  }

  for (const endpoint of ENDPOINTS) {
    describe(`POST ${endpoint.path}`, () => {
      const badOrigins: Array<[string, (port: number) => string | undefined]> = [
        ['no Origin header', () => undefined],
        ['Origin "null" (sandboxed iframe, file:, data:)', () => 'null'],
        ['a foreign Origin (https://evil.example)', () => 'https://evil.example'],
        ['a sibling Origin (https://evil.localhost:PORT)', (port) => `https://evil.localhost:${port}`],
        ['the right host over http:// (http://localhost:PORT)', (port) => `http://localhost:${port}`],
      ];
      for (const [label, originFor] of badOrigins) {
        test(`with ${label} is refused 403 csrf_origin`, async () => {
          const reply = await forge(endpoint, { body: endpoint.body, headers: { origin: originFor(server.port), 'sec-fetch-site': 'cross-site' } });
          assertRefused(reply, 403, 'csrf_origin');
          if (endpoint.path === '/api/logout') await victimStillSignedIn();
        });
      }

      for (const site of ['cross-site', 'same-site']) {
        test(`with the right Origin but Sec-Fetch-Site: ${site} is refused 403 csrf_fetch_site`, async () => {
          const reply = await forge(endpoint, { body: endpoint.body, headers: { 'sec-fetch-site': site } });
          assertRefused(reply, 403, 'csrf_fetch_site');
          if (endpoint.path === '/api/logout') await victimStillSignedIn();
        });
      }

      // An HTML form (or fetch with mode no-cors) can send only these three types cross-site without a preflight.
      const formBodies: Array<[string, string, string]> = [
        ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', formEncoded(endpoint.body)],
        ['text/plain with JSON inside', 'text/plain', JSON.stringify(endpoint.body)],
        ['multipart/form-data', 'multipart/form-data; boundary=----parleyCsrfBoundary', multipart(endpoint.body, '----parleyCsrfBoundary')],
      ];
      for (const [label, contentType, rawBody] of formBodies) {
        test(`a form-shaped ${label} body is refused 415 even with the right Origin`, async () => {
          const reply = await forge(endpoint, {
            rawBody,
            headers: { 'content-type': contentType, 'sec-fetch-site': 'same-origin' },
          });
          assertRefused(reply, 415, 'unsupported_media_type');
          if (endpoint.path === '/api/logout') await victimStillSignedIn();
        });
      }

      test('a request with no body and no Content-Type is refused 415 even with the right Origin', async () => {
        const reply = await forge(endpoint, { headers: { 'sec-fetch-site': 'same-origin' } });
        assertRefused(reply, 415, 'unsupported_media_type');
      });
    });
  }

  describe('after every refused request', () => {
    test('the victim is still signed in (no refused logout ended the session)', victimStillSignedIn);

    test("the victim's password is unchanged (no refused password change took effect)", async () => {
      const user = await server.parley.store.findUser('victim');
      assert.equal(user?.passwordHash, victimHash);
    });

    test('no account was created by a refused registration', async () => {
      assert.equal(await server.parley.store.findUser('csrf-made'), undefined);
    });

    test('each refusal was logged as csrf_refused with its reason', () => {
      const refusals = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((r) => r['event'] === 'csrf_refused');
      // 4 endpoints × (5 origins + 2 fetch-site + 4 bodies)
      assert.equal(refusals.length, 4 * 11);
      assert.deepEqual(new Set(refusals.map((r) => r['reason'])), new Set(['csrf_origin', 'csrf_fetch_site', 'unsupported_media_type']));
    });
  });

  describe('legitimate same-origin requests', () => {
    const sameOrigin = { 'sec-fetch-site': 'same-origin' };

    test('register with Origin + Sec-Fetch-Site: same-origin + JSON is accepted (201)', async () => {
      const reply = await request(server, 'POST', '/api/register', { body: { username: 'alice', password: PASSWORD }, headers: sameOrigin });
      assert.equal(reply.status, 201, reply.text);
    });

    test('login with Origin + Sec-Fetch-Site: same-origin + JSON is accepted (200) and sets the session cookie', async () => {
      const reply = await request(server, 'POST', '/api/login', { body: { username: 'alice', password: PASSWORD }, headers: sameOrigin });
      assert.equal(reply.status, 200, reply.text);
      assert.ok(setCookies(reply).some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
    });

    test('a JSON Content-Type with a charset parameter is accepted', async () => {
      const reply = await request(server, 'POST', '/api/login', {
        rawBody: JSON.stringify({ username: 'alice', password: PASSWORD }),
        headers: { ...sameOrigin, 'content-type': 'application/json; charset=utf-8' },
      });
      assert.equal(reply.status, 200, reply.text);
    });

    test('password change with Origin + Sec-Fetch-Site: same-origin + JSON is accepted (204)', async () => {
      const cookie = await signUp(server, 'carol');
      const reply = await request(server, 'POST', '/api/password', {
        cookie,
        body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
        headers: sameOrigin,
      });
      assert.equal(reply.status, 204, reply.text);
    });

    test('logout with Origin + Sec-Fetch-Site: same-origin + JSON is accepted (204) and ends the session', async () => {
      const cookie = await signUp(server, 'dave');
      const reply = await request(server, 'POST', '/api/logout', { cookie, body: {}, headers: sameOrigin });
      assert.equal(reply.status, 204, reply.text);
      assert.equal((await request(server, 'GET', '/api/me', { cookie })).status, 401);
    });

    test('a request from a client that sends no Sec-Fetch-Site (older browser) is accepted with the right Origin', async () => {
      const reply = await request(server, 'POST', '/api/register', { body: { username: 'erin', password: PASSWORD } });
      assert.equal(reply.status, 201, reply.text);
    });
  });

  describe('safe methods', () => {
    const evil = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };

    test('GET /api/me with an evil Origin and no cookie is answered 401 unauthenticated, not a CSRF refusal', async () => {
      const reply = await request(server, 'GET', '/api/me', { headers: evil });
      assert.equal(reply.status, 401);
      assert.equal(reply.json?.error, 'unauthenticated');
    });

    test('GET /api/me with an evil Origin and the cookie answers 200 but grants no CORS read access', async () => {
      const reply = await request(server, 'GET', '/api/me', { cookie: victim, headers: evil });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['access-control-allow-origin'], undefined);
      assert.equal(reply.headers['access-control-allow-credentials'], undefined);
    });

    test('a CORS preflight from an evil Origin is never granted', async () => {
      const reply = await request(server, 'OPTIONS', '/api/logout', {
        headers: { ...evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(reply.headers['access-control-allow-origin'], undefined);
      assert.equal(reply.headers['access-control-allow-methods'], undefined);
      assert.equal(reply.headers['access-control-allow-headers'], undefined);
    });
  });
});

// Control-off proof: the same forged logout succeeds once the CSRF guard is switched off
describe("with the 'csrf' control disabled", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ disabled: ['csrf'] });
  });
  after(() => server.close());

  test('a cross-site text/plain logout of the victim succeeds (204) and ends the session', async () => {
    const victim = await signUp(server, 'victim');
    assert.equal((await request(server, 'GET', '/api/me', { cookie: victim })).status, 200);
    const reply = await request(server, 'POST', '/api/logout', {
      cookie: victim,
      rawBody: '{}',
      headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
    });
    assert.equal(reply.status, 204, reply.text);
    assert.equal((await request(server, 'GET', '/api/me', { cookie: victim })).status, 401);
  });
});
