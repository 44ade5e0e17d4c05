// requires: redis, postgres
// Redis or PostgreSQL goes away while Parley runs: clients get a clear "try again"
// (`server_busy` error frame, HTTP 503 JSON, with Redis a 1013 close: the bus is lost), the
// log says which backend, the process keeps running, and everything works again once the
// backend is back — no restart.
// Run: npx node --test test/scale/outage.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CLOSE } from '../../shared/protocol.ts';
import { connect, joined, login, refusedStatus, request, signUp, startServer, type Client, type TestServer } from '../helpers/server.ts';
import { startPostgres, startRedis, type PostgresService, type RedisService } from '../helpers/services.ts';

/** Resolves once the server has logged `event` (optionally with `reason` starting with a prefix) `times` times. */
async function logged(server: TestServer, event: string, reasonPrefix = '', times = 1): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const count = server.logs
      .map((line) => JSON.parse(line) as { event: string; reason?: string })
      .filter((r) => r.event === event && (r.reason ?? '').startsWith(reasonPrefix)).length;
    if (count >= times) return;
    if (Date.now() > deadline) throw new Error(`no ${event} (${reasonPrefix}) in the log:\n${server.logs.slice(-10).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sends one message; resolves with the first answer for its clientId: an ack or an error frame. */
async function trySend(client: Client, clientId: string): Promise<{ type: string; code?: string }> {
  client.send({ type: 'send', room: 'lobby', text: `message ${clientId}`, clientId });
  const deadline = Date.now() + 5000;
  let seen = client.frames.length;
  for (;;) {
    for (; seen < client.frames.length; seen++) {
      const frame = client.frames[seen]!;
      if ((frame.type === 'ack' || frame.type === 'error') && frame.clientId === clientId) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no answer to ${clientId}: ${JSON.stringify(client.frames.slice(-5))}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Redis outage (REDIS_URL: sessions and the bus in Redis)', () => {
  let redis: RedisService;
  let server: TestServer;
  /** A second instance on the same Redis (and the same SQLite file and secret), to see the bus work again. */
  let second: TestServer;
  let cookie: string;
  let alice: Client;

  before(async () => {
    redis = await startRedis({ persist: true });
    server = await startServer({ env: { REDIS_URL: redis.url } });
    second = await startServer({ env: { REDIS_URL: redis.url }, dataDir: server.dataDir });
    cookie = await signUp(server, 'alice');
    alice = await joined(server, cookie);
    assert.equal((await trySend(alice, 'before')).type, 'ack');
  });

  after(async () => {
    alice?.ws.close();
    await second?.close();
    await server?.close();
    await redis?.stop();
    if (redis) fs.rmSync(redis.dir, { recursive: true, force: true });
  });

  test('Redis killed: the outage is logged; the bus is lost, so every socket is told server_busy and closed 1013 (try again later)', async () => {
    await redis.stop();
    await logged(server, 'backend_unavailable', 'redis');
    const closed = await alice.closed;
    assert.equal(closed.code, CLOSE.tryAgainLater);
    assert.ok(
      alice.frames.some((f) => f.type === 'error' && f.code === 'server_busy'),
      'told why before the close',
    );
    await logged(server, 'server_error', 'bus_lost');
  });

  test('Redis killed: the API answers 503 server_busy JSON with Retry-After, at once (no hang)', async () => {
    const started = Date.now();
    const me = await request(server, 'GET', '/api/me', { cookie });
    assert.equal(me.status, 503);
    assert.deepEqual(me.json?.error, 'server_busy');
    assert.equal(me.headers['retry-after'], '1');
    assert.ok(Date.now() - started < 5000);
    assert.ok(
      server.logs.some((l) => l.includes('"reason":"store_unavailable"')),
      'the 503 is logged with its cause',
    );
    // The shared login throttle cannot be consulted: login fails closed (503), never unthrottled.
    const loginReply = await request(server, 'POST', '/api/login', { body: { username: 'alice', password: 'correct horse battery staple' } });
    assert.equal(loginReply.status, 503);
    assert.equal(loginReply.json?.error, 'server_busy');
  });

  test('Redis killed: a WebSocket upgrade is refused 503 server_busy, not 401 (the client must not think it was signed out)', async () => {
    const attempt = await connect(server, { cookie });
    assert.equal(refusedStatus(attempt), 503);
    assert.ok('body' in attempt && JSON.parse(attempt.body).error === 'server_busy');
  });

  test('Redis back on the same port: sending and the session work again without a restart of Parley', async () => {
    redis = await startRedis({ port: redis.port, dir: redis.dir, persist: true });
    await logged(server, 'backend_recovered', 'redis', 2); // both connections: commands and subscriber
    alice = await joined(server, cookie); // the client reconnects, as the browser does after 1013
    assert.equal((await trySend(alice, 'after')).type, 'ack');
    const me = await request(server, 'GET', '/api/me', { cookie });
    assert.equal(me.status, 200, 'the session (persisted by Redis) is valid again');
    // The bus works again both ways: published by the first instance, received through the
    // second one's re-established subscription. (Retried: the subscriber may be a moment behind.)
    await logged(second, 'backend_recovered', 'redis', 2);
    const bob = await joined(second, await signUp(second, 'bob'));
    let delivered = false;
    for (let i = 0; i < 20 && !delivered; i++) {
      assert.equal((await trySend(alice, `again-${i}`)).type, 'ack');
      delivered = await bob.next('message', 500).then(
        (frame) => frame.user === 'alice',
        () => false,
      );
    }
    assert.ok(delivered, 'a message sent on instance 1 reached a socket on instance 2 after the outage');
    bob.ws.close();
  });
});

describe('PostgreSQL outage (DATABASE_URL: data and sessions in PostgreSQL)', () => {
  let postgres: PostgresService;
  let server: TestServer;
  let cookie: string;
  let alice: Client;

  before(async () => {
    postgres = await startPostgres();
    server = await startServer({ env: { DATABASE_URL: postgres.url } });
    cookie = await signUp(server, 'alice');
    alice = await joined(server, cookie);
    assert.equal((await trySend(alice, 'before')).type, 'ack');
  });

  after(async () => {
    alice?.ws.close();
    await server?.close();
    await postgres?.destroy();
  });

  test('PostgreSQL stopped: a send gets server_busy, login and /api/me get 503, the outage is logged once', async () => {
    await postgres.stop();
    const answer = await trySend(alice, 'during');
    assert.equal(answer.type, 'error');
    assert.equal(answer.code, 'server_busy');
    assert.equal(alice.ws.readyState, alice.ws.OPEN);
    const loginReply = await request(server, 'POST', '/api/login', { body: { username: 'alice', password: 'correct horse battery staple' } });
    assert.equal(loginReply.status, 503);
    assert.equal(loginReply.json?.error, 'server_busy');
    assert.equal((await request(server, 'GET', '/api/me', { cookie })).status, 503);
    await logged(server, 'backend_unavailable', 'postgres');
    const outages = server.logs.filter((l) => l.includes('"event":"backend_unavailable"')).length;
    assert.equal(outages, 1, 'one outage, one log line (not one per request)');
  });

  test('PostgreSQL back: sending, login and the session work again, and the recovery is logged', async () => {
    await postgres.start();
    // The pool reconnects on demand: the first query after the restart succeeds.
    let answer = await trySend(alice, 'after-1');
    for (let i = 2; answer.type !== 'ack' && i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      answer = await trySend(alice, `after-${i}`);
    }
    assert.equal(answer.type, 'ack');
    assert.equal((await request(server, 'GET', '/api/me', { cookie })).status, 200);
    assert.match(await login(server, 'alice'), /^__Host-parley\.sid=/);
    await logged(server, 'backend_recovered', 'postgres');
  });
});
