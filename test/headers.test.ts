// Tests for server/http/headers.ts and server/http/errors.ts: every response carries the
// security headers an MDN HTTP Observatory A+ needs, API responses are never cached, and
// errors are small JSON bodies with no internals. Run: npx node --test test/headers.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { localCertificate } from '../server/tls.ts';
import { TRUSTED_TYPES_POLICIES } from '../shared/trusted-types.ts';
import { request, signUp, startServer, type Reply, type TestServer } from './helpers/server.ts';

/** Directive name → its source list. A repeated directive is an error (browsers ignore the repeat). */
function parseCsp(header: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/).filter(Boolean);
    if (!name) continue;
    assert.ok(!directives.has(name.toLowerCase()), `CSP directive ${name} appears twice`);
    directives.set(name.toLowerCase(), values);
  }
  return directives;
}

function single(reply: Reply, name: string): string {
  const value = reply.headers[name];
  assert.ok(value !== undefined, `missing header ${name}`);
  assert.equal(typeof value, 'string', `header ${name} must be sent once`);
  return value as string;
}

/** Every assertion on the security headers, for one response. */
function securityHeaderTests(label: string, get: () => Promise<Reply>, port: () => number): void {
  let reply: Reply;
  let csp: Map<string, string[]>;
  before(async () => {
    reply = await get();
    csp = parseCsp(single(reply, 'content-security-policy'));
  });

  test(`${label}: CSP default-src is exactly 'self'`, () => {
    assert.deepEqual(csp.get('default-src'), ["'self'"]);
  });

  test(`${label}: CSP script-src is exactly 'self' (no 'unsafe-inline', no 'unsafe-eval', no data:)`, () => {
    const scriptSrc = csp.get('script-src');
    assert.deepEqual(scriptSrc, ["'self'"]);
    for (const weak of ["'unsafe-inline'", "'unsafe-eval'", 'data:', '*', 'https:', "'unsafe-hashes'"]) {
      assert.ok(!scriptSrc?.includes(weak), `script-src must not allow ${weak}`);
    }
    assert.equal(csp.get('script-src-elem'), undefined, 'no script-src-elem override');
    assert.equal(csp.get('script-src-attr'), undefined, 'no script-src-attr override');
  });

  test(`${label}: CSP object-src 'none', base-uri 'none', frame-ancestors 'none', form-action 'self'`, () => {
    assert.deepEqual(csp.get('object-src'), ["'none'"]);
    assert.deepEqual(csp.get('base-uri'), ["'none'"]);
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
    assert.deepEqual(csp.get('form-action'), ["'self'"]);
  });

  test(`${label}: CSP connect-src allows 'self' and wss://localhost:PORT only`, () => {
    const connectSrc = csp.get('connect-src') ?? [];
    assert.ok(connectSrc.includes("'self'"), `connect-src ${connectSrc.join(' ')}`);
    assert.ok(connectSrc.includes(`wss://localhost:${port()}`), `connect-src ${connectSrc.join(' ')}`);
    for (const wide of ['*', 'wss:', 'ws:', 'https:', 'http:']) assert.ok(!connectSrc.includes(wide), `connect-src must not allow ${wide}`);
  });

  test(`${label}: CSP requires Trusted Types for scripts and names only the app's policies`, () => {
    assert.deepEqual(csp.get('require-trusted-types-for'), ["'script'"]);
    const policies = csp.get('trusted-types') ?? [];
    assert.ok(policies.includes('parley'), `trusted-types ${policies.join(' ')}`);
    assert.deepEqual([...policies].sort(), [...TRUSTED_TYPES_POLICIES].sort());
    assert.ok(!policies.includes("'allow-duplicates'") && !policies.includes('*'));
  });

  // Decision 016: on localhost a two-year includeSubDomains HSTS would stick to every
  // http://localhost:* dev server of the visitor. Real host names get it: see below.
  test(`${label}: no Strict-Transport-Security on a loopback host (localhost)`, () => {
    assert.equal(reply.headers['strict-transport-security'], undefined);
  });

  test(`${label}: nosniff, no-referrer, COOP same-origin, CORP same-origin, X-Frame-Options DENY`, () => {
    assert.equal(single(reply, 'x-content-type-options'), 'nosniff');
    assert.equal(single(reply, 'referrer-policy'), 'no-referrer');
    assert.equal(single(reply, 'cross-origin-opener-policy'), 'same-origin');
    assert.equal(single(reply, 'cross-origin-resource-policy'), 'same-origin');
    assert.equal(single(reply, 'x-frame-options'), 'DENY');
  });

  test(`${label}: no X-Powered-By header reveals the framework`, () => {
    assert.equal(reply.headers['x-powered-by'], undefined);
  });
}

