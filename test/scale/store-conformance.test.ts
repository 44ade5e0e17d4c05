// requires: redis, postgres
// One storage interface, every implementation: the same behaviour checks run against
// SQLite, PostgreSQL, and the Redis-sessions combination (openBackend with REDIS_URL),
// each on a real engine. Plus PostgreSQL's migration discipline under concurrent starts.
// Run: npx node --test test/scale/store-conformance.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SessionData } from 'express-session';
import pg from 'pg';
import { createClient } from '@redis/client';
import { loadConfig } from '../../server/config.ts';
import { createAuditLog } from '../../server/security/audit-log.ts';
import { openBackend } from '../../server/backends.ts';
import { migrate } from '../../server/store/postgres.ts';
import { sessionIdHash } from '../../server/store/session-id.ts';
import type { ParleyStore } from '../../server/store/store.ts';
import { freshDatabase, startPostgres, startRedis, type PostgresService, type RedisService } from '../helpers/services.ts';

const CAPS = { roomsPerOwner: 100, membershipsPerUser: 100, pendingPerInvitee: 100, pendingPerInviter: 100, declineMs: 1000 };

type Engine = { name: string; env: () => Record<string, string> };

let postgres: PostgresService;
let redis: RedisService;
const dirs: string[] = [];

before(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
});
after(async () => {
  await redis?.stop();
  await postgres?.destroy();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const ENGINES: Engine[] = [
  { name: 'SQLite', env: () => ({}) },
  { name: 'PostgreSQL', env: () => ({ DATABASE_URL: databaseUrls.get('PostgreSQL')! }) },
  { name: 'SQLite + Redis sessions', env: () => ({ REDIS_URL: redis.url }) },
  { name: 'PostgreSQL + Redis sessions', env: () => ({ DATABASE_URL: databaseUrls.get('PostgreSQL + Redis sessions')!, REDIS_URL: redis.url }) },
];
const databaseUrls = new Map<string, string>();

/** Session data as the login route writes it. */
/** Session data of a signed-in user, under the credential version given (the store's users: alice is at 2 after her password change). */
function sessionData(user: string, createdAt: number, credentialVersion = user === 'alice' ? 2 : 1): SessionData {
  return {
    cookie: { originalMaxAge: null, path: '/', httpOnly: true, secure: true, sameSite: 'strict' },
    user,
    createdAt,
    lastSeenAt: createdAt,
    credentialVersion,
  } as unknown as SessionData;
}

const get = (store: ParleyStore, sid: string) =>
  new Promise<SessionData | null | undefined>((resolve, reject) => store.sessions.get(sid, (error, data) => (error ? reject(error) : resolve(data))));
const set = (store: ParleyStore, sid: string, data: SessionData) =>
  new Promise<void>((resolve, reject) => store.sessions.set(sid, data, (error) => (error ? reject(error) : resolve())));
const destroy = (store: ParleyStore, sid: string) =>
  new Promise<void>((resolve, reject) => store.sessions.destroy(sid, (error) => (error ? reject(error) : resolve())));

for (const [index, engine] of ENGINES.entries()) {
  describe(`ParleyStore on ${engine.name}`, () => {
    let store: ParleyStore;
    const idleMs = 1500;

    before(async () => {
      if (engine.name.startsWith('PostgreSQL')) databaseUrls.set(engine.name, await freshDatabase(postgres, `conformance_${index}`));
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-conformance-'));
      dirs.push(dataDir);
      const config = loadConfig({ DATA_DIR: dataDir, ...engine.env() }, []);
      const backend = await openBackend(
        config,
        createAuditLog(() => {}),
        (data) => Math.min(data.createdAt + 3_600_000, data.lastSeenAt + idleMs),
        'x'.repeat(64),
      );
      store = backend.store;
    });
    after(async () => {
      await store?.close();
    });

    test('users: created once (a second create of the name is refused), found, password hash replaced', async () => {
      assert.equal(await store.createUser('alice', 'hash-1', 1), true);
      assert.equal(await store.createUser('alice', 'hash-2', 2), false);
      assert.deepEqual(await store.findUser('alice'), { name: 'alice', passwordHash: 'hash-1', credentialVersion: 1 });
      assert.equal(await store.setPasswordHash('alice', 'hash-3'), 2, 'a password change moves the credential version on');
      assert.deepEqual(await store.findUser('alice'), { name: 'alice', passwordHash: 'hash-3', credentialVersion: 2 });
      assert.equal(await store.findUser('nobody'), undefined);
    });

    test('sessions: one created under an older credential version reads as no session (ASVS 7.4.3)', async () => {
      await store.createUser('vera', 'h', 1);
      const now = Date.now();
      await set(store, 'sid-vera', sessionData('vera', now, 1));
      assert.equal((await get(store, 'sid-vera'))?.user, 'vera');
      await store.setPasswordHash('vera', 'h2');
      assert.equal(await get(store, 'sid-vera'), null, 'the password change ended it without touching its row');
      await set(store, 'sid-vera2', sessionData('vera', now, 2));
      assert.equal((await get(store, 'sid-vera2'))?.user, 'vera');
    });

    test('rooms: the lobby exists; a private room is created once with its owner as member; membership comes from an accepted invitation and is removed', async () => {
      await store.createUser('bob', 'h', 1);
      assert.deepEqual(await store.findRoom('lobby'), { name: 'lobby', owner: null, private: false });
      assert.equal(await store.createRoom('team', 'alice', 5, CAPS), 'created');
      assert.equal(await store.createRoom('team', 'bob', 6, CAPS), 'exists');
      assert.deepEqual(await store.findRoom('team'), { name: 'team', owner: 'alice', private: true });
      assert.equal(await store.isMember('team', 'alice'), true);
      assert.equal(await store.isMember('team', 'bob'), false);
      assert.deepEqual(
        (await store.roomsFor('bob')).map((r) => r.name),
        ['lobby'],
      );
      assert.equal(await store.invite('team', 'bob', 'bob', 7, CAPS), 'forbidden', 'only the owner invites');
      assert.equal(await store.invite('team', 'alice', 'bob', 7, CAPS), 'invited');
      assert.equal(await store.invite('team', 'alice', 'bob', 8, CAPS), 'already_invited');
      assert.deepEqual(await store.invitationsFor('bob'), [{ room: 'team', from: 'alice' }]);
      assert.equal(await store.isMember('team', 'bob'), false, 'an invitation is not a membership');
      assert.deepEqual(
        (await store.roomsFor('bob')).map((r) => r.name),
        ['lobby'],
      );
      assert.deepEqual(await store.membersOf('team'), { members: ['alice'], invited: ['bob'] });
      assert.equal(await store.accept('team', 'bob', 9, CAPS), 'joined');
      assert.equal(await store.accept('team', 'bob', 9, CAPS), 'no_such_invitation', 'accepted once');
      assert.deepEqual(await store.invitationsFor('bob'), []);
      assert.equal(await store.invite('team', 'alice', 'bob', 10, CAPS), 'already_member');
      assert.deepEqual(await store.roomsFor('bob'), [
        { name: 'lobby', owner: null, private: false },
        { name: 'team', owner: 'alice', private: true },
      ]);
      assert.equal(await store.removeMember('team', 'bob'), 'member');
      assert.equal(await store.isMember('team', 'bob'), false);
      assert.equal(await store.removeMember('team', 'alice'), 'none', 'the owner is never removed');
      assert.equal(await store.leave('team', 'alice'), false, 'the owner cannot leave');
      assert.equal(await store.isMember('team', 'alice'), true);
      assert.equal(await store.invite('team', 'alice', 'bob', 11, CAPS), 'invited');
      assert.equal(await store.removeMember('team', 'bob'), 'invitation', 'a pending invitation is cancelled');
      assert.deepEqual(await store.decline('team', 'bob', 12, CAPS), [], 'nothing to decline');
    });

    test('rooms: caps are checked with the act (rooms per owner, memberships per user, pending invitations per invitee)', async () => {
      const tight = { roomsPerOwner: 2, membershipsPerUser: 3, pendingPerInvitee: 1, pendingPerInviter: 1, declineMs: 1000 };
      for (const name of ['cap-o', 'cap-m', 'cap-x']) await store.createUser(name, 'h', 1);
      assert.equal(await store.createRoom('cap-1', 'cap-o', 1, tight), 'created');
      assert.equal(await store.createRoom('cap-2', 'cap-o', 1, tight), 'created');
      assert.equal(await store.createRoom('cap-3', 'cap-o', 1, tight), 'too_many_rooms');
      assert.equal(await store.invite('cap-1', 'cap-o', 'cap-m', 1, tight), 'invited');
      assert.equal(await store.invite('cap-2', 'cap-o', 'cap-m', 1, tight), 'inviter_cap');
      assert.equal(await store.accept('cap-1', 'cap-m', 1, tight), 'joined');
      assert.equal(await store.createRoom('cap-m1', 'cap-m', 1, tight), 'created');
      assert.equal(await store.createRoom('cap-m2', 'cap-m', 1, tight), 'created');
      assert.equal(await store.invite('cap-2', 'cap-o', 'cap-m', 1, tight), 'invited');
      assert.equal(await store.accept('cap-2', 'cap-m', 1, tight), 'too_many_memberships');
      assert.equal(await store.isMember('cap-2', 'cap-m'), false);
      assert.deepEqual(await store.invitationsFor('cap-m'), [{ room: 'cap-2', from: 'cap-o' }], 'the invitation stays pending');
    });

    test('invitations: the total counts inviters, each inviter has a cap of their own, and a decline withdraws and refuses that inviter for declineMs', async () => {
      const caps = { roomsPerOwner: 10, membershipsPerUser: 10, pendingPerInvitee: 2, pendingPerInviter: 2, declineMs: 1000 };
      for (const name of ['dv', 'di1', 'di2', 'di3']) await store.createUser(name, 'h', 1);
      for (const inviter of ['di1', 'di2', 'di3'])
        for (const r of [1, 2, 3]) assert.equal(await store.createRoom(`${inviter}-${r}`, inviter, 1, caps), 'created');
      assert.equal(await store.invite('di1-1', 'di1', 'dv', 10, caps), 'invited');
      assert.equal(await store.invite('di1-2', 'di1', 'dv', 11, caps), 'invited', 'an inviter already holding a slot adds to it');
      assert.equal(await store.invite('di1-3', 'di1', 'dv', 12, caps), 'inviter_cap');
      assert.equal(await store.invite('di2-1', 'di2', 'dv', 13, caps), 'invited');
      assert.equal(await store.invite('di3-1', 'di3', 'dv', 14, caps), 'too_many_invitations', 'two inviters fill the two slots');
      assert.deepEqual((await store.decline('di1-1', 'dv', 100, caps)).sort(), ['di1-1', 'di1-2'], "all of that inviter's pending invitations");
      assert.deepEqual(await store.invitationsFor('dv'), [{ room: 'di2-1', from: 'di2' }]);
      assert.equal(await store.invite('di1-1', 'di1', 'dv', 101, caps), 'declined', 'the same room');
      assert.equal(await store.invite('di1-3', 'di1', 'dv', 1099, caps), 'declined', 'another room, within declineMs');
      assert.equal(await store.invite('di3-1', 'di3', 'dv', 102, caps), 'invited', 'the freed slot');
      assert.equal(await store.invite('di1-3', 'di1', 'dv', 1100, caps), 'too_many_invitations', 'declineMs later the decline no longer counts');
      // The decliner inviting the one they declined ends their decline.
      assert.deepEqual(await store.decline('di2-1', 'dv', 200, caps), ['di2-1']);
      assert.equal(await store.invite('di2-2', 'di2', 'dv', 201, caps), 'declined');
      assert.equal(await store.createRoom('dv-1', 'dv', 1, caps), 'created');
      assert.equal(await store.invite('dv-1', 'dv', 'di2', 202, caps), 'invited');
      assert.equal(await store.invite('di2-2', 'di2', 'dv', 203, caps), 'invited');
      // declineMs 0: a decline still withdraws, but is not remembered.
      const forgetful = { ...caps, declineMs: 0 };
      assert.deepEqual(await store.decline('di2-2', 'dv', 300, forgetful), ['di2-2']);
      assert.equal(await store.invite('di2-2', 'di2', 'dv', 300, forgetful), 'invited');
    });

    test('messages: ids increase; history pages are oldest-first with `more`, and `before` walks back to the start', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 23; i++) {
        const posted = await store.addMessage({ room: 'lobby', user: 'alice', text: `<b>m${i}</b>`, html: `<b>m${i}</b>`, ts: 1000 + i });
        assert.ok(posted.ok && !posted.duplicate);
        ids.push(posted.id);
      }
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!);
      const latest = await store.history('lobby', 10);
      assert.equal(latest.more, true);
      assert.deepEqual(
        latest.messages.map((m) => m.id),
        ids.slice(-10),
      );
      assert.deepEqual(latest.messages[9], { id: ids[22], user: 'alice', html: '<b>m22</b>', ts: 1022 });
      const older = await store.history('lobby', 10, latest.messages[0]!.id);
      assert.deepEqual(
        older.messages.map((m) => m.id),
        ids.slice(3, 13),
      );
      const oldest = await store.history('lobby', 10, older.messages[0]!.id);
      assert.deepEqual(
        oldest.messages.map((m) => m.id),
        ids.slice(0, 3),
      );
      assert.equal(oldest.more, false);
      assert.deepEqual(await store.history('team', 10), { messages: [], more: false });
    });

    test('messages: inserted only while the sender may post (member of a private room, or any room that is public), in the same statement', async () => {
      await store.createUser('mia', 'h', 1);
      assert.equal(await store.createRoom('den', 'alice', 9, CAPS), 'created');
      assert.deepEqual(await store.addMessage({ room: 'den', user: 'mia', text: 'x', html: 'x', ts: 1 }), { ok: false }, 'not a member');
      assert.deepEqual(await store.addMessage({ room: 'nowhere', user: 'mia', text: 'x', html: 'x', ts: 1 }), { ok: false }, 'no such room');
      assert.equal(await store.invite('den', 'alice', 'mia', 10, CAPS), 'invited');
      assert.deepEqual(await store.addMessage({ room: 'den', user: 'mia', text: 'x', html: 'x', ts: 1 }), { ok: false }, 'invited, not yet a member');
      assert.equal(await store.accept('den', 'mia', 10, CAPS), 'joined');
      const posted = await store.addMessage({ room: 'den', user: 'mia', text: 'hi', html: 'hi', ts: 2 });
      assert.equal(posted.ok, true);
      assert.equal(await store.leave('den', 'mia'), true);
      assert.deepEqual(await store.addMessage({ room: 'den', user: 'mia', text: 'after', html: 'after', ts: 3 }), { ok: false }, 'removed');
      assert.deepEqual(
        (await store.history('den', 10)).messages.map((m) => m.html),
        ['hi'],
      );
    });

    test('messages: a retried clientId is stored once and answers with the first id; other users and rooms have their own ids', async () => {
      const first = await store.addMessage({ room: 'lobby', user: 'alice', text: 'once', html: 'once', ts: 1, clientId: 'c-1' });
      const again = await store.addMessage({ room: 'lobby', user: 'alice', text: 'once', html: 'once', ts: 2, clientId: 'c-1' });
      assert.ok(first.ok && again.ok);
      assert.equal(first.duplicate, false);
      assert.deepEqual(again, { ok: true, id: first.id, duplicate: true });
      const bobs = await store.addMessage({ room: 'lobby', user: 'bob', text: 'mine', html: 'mine', ts: 3, clientId: 'c-1' });
      assert.ok(bobs.ok && !bobs.duplicate && bobs.id !== first.id);
      const latest = await store.history('lobby', 3);
      assert.deepEqual(
        latest.messages.slice(-2).map((m) => [m.user, m.html]),
        [
          ['alice', 'once'],
          ['bob', 'mine'],
        ],
        'the retry stored nothing',
      );
    });

    test('sessions: stored, read back, destroyed; unreadable once their deadline (idle timeout) has passed', async () => {
      const now = Date.now();
      await set(store, 'sid-one', sessionData('alice', now));
      assert.equal((await get(store, 'sid-one'))?.user, 'alice');
      await destroy(store, 'sid-one');
      assert.equal(await get(store, 'sid-one'), null);
      await set(store, 'sid-short', sessionData('alice', now));
      await new Promise((resolve) => setTimeout(resolve, idleMs + 100));
      assert.equal(await get(store, 'sid-short'), null);
    });

    test('sessions: destroyAllOf ends every session of the user but the one kept, and no other user’s', async () => {
      const now = Date.now();
      for (const sid of ['a1', 'a2', 'a3']) await set(store, sid, sessionData('alice', now));
      await set(store, 'b1', sessionData('bob', now));
      assert.equal(await store.sessions.destroyAllOf('alice', 'a2'), 2);
      assert.equal(await get(store, 'a1'), null);
      assert.equal((await get(store, 'a2'))?.user, 'alice');
      assert.equal(await get(store, 'a3'), null);
      assert.equal((await get(store, 'b1'))?.user, 'bob');
    });

    if (engine.name.includes('Redis')) {
      test('Redis: the key is the hash of the session id, with a TTL that follows the session deadline', async () => {
        await set(store, 'raw-session-id', sessionData('alice', Date.now()));
        const client = createClient({ url: redis.url });
        await client.connect();
        try {
          assert.equal(await client.exists('parley:sess:raw-session-id'), 0);
          const ttl = await client.pTTL(`parley:sess:${sessionIdHash('raw-session-id')}`);
          assert.ok(ttl > 0 && ttl <= 2000, `TTL ${ttl} ms ≈ the 1.5 s idle deadline (whole seconds in Redis)`);
        } finally {
          client.destroy();
        }
      });
    }
  });
}

describe('PostgreSQL migrations', () => {
  test('five instances migrating one empty database at once: no error, each migration applied once', async () => {
    const url = await freshDatabase(postgres, 'migration_race');
    const pools = Array.from({ length: 5 }, () => new pg.Pool({ connectionString: url, max: 1 }));
    // An idle client cut by the server (this file's teardown stops PostgreSQL) emits 'error' on its
    // pool; without a listener that is an uncaught exception in whichever test runs then. Errors
    // while migrating still fail the test: they reject the migrate() and query() promises.
    for (const pool of pools) pool.on('error', () => {});
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool)));
      assert.ok(results.every((version) => version === results[0]));
      const { rows } = await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(
        rows.map((r) => r.version),
        Array.from({ length: results[0]! }, (_, i) => i + 1),
      );
      const lobby = await pools[0]!.query('SELECT count(*)::int AS n FROM rooms WHERE name = $1', ['lobby']);
      assert.equal(lobby.rows[0].n, 1);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });
});
