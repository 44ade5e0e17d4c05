// requires: postgres
// Room authorization over real WSS: the lobby is open, private rooms admit members only
// (an invitation is not a membership until it is accepted), and the check is made against
// the store on every frame (join, history, send, invite, accept, remove), never remembered
// from an earlier join.
// Run: npx node --test test/rooms.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorFrame, MessageFrame, RoomsFrame, ServerFrame } from '../shared/protocol.ts';
import { RACE_BACKENDS, on } from './helpers/backends.ts';
import { joined, open, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';

const roomNames = (frame: RoomsFrame): string[] => frame.rooms.map((r) => r.name);

/** Frames received after index `from` (inclusive) of the given type. */
function framesOf<T extends ServerFrame['type']>(client: Client, type: T, from = 0): Array<Extract<ServerFrame, { type: T }>> {
  return client.frames.slice(from).filter((f): f is Extract<ServerFrame, { type: T }> => f.type === type);
}

/** Sends a frame and waits for the error frame it provokes. */
async function refused(client: Client, frame: unknown): Promise<ErrorFrame> {
  client.send(frame);
  return client.next('error');
}

/** Sends a chat message with a clientId and waits for its ack; returns the message id. */
async function post(client: Client, room: string, text: string, clientId: string): Promise<number> {
  client.send({ type: 'send', room, text, clientId });
  const ack = await client.next('ack');
  assert.equal(ack.clientId, clientId);
  return ack.id;
}

// ASVS 8.2.1 / 8.2.2, OWASP WS cheat sheet: authorize every message, per room, against the store.
// On SQLite as it runs, and on the backends that open the gap between a check and its act.
for (const backend of [{ name: 'SQLite', options: async () => ({}) }, ...RACE_BACKENDS])
  describe(`private rooms: membership is checked on every frame — ${backend.name}`, () => {
    let server: TestServer;
    let alice: Client; // owner of `secret`
    let bob: Client; // invited, then removed
    let bob2: Client; // a second socket of bob
    let carol: Client; // stranger, later a non-owner member
    let cookies: { alice: string; bob: string; carol: string };

    before(async () => {
      server = await startServer(await on(backend, { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' }));
      cookies = {
        alice: await signUp(server, 'alice'),
        bob: await signUp(server, 'bob'),
        carol: await signUp(server, 'carol'),
      };
      alice = await joined(server, cookies.alice);
      bob = await joined(server, cookies.bob);
      bob2 = await open(server, cookies.bob);
      carol = await joined(server, cookies.carol);
    });

    after(async () => {
      for (const c of [alice, bob, bob2, carol]) c?.ws.close();
      await server?.close();
    });

    test('the lobby is open to every signed-in user: a message from alice reaches bob and carol', async () => {
      const id = await post(alice, 'lobby', 'hello lobby', 'lobby-1');
      const [atBob, atCarol] = await Promise.all([bob.next('message'), carol.next('message')]);
      for (const m of [atBob, atCarol]) {
        assert.equal(m.room, 'lobby');
        assert.equal(m.id, id);
        assert.equal(m.user, 'alice');
        assert.equal(m.html, 'hello lobby');
      }
    });

    test('alice creates private room "secret": a room_added frame lists it as private, owned by her', async () => {
      alice.send({ type: 'create', room: 'secret' });
      const added = await alice.next('room_added');
      assert.deepEqual(added.room, { name: 'secret', private: true, owner: 'alice' });
      alice.send({ type: 'join', room: 'secret' });
      const history = await alice.next('history');
      assert.equal(history.room, 'secret');
      assert.deepEqual(history.messages, []);
    });

    test('bob (not a member) does not see "secret" in his rooms frame, even on a fresh connection', async () => {
      const fresh = await connectAndReadRooms(server, cookies.bob);
      assert.ok(roomNames(fresh).includes('lobby'));
      assert.ok(!roomNames(fresh).includes('secret'), `rooms: ${JSON.stringify(fresh.rooms)}`);
      // and creating the room pushed nothing to bob's open sockets
      assert.ok(framesOf(bob, 'rooms').every((f) => !roomNames(f).includes('secret')));
    });

    test('bob joining "secret" is refused forbidden (and the refusal is audit-logged)', async () => {
      const error = await refused(bob, { type: 'join', room: 'secret' });
      assert.equal(error.code, 'forbidden');
      assert.ok(server.logs.some((l) => l.includes('"ws_forbidden"') && l.includes('"user":"bob"') && l.includes('"room":"secret"')));
    });

    test('bob requesting history of "secret" ({before: 999}) is refused forbidden, no history frame', async () => {
      const historiesBefore = framesOf(bob, 'history').length;
      const error = await refused(bob, { type: 'history', room: 'secret', before: 999 });
      assert.equal(error.code, 'forbidden');
      assert.equal(framesOf(bob, 'history').length, historiesBefore);
    });

    test('bob sending to "secret" is refused forbidden (with his clientId) and never reaches alice', async () => {
      const aliceMark = alice.frames.length;
      const error = await refused(bob, { type: 'send', room: 'secret', text: 'let me in', clientId: 'b-intrude' });
      assert.equal(error.code, 'forbidden');
      assert.equal(error.clientId, 'b-intrude');
      // A marker from alice after bob's attempt: when it arrives, bob's message would have too.
      const markerId = await post(alice, 'secret', 'marker after intrusion', 'a-mark-1');
      const marker = await alice.next('message');
      assert.equal(marker.id, markerId);
      const inSecret = framesOf(alice, 'message', aliceMark).filter((m) => m.room === 'secret');
      assert.deepEqual(
        inSecret.map((m) => m.user),
        ['alice'],
      );
      // Nor is it stored: alice's history of the room holds only her marker.
      alice.send({ type: 'join', room: 'secret' });
      const history = await alice.next('history');
      assert.deepEqual(
        history.messages.map((m) => m.user),
        ['alice'],
      );
      assert.ok(!history.messages.some((m) => m.html.includes('let me in')));
      // The refused join did not subscribe bob: alice's marker never reached him. (A lobby
      // message sent after it is delivered to bob after the marker would have been.)
      const lobbyId = await post(alice, 'lobby', 'lobby sync', 'a-sync-1');
      assert.equal((await nextIn(bob, 'lobby')).id, lobbyId);
      assert.deepEqual(
        framesOf(bob, 'message').filter((m) => m.room === 'secret'),
        [],
      );
    });

    test('carol (a stranger) cannot invite herself or remove anyone: forbidden', async () => {
      assert.equal((await refused(carol, { type: 'invite', room: 'secret', user: 'carol' })).code, 'forbidden');
      assert.equal((await refused(carol, { type: 'remove', room: 'secret', user: 'alice' })).code, 'forbidden');
      // and she still cannot join
      assert.equal((await refused(carol, { type: 'join', room: 'secret' })).code, 'forbidden');
    });

    test('nobody can manage members of the lobby (invite/remove there is forbidden)', async () => {
      assert.equal((await refused(alice, { type: 'remove', room: 'lobby', user: 'bob' })).code, 'forbidden');
      assert.equal((await refused(carol, { type: 'invite', room: 'lobby', user: 'bob' })).code, 'forbidden');
    });

    test('alice invites bob: both of his open sockets see the pending invitation (who, to what); the room is not his until he accepts', async () => {
      alice.send({ type: 'invite', room: 'secret', user: 'bob' });
      const [i1, i2] = await Promise.all([bob.next('invitation_added'), bob2.next('invitation_added')]);
      for (const i of [i1, i2]) assert.deepEqual(i.invitation, { room: 'secret', from: 'alice' });
      // Pending: no room_added, no join, no history, no send.
      assert.equal(framesOf(bob, 'room_added').length, 0);
      assert.equal((await refused(bob, { type: 'join', room: 'secret' })).code, 'forbidden');
      assert.equal((await refused(bob, { type: 'send', room: 'secret', text: 'early', clientId: 'b-early' })).code, 'forbidden');
      // A fresh socket lists the invitation on connect, and not the room.
      const fresh = await open(server, cookies.bob);
      const invitations = fresh.frames.find((f) => f.type === 'invitations');
      assert.deepEqual(invitations, { type: 'invitations', invitations: [{ room: 'secret', from: 'alice' }] });
      assert.ok(!roomNames(fresh.frames.find((f): f is RoomsFrame => f.type === 'rooms')!).includes('secret'));
      fresh.ws.close();
      // the stranger got nothing
      assert.ok(framesOf(carol, 'rooms').every((f) => !roomNames(f).includes('secret')));
      assert.equal(framesOf(carol, 'invitation_added').length, 0);
      // Bob accepts: both sockets get the room as one room_added, and the invitation goes.
      bob.send({ type: 'accept', room: 'secret' });
      const [r1, r2] = await Promise.all([bob.next('room_added'), bob2.next('room_added')]);
      for (const r of [r1, r2]) assert.deepEqual(r.room, { name: 'secret', private: true, owner: 'alice' });
      assert.deepEqual(await bob.next('invitation_removed'), { type: 'invitation_removed', room: 'secret' });
    });

    test('invited bob can join "secret", read its history and send; alice receives his message', async () => {
      bob.send({ type: 'join', room: 'secret' });
      const history = await bob.next('history');
      assert.equal(history.room, 'secret');
      assert.ok(history.messages.some((m) => m.html === 'marker after intrusion'));

      const oldest = history.messages[0]!.id;
      bob.send({ type: 'history', room: 'secret', before: 999 });
      const page = await bob.next('history');
      assert.equal(page.room, 'secret');
      assert.ok(page.messages.some((m) => m.id === oldest));

      const id = await post(bob, 'secret', 'thanks for the invite', 'b-1');
      const atAlice = await nextIn(alice, 'secret');
      assert.equal(atAlice.id, id);
      assert.equal(atAlice.user, 'bob');
    });

    test('carol as a non-owner member still cannot invite or remove: forbidden', async () => {
      alice.send({ type: 'invite', room: 'secret', user: 'carol' });
      await carol.next('invitation_added');
      carol.send({ type: 'accept', room: 'secret' });
      assert.equal((await carol.next('room_added')).room.name, 'secret');
      assert.equal((await refused(carol, { type: 'remove', room: 'secret', user: 'bob' })).code, 'forbidden');
      assert.equal((await refused(carol, { type: 'remove', room: 'secret', user: 'alice' })).code, 'forbidden');
      assert.equal((await refused(carol, { type: 'invite', room: 'secret', user: 'alice' })).code, 'forbidden');
      // bob is still a member: his send is accepted
      await post(bob, 'secret', 'still here', 'b-2');
    });

    test('alice removes bob: his sockets get room_removed "secret"; his very next send on the open, joined socket is forbidden', async () => {
      const bobMark = bob.frames.length;
      alice.send({ type: 'remove', room: 'secret', user: 'bob' });
      const [r1, r2] = await Promise.all([bob.next('room_removed'), bob2.next('room_removed')]);
      assert.equal(r1.room, 'secret');
      assert.equal(r2.room, 'secret');

      const error = await refused(bob, { type: 'send', room: 'secret', text: 'am I still in?', clientId: 'b-after' });
      assert.equal(error.code, 'forbidden');
      assert.equal(error.clientId, 'b-after');
      assert.equal(framesOf(bob, 'ack', bobMark).length, 0, 'no ack after removal');
      assert.equal((await refused(bob, { type: 'history', room: 'secret', before: 999 })).code, 'forbidden');
      assert.equal((await refused(bob, { type: 'join', room: 'secret' })).code, 'forbidden');
      assert.equal((await refused(bob2, { type: 'send', room: 'secret', text: 'other tab', clientId: 'b2' })).code, 'forbidden');
    });

    test('removed bob no longer receives messages posted in "secret"', async () => {
      const bobMark = bob.frames.length;
      // alice's frames are processed in order: the secret message is broadcast before the lobby one,
      // so once bob has the lobby message, a secret message for him would already have arrived.
      await post(alice, 'secret', 'bob is gone', 'a-secret-2');
      const lobbyId = await post(alice, 'lobby', 'lobby after removal', 'a-lobby-2');
      const lobbyMsg = await bob.next('message');
      assert.equal(lobbyMsg.id, lobbyId);
      assert.equal(lobbyMsg.room, 'lobby');
      await sleep(50);
      assert.deepEqual(
        framesOf(bob, 'message', bobMark).filter((m) => m.room === 'secret'),
        [],
      );
      assert.deepEqual(
        framesOf(bob2, 'message').filter((m) => m.room === 'secret'),
        [],
      );
      // carol, still a member who never joined this socket to the room, can join and see it
      carol.send({ type: 'join', room: 'secret' });
      const history = await carol.next('history');
      assert.ok(history.messages.some((m) => m.html === 'bob is gone'));
    });

    test('create with an existing room name is refused room_exists (owner unchanged)', async () => {
      assert.equal((await refused(bob, { type: 'create', room: 'secret' })).code, 'room_exists');
      const fresh = await connectAndReadRooms(server, cookies.alice);
      assert.deepEqual(
        fresh.rooms.find((r) => r.name === 'secret'),
        { name: 'secret', private: true, owner: 'alice' },
      );
      // bob did not become a member through the failed create
      assert.equal((await refused(bob, { type: 'join', room: 'secret' })).code, 'forbidden');
    });

    test('create "lobby" is refused room_exists', async () => {
      assert.equal((await refused(carol, { type: 'create', room: 'lobby' })).code, 'room_exists');
    });

    test('invite of a nonexistent user is refused no_such_user', async () => {
      assert.equal((await refused(alice, { type: 'invite', room: 'secret', user: 'nobody-here' })).code, 'no_such_user');
    });

    test('join of a nonexistent room is refused no_such_room', async () => {
      assert.equal((await refused(bob, { type: 'join', room: 'no-such-room' })).code, 'no_such_room');
      assert.equal((await refused(bob, { type: 'history', room: 'no-such-room', before: 5 })).code, 'no_such_room');
      assert.equal((await refused(bob, { type: 'send', room: 'no-such-room', text: 'x', clientId: 'n' })).code, 'no_such_room');
    });
  });

// ASVS 8.2 (authorized reads only) + protocol: paged history, acks tied to stored messages
describe('history pagination and acks', () => {
  let server: TestServer;
  let writer: Client;
  let reader: Client;
  const acks = new Map<string, number>(); // clientId → id

  before(async () => {
    server = await startServer({ env: { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' } });
    const cookie = await signUp(server, 'writer');
    writer = await open(server, cookie);
    writer.send({ type: 'create', room: 'pages' });
    await writer.next('room_added');
    writer.send({ type: 'join', room: 'pages' });
    await writer.next('history');
    for (let i = 1; i <= 60; i++) writer.send({ type: 'send', room: 'pages', text: `message ${i}`, clientId: `c${i}` });
    for (let i = 1; i <= 60; i++) {
      const ack = await writer.next('ack');
      acks.set(ack.clientId, ack.id);
    }
    reader = await open(server, cookie);
  });

  after(async () => {
    writer?.ws.close();
    reader?.ws.close();
    await server?.close();
  });

  test('every ack carries its clientId, and its id equals the broadcast message id', () => {
    assert.equal(acks.size, 60);
    const broadcast = framesOf(writer, 'message').filter((m) => m.room === 'pages');
    assert.equal(broadcast.length, 60);
    for (let i = 1; i <= 60; i++) {
      const message = broadcast[i - 1]!;
      assert.equal(message.html, `message ${i}`);
      assert.equal(acks.get(`c${i}`), message.id, `ack c${i}`);
      assert.equal(message.user, 'writer');
    }
    const ids = broadcast.map((m) => m.id);
    assert.equal(new Set(ids).size, 60, 'ids are unique');
  });

  test('join returns the 50 latest messages, oldest first, with more: true', async () => {
    reader.send({ type: 'join', room: 'pages' });
    const page = await reader.next('history');
    assert.equal(page.room, 'pages');
    assert.equal(page.messages.length, 50);
    assert.equal(page.more, true);
    assert.deepEqual(
      page.messages.map((m) => m.html),
      Array.from({ length: 50 }, (_, k) => `message ${k + 11}`),
    );
    assert.deepEqual(
      page.messages.map((m) => m.id),
      Array.from({ length: 50 }, (_, k) => acks.get(`c${k + 11}`)),
    );
  });

  test('history before the oldest id returns the remaining 10, oldest first, with more: false', async () => {
    const oldest = acks.get('c11')!;
    reader.send({ type: 'history', room: 'pages', before: oldest });
    const page = await reader.next('history');
    assert.equal(page.room, 'pages');
    assert.equal(page.more, false);
    assert.deepEqual(
      page.messages.map((m) => m.html),
      Array.from({ length: 10 }, (_, k) => `message ${k + 1}`),
    );
    assert.deepEqual(
      page.messages.map((m) => m.id),
      Array.from({ length: 10 }, (_, k) => acks.get(`c${k + 1}`)),
    );
  });
});

/** Opens a fresh socket, returns its first rooms frame, closes it. */
async function connectAndReadRooms(server: TestServer, cookie: string): Promise<RoomsFrame> {
  const client = await open(server, cookie);
  const frame = client.frames.find((f): f is RoomsFrame => f.type === 'rooms')!;
  client.ws.close();
  await client.closed;
  return frame;
}

/** Next message frame of a given room. */
async function nextIn(client: Client, room: string): Promise<MessageFrame> {
  for (;;) {
    const m = await client.next('message');
    if (m.room === room) return m;
  }
}
