// requires: redis
// Tests for RedisSessionStore (server/store/redis.ts), Parley's own express-session store on
// Redis, against a real redis-server: the key layout sessions were always kept in (so sessions
// written by an earlier Parley still read), the TTL in milliseconds from the session's own
// deadline, the deadline and credential version re-checked on every read, update-only
// activity (extend), destroy, ending a user's other sessions, and a Redis outage reaching
// express-session as StoreUnavailableError (a 503), never as a crash.
// Run: npx node --test test/scale/redis-session-store.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionData } from 'express-session';
import { createAuditLog } from '../../server/security/audit-log.ts';
import { redisClient, RedisSessionStore, type RedisClient } from '../../server/store/redis.ts';
import { sessionIdHash } from '../../server/store/session-id.ts';
import { StoreUnavailableError } from '../../server/store/store.ts';
import { startRedis, type RedisService } from '../helpers/services.ts';

const IDLE_MS = 1500;
const ABSOLUTE_MS = 3_600_000;
const KEY = (sid: string) => `parley:sess:${sessionIdHash(sid)}`;

/** The deadline Parley computes (server/http/session.ts sessionExpiresAt), with a short idle timeout. */
const expiresAt = (data: SessionData) => Math.min(data.createdAt + ABSOLUTE_MS, data.lastSeenAt + IDLE_MS);

/** Credential versions as the user table would answer them. */
const versions = new Map<string, number>();

function sessionData(user: string | undefined, lastSeenAt = Date.now(), credentialVersion = 1): SessionData {
  return {
    cookie: { originalMaxAge: null, path: '/', httpOnly: true, secure: true, sameSite: 'strict' },
    ...(user ? { user, credentialVersion } : {}),
    createdAt: lastSeenAt,
    lastSeenAt,
  } as unknown as SessionData;
}

const get = (store: RedisSessionStore, sid: string) =>
  new Promise<SessionData | null | undefined>((resolve, reject) => store.get(sid, (error, data) => (error ? reject(error) : resolve(data))));
const set = (store: RedisSessionStore, sid: string, data: SessionData) =>
  new Promise<void>((resolve, reject) => store.set(sid, data, (error) => (error ? reject(error) : resolve())));