function assertJsonError(reply: Reply, status: number, error: string): void {
  assert.equal(reply.status, status, reply.text);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(reply.json ?? {}).sort(), ['error', 'message']);
  assert.equal(reply.json.error, error);
  assert.equal(typeof reply.json.message, 'string');
  // ASVS 16.5.1: no stack trace, file path or library internals reach the client.
  assert.doesNotMatch(reply.text, /\bat .+\(|node_modules|\.ts:\d+|\.js:\d+|SyntaxError|Unexpected token|stack/i);
}

// ASVS 3.4 / MDN HTTP Observatory: security headers on the client page and the API
describe('security response headers', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());
  const port = () => server.port;

  // The client build may be missing in a test run: GET / is then a 404, and must still carry every header.
  describe('GET / (the client page, 200 or 404)', () => {
    securityHeaderTests('GET /', () => request(server, 'GET', '/'), port);
  });

  describe('GET /api/me', () => {
    securityHeaderTests('GET /api/me', () => request(server, 'GET', '/api/me'), port);
  });

  // What GET / becomes when the client build is missing: Express's final 404 handler.
  describe('GET of a page that does not exist (a 404 outside the API)', () => {
    let missing: Reply;
    let api: Reply;
    before(async () => {
      missing = await request(server, 'GET', '/no-such-page');
      api = await request(server, 'GET', '/api/me');
    });

    test('a 404 page still carries nosniff, no-referrer, COOP, CORP and X-Frame-Options DENY', () => {
      assert.equal(missing.status, 404);
      assert.equal(single(missing, 'x-content-type-options'), 'nosniff');
      assert.equal(single(missing, 'referrer-policy'), 'no-referrer');
      assert.equal(single(missing, 'cross-origin-opener-policy'), 'same-origin');
      assert.equal(single(missing, 'cross-origin-resource-policy'), 'same-origin');
      assert.equal(single(missing, 'x-frame-options'), 'DENY');
      assert.equal(missing.headers['x-powered-by'], undefined);
    });

    test("a 404 page keeps the application's full CSP (frame-ancestors, Trusted Types), not a replacement policy", () => {
      assert.equal(single(missing, 'content-security-policy'), single(api, 'content-security-policy'));
    });
  });
});

/** A GET to the server as a browser on `host` would send it: that SNI name, that Host header. */
function getAs(server: TestServer, host: string, urlPath: string, sni = REAL_HOST): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.base}${urlPath}`,
      { method: 'GET', headers: { host, origin: `https://${host}` }, ca: server.ca, servername: sni, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: undefined }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const REAL_HOST = 'chat.example.test';

