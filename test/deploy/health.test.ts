// requires: postgres
// Tests for server/http/health.ts: GET /healthz and GET /readyz over real HTTPS, on SQLite and
// on a real PostgreSQL that is stopped and started under them. A probe carries no session (no
// Set-Cookie, a forged cookie changes nothing), is never logged, is never cached, carries the
// security headers, costs the store at most one query per READYZ_CACHE_SECONDS however many
// probes arrive, and /readyz says 503 while the store is away and while the server shuts down.
// Run: npx node --test --test-concurrency=1 test/deploy/health.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import type { ParleyStore } from '../../server/store/store.ts';
import { open, request, signUp, sleep, startServer, type Reply, type TestServer } from '../helpers/server.ts';
import { startPostgres, type PostgresService } from '../helpers/services.ts';

/** A probe as a load balancer sends it: no Origin, no cookie. */
const probe = (server: TestServer, path: string, headers: Record<string, string | undefined> = {}) =>
  request(server, 'GET', path, { headers: { origin: undefined, ...headers } });

function assertProbeHeaders(reply: Reply): void {
  assert.equal(reply.headers['cache-control'], 'no-store');
  assert.equal(reply.headers['set-cookie'], undefined, 'a probe never sets a cookie');
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  // The security headers of every response (server/http/headers.ts).
  assert.ok(reply.headers['content-security-policy'], 'CSP');
  assert.equal(reply.headers['x-frame-options'], 'DENY');
  assert.equal(reply.headers['x-content-type-options'], 'nosniff');
}

/** Polls until `path` answers `status` (or fails after `ms`). */
async function until(server: TestServer, path: string, status: number, ms: number): Promise<Reply> {
  const deadline = Date.now() + ms;
  for (;;) {
    const reply = await probe(server, path);
    if (reply.status === status || Date.now() > deadline) return reply;
    await sleep(100);
  }
}

describe('GET /healthz and GET /readyz (SQLite)', () => {
  let server: TestServer;
  let pings = 0;
  before(async () => {
    server = await startServer({
      env: { READYZ_CACHE_SECONDS: '1' },
      // Counts the store's ping() calls; every call reaches the real store.
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop === 'ping') return () => ((pings += 1), target.ping());
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        }) as ParleyStore,
    });
  });
  after(() => server.close());

  test('GET /healthz answers 200 {"status":"ok"}, no-store, no cookie, with the security headers', async () => {
    const reply = await probe(server, '/healthz');
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json, { status: 'ok' });
    assertProbeHeaders(reply);
  });

  test('GET /readyz answers 200 {"status":"ok"} while the store answers, no-store, no cookie', async () => {
    const reply = await probe(server, '/readyz');
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json, { status: 'ok' });
    assertProbeHeaders(reply);
  });

  test('HEAD /healthz and HEAD /readyz answer 200 (some probes use HEAD)', async () => {
    for (const path of ['/healthz', '/readyz']) assert.equal((await request(server, 'HEAD', path, { headers: { origin: undefined } })).status, 200, path);
  });

  test('a probe with a signed-in cookie and a forged one: no session is read or renewed, no Set-Cookie', async () => {
    const cookie = await signUp(server, 'prober');
    for (const sent of [cookie, '__Host-parley.sid=s%3Aforged.signature']) {
      const reply = await probe(server, '/readyz', { cookie: sent });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['set-cookie'], undefined);
    }
  });

  test('a probe from another site (cross-site Origin, Sec-Fetch-Site) is not a CSRF refusal: probes have no CSRF gate', async () => {
    const reply = await probe(server, '/readyz', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    assert.equal(reply.status, 200);
  });

  test('50 probes write no log line', async () => {
    const before = server.logs.length;
    await Promise.all(Array.from({ length: 25 }, () => probe(server, '/readyz')));
    await Promise.all(Array.from({ length: 25 }, () => probe(server, '/healthz')));
    assert.deepEqual(server.logs.slice(before), []);
  });

  // Adversary checklist, "cost": /readyz is public; a flood of probes must not become a flood of queries.
  test('200 probes (100 at once, twice) cost the store at most one ping per READYZ_CACHE_SECONDS (1 s), not one each', async () => {
    await sleep(1100); // let any earlier verdict expire
    const start = pings;
    const startedAt = Date.now();
    const replies = await Promise.all(Array.from({ length: 100 }, () => probe(server, '/readyz')));
    replies.push(...(await Promise.all(Array.from({ length: 100 }, () => probe(server, '/readyz')))));
    const windows = Math.ceil((Date.now() - startedAt) / 1000);
    assert.ok(replies.every((r) => r.status === 200));
    // 200 TLS handshakes take a few seconds here: one ping per started 1 s window, plus one for a window edge.
    assert.ok(pings - start >= 1 && pings - start <= windows + 1, `store pings for 200 probes in ${windows} s: ${pings - start}`);
  });

  test('the probes are only these two paths: /api/healthz is an API 404, /healthz/x the page 404', async () => {
    assert.equal((await probe(server, '/api/healthz')).status, 404);
    assert.equal((await probe(server, '/healthz/x')).status, 404);
  });
});