const destroy = (store: RedisSessionStore, sid: string) =>
  new Promise<void>((resolve, reject) => store.destroy(sid, (error) => (error ? reject(error) : resolve())));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisSessionStore on a real Redis', () => {
  let redis: RedisService;
  let client: RedisClient;
  let store: RedisSessionStore;

  before(async () => {
    redis = await startRedis();
    client = redisClient(
      redis.url,
      'main',
      createAuditLog(() => {}),
      60_000,
    );
    await client.connect();
    store = new RedisSessionStore(client, expiresAt, ABSOLUTE_MS, async (user) => versions.get(user) ?? 1);
  });
  after(async () => {
    if (client?.isOpen) client.destroy();
    await redis?.stop();
  });

  test('a session written in the layout earlier versions used (prefix + SHA-256 of the id, JSON) reads back', async () => {
    const data = sessionData('alice');
    // What an earlier Parley (RedisSessionStore on connect-redis) left in Redis, written by hand.
    await client.set(KEY('sid-before-upgrade'), JSON.stringify(data), { expiration: { type: 'PX', value: 60_000 } });
    assert.deepEqual(await get(store, 'sid-before-upgrade'), data);
  });

  test('set writes that same layout: the JSON under the hashed id, nothing under the id as sent', async () => {
    const data = sessionData('alice');
    await set(store, 'sid-layout', data);
    assert.equal(await client.get(KEY('sid-layout')), JSON.stringify(data));
    assert.equal(await client.exists('parley:sess:sid-layout'), 0, 'the session id itself never appears in a key');
    assert.deepEqual(await get(store, 'sid-layout'), data);
  });

  test("the key's TTL is the session's own deadline, in milliseconds; the user's index lives as long as a session may", async () => {
    const lastSeenAt = Date.now() - 700; // 800 ms of its 1.5 s idle time left
    await set(store, 'sid-ttl', sessionData('bob', lastSeenAt));
    const ttl = await client.pTTL(KEY('sid-ttl'));
    assert.ok(ttl > 0 && ttl <= 800, `PTTL ${ttl} ms: at most the 800 ms left (whole seconds would round up to 1000)`);
    assert.ok(await client.sIsMember('parley:user-sessions:bob', sessionIdHash('sid-ttl')));
    const indexTtl = await client.pTTL('parley:user-sessions:bob');
    assert.ok(indexTtl > ABSOLUTE_MS - 60_000 && indexTtl <= ABSOLUTE_MS, `index PTTL ${indexTtl} ms ≈ the absolute lifetime`);
  });

  test('a session not signed in is stored without a user index', async () => {
    const indexes = await client.keys('parley:user-sessions:*');
    await set(store, 'sid-anonymous', sessionData(undefined));
    assert.equal((await get(store, 'sid-anonymous'))?.user, undefined);
    assert.ok(await client.exists(KEY('sid-anonymous')));
    assert.deepEqual((await client.keys('parley:user-sessions:*')).sort(), indexes.sort());
  });

  test('Redis ends a session at its deadline (the key expires)', async () => {
    await set(store, 'sid-expiring', sessionData('alice', Date.now() - IDLE_MS + 300));
    assert.ok(await get(store, 'sid-expiring'), 'live before its deadline');
    await sleep(500); // deadline + 200 ms
    assert.equal(await client.exists(KEY('sid-expiring')), 0);
    assert.equal(await get(store, 'sid-expiring'), null);
  });

  test('a read re-checks the deadline: a key that outlives it (e.g. restored from a backup) reads as no session', async () => {
    await client.set(KEY('sid-stale'), JSON.stringify(sessionData('alice', Date.now() - IDLE_MS - 1000)), { expiration: { type: 'PX', value: 60_000 } });
    assert.equal(await get(store, 'sid-stale'), null);
  });

  test('set with a deadline already past deletes the session instead of writing it', async () => {
    await set(store, 'sid-late', sessionData('alice'));
    await set(store, 'sid-late', sessionData('alice', Date.now() - IDLE_MS - 1));
    assert.equal(await client.exists(KEY('sid-late')), 0);
  });

  test('a session created under an older credential version reads as no session (ASVS 7.4.3)', async () => {
    await set(store, 'sid-carol', sessionData('carol', Date.now(), 1));
    assert.equal((await get(store, 'sid-carol'))?.user, 'carol');
    versions.set('carol', 2); // her password changed
    assert.equal(await get(store, 'sid-carol'), null);
  });

  test('destroy removes the key', async () => {
    await set(store, 'sid-logout', sessionData('alice'));
    await destroy(store, 'sid-logout');
    assert.equal(await client.exists(KEY('sid-logout')), 0);
    assert.equal(await get(store, 'sid-logout'), null);
  });

  test('extend moves the deadline of a live session, and never brings an ended one back', async () => {
    await set(store, 'sid-active', sessionData('alice', Date.now() - 1000));
    const before = await client.pTTL(KEY('sid-active'));
    await store.extend('sid-active', sessionData('alice', Date.now()));
    const afterExtend = await client.pTTL(KEY('sid-active'));
    assert.ok(afterExtend > before + 500, `PTTL ${before} → ${afterExtend} ms`);

    await destroy(store, 'sid-active');
    await store.extend('sid-active', sessionData('alice', Date.now())); // a request that read it before the logout
    assert.equal(await client.exists(KEY('sid-active')), 0, 'SET … XX: the ended session stays ended');
  });

  test("no touch(): express-session cannot rewrite a session's TTL from the copy it read at the start of a request", () => {
    // express-session calls store.touch only if it is a function; activity goes through extend.
    assert.equal(typeof (store as { touch?: unknown }).touch, 'undefined');
  });

  test("destroyAllOf ends the user's other sessions, keeps the one named, and no one else's", async () => {
    for (const sid of ['dave-1', 'dave-2', 'dave-3']) await set(store, sid, sessionData('dave'));
    await set(store, 'erin-1', sessionData('erin'));
    assert.equal(await store.destroyAllOf('dave', 'dave-2'), 2);
    assert.equal(await get(store, 'dave-1'), null);
    assert.equal((await get(store, 'dave-2'))?.user, 'dave');
    assert.equal(await get(store, 'dave-3'), null);
    assert.equal((await get(store, 'erin-1'))?.user, 'erin');
    assert.deepEqual(await client.sMembers('parley:user-sessions:dave'), [sessionIdHash('dave-2')]);
  });

  // Last: stops Redis.
  test('while Redis is down every operation fails at once with StoreUnavailableError (a 503 upstream), not a hang', async () => {
    await redis.stop();
    const started = Date.now();
    await assert.rejects(get(store, 'sid-layout'), StoreUnavailableError);
    await assert.rejects(set(store, 'sid-layout', sessionData('alice')), StoreUnavailableError);
    await assert.rejects(destroy(store, 'sid-layout'), StoreUnavailableError);
    await assert.rejects(store.extend('sid-layout', sessionData('alice')), StoreUnavailableError);
    await assert.rejects(store.destroyAllOf('alice'), StoreUnavailableError);
    // Generous bound (a loaded 2-core machine): without the offline queue nothing waits for a reconnect.
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });
});