// RFC 6797 / MDN Observatory: HSTS on the production host name (decision 016)
describe('Strict-Transport-Security: on real host names, never on loopback', () => {
  let server: TestServer;
  let certDir: string;
  before(async () => {
    // A certificate for the real name, given as an operator gives theirs (TLS_CERT_FILE/TLS_KEY_FILE).
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-hsts-'));
    await localCertificate(certDir, [REAL_HOST]);
    server = await startServer({
      env: {
        // The real name (behind a balancer on 443), plus loopback names an operator might list too.
        APP_ORIGIN: `https://${REAL_HOST},https://localhost:8443,https://lab.localhost:8443,https://127.0.0.2:8443,https://[::1]:8443`,
        TLS_CERT_FILE: path.join(certDir, 'localhost-cert.pem'),
        TLS_KEY_FILE: path.join(certDir, 'localhost-key.pem'),
      },
    });
  });
  after(async () => {
    await server.close();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  for (const urlPath of ['/', '/api/me', '/no-such-page', '/healthz']) {
    test(`GET ${urlPath} on https://${REAL_HOST} carries HSTS: two years, includeSubDomains`, async () => {
      const reply = await getAs(server, REAL_HOST, urlPath);
      const hsts = single(reply, 'strict-transport-security');
      assert.equal(hsts, 'max-age=63072000; includeSubDomains');
    });
  }

  for (const host of ['localhost:8443', 'lab.localhost:8443', '127.0.0.2:8443', '[::1]:8443', '127.0.0.1']) {
    test(`GET / with Host ${host} (loopback, even when listed in APP_ORIGIN) carries no HSTS`, async () => {
      const reply = await getAs(server, host, '/');
      assert.ok(reply.headers['content-security-policy'], 'the other security headers are still sent');
      assert.equal(reply.headers['strict-transport-security'], undefined);
    });
  }

  test("a Host that is not one of APP_ORIGIN's names (other.example.test) gets no HSTS: the list is ours, not the request's", async () => {
    const reply = await getAs(server, 'other.example.test', '/');
    assert.equal(reply.headers['strict-transport-security'], undefined);
  });
});

// ASVS 14.3.2: API responses are never stored by a browser or proxy cache
describe('Cache-Control: no-store on every /api response', () => {
  let server: TestServer;
  let cookie: string;
  before(async () => {
    server = await startServer();
    cookie = await signUp(server, 'alice');
  });
  after(() => server.close());

  const cases: Array<[string, number, () => Promise<Reply>]> = [
    ['200 (GET /api/me signed in)', 200, () => request(server, 'GET', '/api/me', { cookie })],
    ['401 (GET /api/me signed out)', 401, () => request(server, 'GET', '/api/me')],
    ['404 (GET /api/nope)', 404, () => request(server, 'GET', '/api/nope')],
    ['400 (malformed JSON)', 400, () => request(server, 'POST', '/api/login', { rawBody: '{"username":', headers: { 'content-type': 'application/json' } })],
    ['415 (text/plain body)', 415, () => request(server, 'POST', '/api/login', { rawBody: '{}', headers: { 'content-type': 'text/plain' } })],
    ['413 (body over 16 KB)', 413, () => request(server, 'POST', '/api/login', { body: { username: 'alice', password: 'x'.repeat(17 * 1024) } })],
  ];
  for (const [label, status, get] of cases) {
    test(`a ${label} response carries Cache-Control: no-store`, async () => {
      const reply = await get();
      assert.equal(reply.status, status, reply.text);
      assert.equal(reply.headers['cache-control'], 'no-store');
    });
  }

  // W3C Clear-Site-Data / ASVS 7.4.1: logout also clears the browser's copy of what Parley
  // stored (cache, storage: per origin). Never "cookies": that type clears every cookie of the
  // registrable domain, signing the user out of sibling apps; Parley's cookie is cleared by name.
  test('POST /api/logout answers Clear-Site-Data "cache", "storage" — not "cookies"', async () => {
    const reply = await request(server, 'POST', '/api/logout', { cookie, body: {} });
    assert.equal(reply.status, 204);
    const types = String(reply.headers['clear-site-data'] ?? '')
      .split(',')
      .map((s) => s.trim());
    assert.deepEqual(types.sort(), ['"cache"', '"storage"']);
    assert.equal(reply.headers['cache-control'], 'no-store');
  });
});

// ASVS 16.5.1: errors are {error, message} JSON, never a stack trace or an HTML error page
describe('API error responses', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a truncated JSON body {"username": is answered 400 bad_json without parser internals', async () => {
    const reply = await request(server, 'POST', '/api/login', { rawBody: '{"username":', headers: { 'content-type': 'application/json' } });
    assertJsonError(reply, 400, 'bad_json');
  });

  test('a JSON body that is not an object ("__proto__" string) is answered 400 bad_json (strict parser)', async () => {
    const reply = await request(server, 'POST', '/api/login', { rawBody: '"__proto__"', headers: { 'content-type': 'application/json' } });
    assertJsonError(reply, 400, 'bad_json');
  });

  test('a body over 16 KB is answered 413 payload_too_large', async () => {
    const reply = await request(server, 'POST', '/api/register', { body: { username: 'bob', password: 'p'.repeat(17 * 1024) } });
    assertJsonError(reply, 413, 'payload_too_large');
  });

  test('an unknown API route /api/nope is answered 404 JSON, not an HTML page', async () => {
    const reply = await request(server, 'GET', '/api/nope');
    assertJsonError(reply, 404, 'not_found');
  });

  test('an unknown API route for POST is answered 404 JSON', async () => {
    const reply = await request(server, 'POST', '/api/nope', { body: {} });
    assertJsonError(reply, 404, 'not_found');
  });

  test('a declared body encoding the server does not support is answered as a JSON 4xx', async () => {
    const reply = await request(server, 'POST', '/api/login', {
      rawBody: '{}',
      headers: { 'content-type': 'application/json', 'content-encoding': 'x-unknown' },
    });
    assert.ok(reply.status >= 400 && reply.status < 500, `${reply.status} ${reply.text}`);
    assertJsonError(reply, reply.status, String(reply.json?.error));
  });
});