describe('GET /readyz answers 503 while shutting down', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      // The drain keeps the server up for a while after close() begins; ping answers late,
      // so a probe that arrived just before the shutdown is answered during it.
      env: { SHUTDOWN_DRAIN_SECONDS: '3', READYZ_CACHE_SECONDS: '0' },
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop === 'ping') return async () => (await sleep(400), target.ping());
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        }) as ParleyStore,
    });
  });
  // The test closed it already: a second close may fail, the directory goes either way.
  after(async () => {
    await server.close().catch(() => {});
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('a probe in flight when the shutdown begins is answered 503 {"failing":["shutting_down"]} with Retry-After', async () => {
    const cookie = await signUp(server, 'stayer');
    const client = await open(server, cookie);
    // This client does not answer the server's close (its socket is paused): the drain lasts.
    (client.ws as unknown as { _socket: Duplex })._socket.pause();
    const inFlight = probe(server, '/readyz');
    await sleep(100);
    const closing = server.parley.close();
    const reply = await inFlight;
    assert.equal(reply.status, 503, reply.text);
    assert.deepEqual(reply.json, { status: 'unavailable', failing: ['shutting_down'] });
    assert.ok(Number(reply.headers['retry-after']) > 0, `Retry-After: ${String(reply.headers['retry-after'])}`);
    assertProbeHeaders(reply);
    client.ws.terminate();
    await closing;
  });
});

describe('GET /readyz follows PostgreSQL: 503 while it is stopped, 200 again once it is back', () => {
  let postgres: PostgresService;
  let server: TestServer;
  before(async () => {
    postgres = await startPostgres();
    server = await startServer({ env: { DATABASE_URL: postgres.url, READYZ_CACHE_SECONDS: '0', READYZ_TIMEOUT_SECONDS: '2' } });
  });
  after(async () => {
    await server?.close().catch(() => {});
    await postgres?.destroy();
  });

  test('ready, stopped → 503 unavailable ["store"] + Retry-After (healthz still 200, one log line for the outage, none per probe), started → 200', async () => {
    assert.equal((await probe(server, '/readyz')).status, 200);

    await postgres.stop();
    const down = await until(server, '/readyz', 503, 10_000);
    assert.equal(down.status, 503, down.text);
    assert.deepEqual(down.json, { status: 'unavailable', failing: ['store'] });
    assert.ok(Number(down.headers['retry-after']) > 0);
    assertProbeHeaders(down);
    // Liveness is about the process, not its dependencies: restarting it would not bring PostgreSQL back.
    assert.equal((await probe(server, '/healthz')).status, 200);

    const logged = server.logs.length;
    for (let i = 0; i < 20; i++) assert.equal((await probe(server, '/readyz')).status, 503);
    assert.deepEqual(server.logs.slice(logged), [], '20 probes during the outage log nothing (the outage itself was logged once by the store)');
    assert.equal(server.logs.filter((line) => line.includes('"backend_unavailable"')).length, 1);

    await postgres.start();
    const up = await until(server, '/readyz', 200, 15_000);
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(up.json, { status: 'ok' });
  });
});
