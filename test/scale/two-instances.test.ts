// requires: redis, postgres
// Two Parley processes against one real Redis and one real PostgreSQL: a session made on
// one instance works on the other, room messages cross instances exactly once, and a
// logout or password change on A closes the user's sockets on B within a second.
// Run: npx node --test test/scale/two-instances.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { CLOSE } from '../../shared/protocol.ts';
import { nextEvent } from '../helpers/rooms.ts';
import { joined, login, open, PASSWORD, request, sessionCookie, signUp, sleep, type Client } from '../helpers/server.ts';
import { freePort, spawnParley, startPostgres, startRedis, type ParleyProcess, type PostgresService, type RedisService } from '../helpers/services.ts';

const FAST = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000', LOGIN_ACCOUNT_FREE_FAILURES: '3' };

/** Messages of `room` with this id among the frames a client has received so far. */
function copies(client: Client, id: number): number {
  return client.frames.filter((f) => f.type === 'message' && f.id === id).length;
}

describe('two instances, one Redis, one PostgreSQL', () => {
  let redis: RedisService;
  let postgres: PostgresService;
  let a: ParleyProcess;
  let b: ParleyProcess;

  before(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    const [portA, portB] = [await freePort(), await freePort()];
    const env = {
      ...FAST,
      REDIS_URL: redis.url,
      DATABASE_URL: postgres.url,
      // Shared by every instance: the cookie signature must verify everywhere.
      SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      APP_ORIGIN: `https://localhost:${portA},https://localhost:${portB}`,
    };
    // Started together on an empty database: the migration advisory lock makes them take turns.
    // allSettled: if one fails to start, the other is still kept (and closed in after()), not left running
    // with its output piped to this process, which would then never exit.
    const started = await Promise.allSettled([spawnParley({ port: portA, env }), spawnParley({ port: portB, env })]);
    if (started[0].status === 'fulfilled') a = started[0].value;
    if (started[1].status === 'fulfilled') b = started[1].value;
    for (const result of started) if (result.status === 'rejected') throw result.reason;
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
    await postgres?.destroy();
  });

  test('both instances started against one empty database: the schema was migrated exactly once', async () => {
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      // Each migration once (1: the schema; 2: credential versions and client ids; 3: invitations;
      // 4: message source text; 5: remembered declines), not once per instance.
      assert.deepEqual(
        rows.map((r) => r.version),
        [1, 2, 3, 4, 5],
      );
    } finally {
      await client.end();
    }
  });

  test('a user registered on A logs in on B; a cookie issued by A works for /api/me and the upgrade on B', async () => {
    const cookie = await signUp(a, 'alice');
    const me = await request(b, 'GET', '/api/me', { cookie });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json, { username: 'alice' });
    const onB = await open(b, cookie);
    assert.equal(onB.frames[0]?.type, 'rooms');
    onB.ws.close();
    assert.match(await login(b, 'alice'), /^__Host-parley\.sid=/);
  });

  test('a message sent on A reaches a client on B, once; the sender on A gets it once too', async () => {
    const aliceOnA = await joined(a, await login(a, 'alice'));
    const bobOnB = await joined(b, await signUp(b, 'bob'));
    aliceOnA.send({ type: 'send', room: 'lobby', text: 'hello from A', clientId: 'x1' });
    const ack = await aliceOnA.next('ack');
    const received = await bobOnB.next('message');
    assert.equal(received.id, ack.id);
    assert.equal(received.user, 'alice');
    assert.equal(received.html, 'hello from A');
    // And back: B → A. After that round trip, each side holds exactly one copy of each.
    bobOnB.send({ type: 'send', room: 'lobby', text: 'hello from B', clientId: 'y1' });
    const ackB = await bobOnB.next('ack');
    const back = await aliceOnA.next('message');
    if (back.id === ack.id) assert.equal((await aliceOnA.next('message')).id, ackB.id);
    await sleep(200); // room for a duplicate to show up, were there one
    assert.equal(copies(aliceOnA, ack.id), 1);
    assert.equal(copies(bobOnB, ack.id), 1);
    assert.equal(copies(aliceOnA, ackB.id), 1);
    assert.equal(copies(bobOnB, ackB.id), 1);
    // History is the same on both: one database.
    const fresh = await joined(a, await login(a, 'bob'));
    const history = fresh.frames.find((f) => f.type === 'history');
    assert.ok(history && history.type === 'history');
    assert.deepEqual(
      history.messages.slice(-2).map((m) => m.id),
      [ack.id, ackB.id],
    );
    for (const c of [aliceOnA, bobOnB, fresh]) c.ws.close();
  });

  test('removed from a private room on A, bob stops receiving it on B (and learns so at once)', async () => {
    await signUp(a, 'carol');
    const carolOnA = await open(a, await login(a, 'carol'));
    carolOnA.send({ type: 'create', room: 'team' });
    await carolOnA.next('room_added');
    const bobOnB = await open(b, await login(b, 'bob'));
    carolOnA.send({ type: 'invite', room: 'team', user: 'bob' });
    const invited = await bobOnB.next('invitation_added');
    assert.deepEqual(invited.invitation, { room: 'team', from: 'carol' }, 'the invitation made on A reaches bob on B');
    assert.equal(bobOnB.frames.filter((f) => f.type === 'room_added').length, 0, 'pending: not yet his room');
    // Accepted on A (bob's other socket): the room shows up on B at once, as one room_added.
    carolOnA.send({ type: 'join', room: 'team' });
    await carolOnA.next('history');
    const bobOnA = await open(a, await login(a, 'bob'));
    bobOnA.send({ type: 'accept', room: 'team' });
    assert.equal((await bobOnA.next('room_added')).room.name, 'team');
    assert.deepEqual((await bobOnB.next('room_added')).room, { name: 'team', private: true, owner: 'carol' }, 'the accept made on A reaches bob on B');
    assert.deepEqual(await bobOnB.next('invitation_removed'), { type: 'invitation_removed', room: 'team' });
    bobOnA.ws.close();
    bobOnB.send({ type: 'join', room: 'team' });
    await bobOnB.next('history');
    carolOnA.send({ type: 'send', room: 'team', text: 'before removal', clientId: 't1' });
    assert.equal((await bobOnB.next('message')).html, 'before removal');

    carolOnA.send({ type: 'remove', room: 'team', user: 'bob' });
    const removed = await bobOnB.next('room_removed');
    assert.equal(removed.room, 'team');
    carolOnA.send({ type: 'send', room: 'team', text: 'after removal', clientId: 't2' });
    await carolOnA.next('ack');
    await carolOnA.next('message');
    await sleep(300);
    assert.ok(!bobOnB.frames.some((f) => f.type === 'message' && f.html === 'after removal'));
    carolOnA.ws.close();
    bobOnB.ws.close();
  });

  test('presence across instances: a member online on B shows on A, and goes offline there when the socket on B closes; a stranger on B learns nothing', async () => {
    await signUp(a, 'pres-owner');
    await signUp(a, 'pres-guest');
    await signUp(a, 'pres-spy');
    const ownerOnA = await joined(a, await login(a, 'pres-owner'));
    ownerOnA.send({ type: 'create', room: 'presence-room' });
    await ownerOnA.next('room_added');
    ownerOnA.send({ type: 'join', room: 'presence-room' });
    const own = await ownerOnA.next('presence');
    assert.deepEqual(own.online, ['pres-owner']);
    const guestOnB = await open(b, await login(b, 'pres-guest'));
    ownerOnA.send({ type: 'invite', room: 'presence-room', user: 'pres-guest' });
    await guestOnB.next('invitation_added');
    guestOnB.send({ type: 'accept', room: 'presence-room' });
    await guestOnB.next('room_added');
    // The owner's own invitation line first, then the join line of the accept made on B.
    assert.deepEqual(await nextEvent(ownerOnA, 'presence-room', 'invited', 'pres-guest').then((l) => l.by), 'pres-owner');
    await nextEvent(ownerOnA, 'presence-room', 'joined', 'pres-guest', 5000);
    guestOnB.send({ type: 'join', room: 'presence-room' });
    // The joiner on B sees the owner online on A; the owner on A sees the guest come online on B.
    const seen = await guestOnB.next('presence');
    assert.deepEqual(seen.online, ['pres-guest', 'pres-owner']);
    let change = await ownerOnA.next('presence_change');
    while (change.user !== 'pres-guest') change = await ownerOnA.next('presence_change');
    assert.equal(change.online, true);
    // A stranger on B asks: forbidden, and nothing about the room reaches them.
    const spyOnB = await open(b, await login(b, 'pres-spy'));
    spyOnB.send({ type: 'members', room: 'presence-room' });
    assert.equal((await spyOnB.next('error')).code, 'forbidden');
    guestOnB.ws.close();
    change = await ownerOnA.next('presence_change');
    assert.deepEqual(change, { type: 'presence_change', room: 'presence-room', user: 'pres-guest', online: false });
    await sleep(200);
    assert.deepEqual(
      spyOnB.frames.filter((f) => f.type !== 'rooms' && f.type !== 'invitations' && f.type !== 'error'),
      [],
    );
    ownerOnA.ws.close();
    spyOnB.ws.close();
  });

  test('logout on A closes that session’s socket on B with 1008 within a second', async () => {
    const cookie = await login(a, 'alice');
    const onB = await open(b, cookie);
    const started = Date.now();
    assert.equal((await request(a, 'POST', '/api/logout', { body: {}, cookie })).status, 204);
    const closed = await Promise.race([onB.closed, sleep(1000).then(() => undefined)]);
    assert.ok(closed, `socket on B still open ${Date.now() - started} ms after logout on A`);
    assert.equal(closed.code, CLOSE.policyViolation);
    // And the session is gone on B as well.
    assert.equal((await request(b, 'GET', '/api/me', { cookie })).status, 401);
  });

  test('a password change on A closes the user’s sockets on B and ends the other sessions there', async () => {
    const onA = await login(a, 'alice');
    const other = await login(b, 'alice');
    const socketOnB = await open(b, other);
    const reply = await request(a, 'POST', '/api/password', {
      body: { currentPassword: PASSWORD, newPassword: 'an entirely new passphrase' },
      cookie: onA,
    });
    assert.equal(reply.status, 204);
    const closed = await Promise.race([socketOnB.closed, sleep(1000).then(() => undefined)]);
    assert.ok(closed, 'socket on B still open a second after the password change on A');
    assert.equal(closed.code, CLOSE.policyViolation);
    assert.equal((await request(b, 'GET', '/api/me', { cookie: other })).status, 401);
    // The browser that changed it stays signed in, under the fresh session id the reply set.
    assert.equal((await request(b, 'GET', '/api/me', { cookie: sessionCookie(reply) })).status, 200, 'the session that changed the password stays');
    assert.equal((await request(b, 'GET', '/api/me', { cookie: onA })).status, 401, 'its old id is no longer a session');
  });

  test('login throttling is shared: failures spread over A and B lock the account on both', async () => {
    await signUp(a, 'dave');
    const wrong = { username: 'dave', password: 'not the right passphrase' };
    for (const server of [a, b, a]) {
      assert.equal((await request(server, 'POST', '/api/login', { body: wrong })).status, 401);
    }
    // Third failure reached LOGIN_ACCOUNT_FREE_FAILURES=3 across the two instances: B refuses even the right password.
    const locked = await request(b, 'POST', '/api/login', { body: { username: 'dave', password: PASSWORD } });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) >= 1);
  });

  test('sessions are stored in Redis under hashed ids only: the raw session id is not a key', async () => {
    const cookie = await login(a, 'bob');
    const sid = decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!;
    const { createClient } = await import('@redis/client');
    const client = createClient({ url: redis.url });
    await client.connect();
    try {
      const keys = await client.keys('parley:sess:*');
      assert.ok(keys.length > 0);
      assert.ok(!keys.some((k) => k.includes(sid)), 'a raw session id appears in a Redis key');
      const hash = crypto.createHash('sha256').update(sid).digest('base64url');
      assert.ok(keys.includes(`parley:sess:${hash}`));
      const ttl = await client.ttl(`parley:sess:${hash}`);
      assert.ok(ttl > 0 && ttl <= 1800, `TTL ${ttl} s follows the idle timeout`);
    } finally {
      client.destroy();
    }
  });
});
