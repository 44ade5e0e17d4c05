// requires: postgres
// Rooms with consent over real WSS: an invitation is pending until the invitee accepts or
// declines it; members leave; the owner removes members and cancels invitations from the
// member list; caps bound what one user can hold or push at another; room lists change by
// deltas; presence and the join/leave/invite lines are scoped like messages.
// On SQLite as it runs, and on the backends that open the gap between a check and its act.
// Run: npx node --test test/rooms-consent.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorFrame, ServerFrame } from '../shared/protocol.ts';
import { RACE_BACKENDS, on } from './helpers/backends.ts';
import { inviteAndAccept, nextEvent } from './helpers/rooms.ts';
import { connect, joined, open, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';

const FAST = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' };

async function refused(client: Client, frame: unknown): Promise<ErrorFrame> {
  client.send(frame);
  return client.next('error');
}

const ofRoom = (client: Client, room: string, from = 0): ServerFrame[] =>
  client.frames.slice(from).filter((f) => 'room' in f && (f.room === room || (typeof f.room === 'object' && f.room.name === room)));

/**
 * Sends a members request and waits for its answer: every earlier frame of this socket was
 * handled (one frame at a time per socket). A server without the frame answers unknown_type.
 */
async function settled(client: Client, room: string): Promise<ServerFrame> {
  const from = client.frames.length;
  client.send({ type: 'members', room });
  for (;;) {
    await sleep(5);
    const answer = client.frames.slice(from).find((f) => (f.type === 'members' && f.room === room) || (f.type === 'error' && f.code === 'unknown_type'));
    if (answer) return answer;
    if (client.ws.readyState !== client.ws.OPEN) throw new Error('closed');
  }
}

for (const backend of [{ name: 'SQLite', options: async () => ({}) }, ...RACE_BACKENDS])
  describe(`rooms with consent — ${backend.name}`, () => {
    let server: TestServer;
    let owner: Client; // owns "club"
    let guest: Client; // invited; accepts
    let shy: Client; // invited; declines
    let stranger: Client; // never invited
    let cookies: Record<string, string>;

    before(async () => {
      server = await startServer(await on(backend, FAST));
      cookies = {};
      for (const name of ['owner', 'guest', 'shy', 'stranger', 'later', 'maybe']) cookies[name] = await signUp(server, name);
      owner = await joined(server, cookies['owner']!);
      guest = await joined(server, cookies['guest']!);
      shy = await joined(server, cookies['shy']!);
      stranger = await joined(server, cookies['stranger']!);
      owner.send({ type: 'create', room: 'club' });
      assert.equal((await owner.next('room_added')).room.name, 'club');
      owner.send({ type: 'join', room: 'club' });
      await owner.next('history');
    });

    after(async () => {
      for (const c of [owner, guest, shy, stranger]) c?.ws.close();
      await server?.close();
    });

    test('an invitation is not a membership: the invitee sees who invited them to what, and receives nothing of the room until accepting', async () => {
      const guestMark = guest.frames.length;
      owner.send({ type: 'invite', room: 'club', user: 'guest' });
      assert.deepEqual((await guest.next('invitation_added')).invitation, { room: 'club', from: 'owner' });
      assert.equal((await nextEvent(owner, 'club', 'invited', 'guest')).by, 'owner', 'the owner sees the invitation line');
      // Pending: join, history, send and members are refused; a message posted now does not reach them.
      assert.equal((await refused(guest, { type: 'join', room: 'club' })).code, 'forbidden');
      assert.equal((await refused(guest, { type: 'history', room: 'club', before: 99 })).code, 'forbidden');
      assert.equal((await refused(guest, { type: 'send', room: 'club', text: 'x', clientId: 'g0' })).code, 'forbidden');
      assert.equal((await refused(guest, { type: 'members', room: 'club' })).code, 'forbidden');
      owner.send({ type: 'send', room: 'club', text: 'before the guest accepts', clientId: 'o1' });
      await owner.next('ack');
      await settled(guest, 'lobby');
      await sleep(100);
      assert.deepEqual(
        guest.frames.slice(guestMark).filter((f) => f.type === 'message' || f.type === 'room_added' || f.type === 'presence' || f.type === 'room_event'),
        [],
        'nothing of the room reached the invitee',
      );
    });

    test('accept: the invitation becomes a membership (one room_added, one invitation_removed — no whole list); the members see a join line', async () => {
      const mark = guest.frames.length;
      guest.send({ type: 'accept', room: 'club' });
      assert.deepEqual((await guest.next('room_added')).room, { name: 'club', private: true, owner: 'owner' });
      assert.deepEqual(await guest.next('invitation_removed'), { type: 'invitation_removed', room: 'club' });
      assert.equal(guest.frames.slice(mark).filter((f) => f.type === 'rooms' || f.type === 'invitations').length, 0, 'no whole list resent');
      await nextEvent(owner, 'club', 'joined', 'guest');
      // Accepting twice: the invitation is gone.
      assert.equal((await refused(guest, { type: 'accept', room: 'club' })).code, 'no_such_invitation');
      guest.send({ type: 'join', room: 'club' });
      const history = await guest.next('history');
      assert.ok(
        history.messages.some((m) => m.html === 'before the guest accepts'),
        'history is readable once a member',
      );
    });

    test('presence: the joiner gets who is online; the others see them come online; a stranger learns nothing of it', async () => {
      const presence = guest.frames.find((f) => f.type === 'presence' && f.room === 'club');
      assert.ok(presence?.type === 'presence');
      assert.deepEqual(presence.online, ['guest', 'owner']);
      const change = await owner.next('presence_change');
      assert.deepEqual(change, { type: 'presence_change', room: 'club', user: 'guest', online: true });
      // A second socket of the guest that joins, then closes: still online (the first is joined); no change sent.
      const second = await joined(server, cookies['guest']!, 'club');
      second.ws.close();
      await second.closed;
      // The stranger asks for members and presence: forbidden, and no frame about the room ever reached them.
      assert.equal((await refused(stranger, { type: 'members', room: 'club' })).code, 'forbidden');
      assert.equal((await refused(stranger, { type: 'join', room: 'club' })).code, 'forbidden');
      assert.deepEqual(
        ofRoom(stranger, 'club').filter((f) => f.type !== 'error'),
        [],
        'no presence, member list, line or message of a private room reached a non-member',
      );
    });

    test('members: a member sees who is in the room; the owner also sees pending invitations', async () => {
      owner.send({ type: 'invite', room: 'club', user: 'shy' });
      await shy.next('invitation_added');
      guest.send({ type: 'members', room: 'club' });
      assert.deepEqual(await guest.next('members'), { type: 'members', room: 'club', owner: 'owner', members: ['guest', 'owner'] });
      owner.send({ type: 'members', room: 'club' });
      assert.deepEqual(await owner.next('members'), { type: 'members', room: 'club', owner: 'owner', members: ['guest', 'owner'], invited: ['shy'] });
    });

    test('decline: the invitation goes, no membership; declining again is refused; the inviter cannot invite again (remembered)', async () => {
      shy.send({ type: 'decline', room: 'club' });
      assert.deepEqual(await shy.next('invitation_removed'), { type: 'invitation_removed', room: 'club' });
      await nextEvent(owner, 'club', 'declined', 'shy');
      assert.equal((await refused(shy, { type: 'decline', room: 'club' })).code, 'no_such_invitation');
      assert.equal((await refused(shy, { type: 'accept', room: 'club' })).code, 'no_such_invitation');
      assert.equal((await refused(shy, { type: 'join', room: 'club' })).code, 'forbidden');
      assert.equal(shy.frames.filter((f) => f.type === 'room_added').length, 0);
      assert.equal((await refused(owner, { type: 'invite', room: 'club', user: 'shy' })).code, 'invitation_declined');
    });

    test('remove a pending invitation (cancel): the invitee loses it and cannot accept it; a cancel is not a decline', async () => {
      const maybe = await open(server, cookies['maybe']!);
      owner.send({ type: 'invite', room: 'club', user: 'maybe' });
      await maybe.next('invitation_added');
      owner.send({ type: 'remove', room: 'club', user: 'maybe' });
      assert.deepEqual(await maybe.next('invitation_removed'), { type: 'invitation_removed', room: 'club' });
      await nextEvent(owner, 'club', 'uninvited', 'maybe');
      assert.equal((await refused(maybe, { type: 'accept', room: 'club' })).code, 'no_such_invitation');
      assert.equal((await refused(owner, { type: 'remove', room: 'club', user: 'maybe' })).code, 'no_such_user', 'neither member nor invited');
      owner.send({ type: 'invite', room: 'club', user: 'maybe' });
      await maybe.next('invitation_added');
      owner.send({ type: 'remove', room: 'club', user: 'maybe' });
      await maybe.next('invitation_removed');
      maybe.ws.close();
    });

    test('authorization on every new frame: only the owner invites and removes; nobody leaves the lobby; the owner cannot leave', async () => {
      assert.equal((await refused(guest, { type: 'invite', room: 'club', user: 'stranger' })).code, 'forbidden');
      assert.equal((await refused(guest, { type: 'remove', room: 'club', user: 'owner' })).code, 'forbidden');
      assert.equal((await refused(stranger, { type: 'invite', room: 'club', user: 'stranger' })).code, 'forbidden');
      assert.equal((await refused(stranger, { type: 'accept', room: 'club' })).code, 'no_such_invitation', 'no invitation, no way in');
      assert.equal((await refused(stranger, { type: 'leave', room: 'club' })).code, 'forbidden');
      assert.equal((await refused(stranger, { type: 'leave', room: 'lobby' })).code, 'forbidden');
      assert.equal((await refused(stranger, { type: 'leave', room: 'nowhere' })).code, 'no_such_room');
      assert.equal((await refused(owner, { type: 'leave', room: 'club' })).code, 'owner_cannot_leave');
      assert.equal((await refused(owner, { type: 'remove', room: 'club', user: 'owner' })).code, 'owner_cannot_leave');
      assert.equal((await refused(owner, { type: 'invite', room: 'club', user: 'guest' })).code, 'already_member');
      assert.equal((await refused(owner, { type: 'invite', room: 'club', user: 'nobody-here' })).code, 'no_such_user');
      assert.equal((await refused(stranger, { type: 'members', room: 'nowhere' })).code, 'no_such_room');
      assert.equal((await refused(stranger, { type: 'accept', room: 'x' })).code, 'bad_frame', 'names are validated by the schema');
      assert.equal((await refused(stranger, { type: 'leave', room: 'club', extra: 1 })).code, 'bad_frame');
      // The lobby's member list is not a list of every account: no members, no invitations.
      stranger.send({ type: 'members', room: 'lobby' });
      assert.deepEqual(await stranger.next('members'), { type: 'members', room: 'lobby', owner: null, members: [] });
    });

    test('leave: the member loses the room (room_removed), stops receiving it at once, and the others see the line and the presence change', async () => {
      const guestMark = guest.frames.length;
      const ownerMark = owner.frames.length;
      guest.send({ type: 'leave', room: 'club' });
      assert.deepEqual(await guest.next('room_removed'), { type: 'room_removed', room: 'club' });
      await nextEvent(owner, 'club', 'left', 'guest');
      // Presence changes are coalesced (PRESENCE_COALESCE_SECONDS): the change may come just after the line.
      for (let i = 0; i < 100 && !owner.frames.slice(ownerMark).some((f) => f.type === 'presence_change'); i++) await sleep(20);
      assert.deepEqual(
        owner.frames.slice(ownerMark).filter((f) => f.type === 'presence_change'),
        [{ type: 'presence_change', room: 'club', user: 'guest', online: false }],
      );
      owner.send({ type: 'send', room: 'club', text: 'after the guest left', clientId: 'o2' });
      await owner.next('ack');
      await settled(guest, 'lobby');
      await sleep(100);
      assert.deepEqual(
        guest.frames.slice(guestMark).filter((f) => f.type === 'message' && f.room === 'club'),
        [],
      );
      assert.equal((await refused(guest, { type: 'send', room: 'club', text: 'back?', clientId: 'g9' })).code, 'forbidden');
      assert.equal((await refused(guest, { type: 'leave', room: 'club' })).code, 'forbidden');
    });

    test('remove a member: their sockets lose the room at once; the members see the line', async () => {
      await inviteAndAccept(owner, guest, 'club', 'guest');
      guest.send({ type: 'join', room: 'club' });
      await guest.next('history');
      const mark = guest.frames.length;
      owner.send({ type: 'remove', room: 'club', user: 'guest' });
      assert.deepEqual(await guest.next('room_removed'), { type: 'room_removed', room: 'club' });
      const line = await nextEvent(owner, 'club', 'removed', 'guest');
      assert.equal(line.by, 'owner');
      owner.send({ type: 'send', room: 'club', text: 'after the removal', clientId: 'o3' });
      await owner.next('ack');
      await settled(guest, 'lobby');
      await sleep(100);
      assert.deepEqual(
        guest.frames.slice(mark).filter((f) => f.type === 'message' && f.room === 'club'),
        [],
      );
      assert.equal((await refused(guest, { type: 'members', room: 'club' })).code, 'forbidden');
    });

    test('a fresh socket gets the whole list once: rooms, then invitations', async () => {
      owner.send({ type: 'invite', room: 'club', user: 'later' });
      await nextEvent(owner, 'club', 'invited', 'later');
      const fresh = await open(server, cookies['later']!);
      await fresh.next('invitations');
      assert.deepEqual(
        fresh.frames.slice(0, 2).map((f) => f.type),
        ['rooms', 'invitations'],
      );
      assert.deepEqual(fresh.frames[1], { type: 'invitations', invitations: [{ room: 'club', from: 'owner' }] });
      fresh.ws.close();
    });
  });

describe('caps: each configurable limit refuses with its own code', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      env: { ...FAST, ROOMS_PER_OWNER: '2', MEMBERSHIPS_PER_USER: '3', PENDING_INVITATIONS_PER_USER: '2', INVITATIONS_PER_HOUR: '5' },
    });
  });
  after(() => server?.close());

  test('ROOMS_PER_OWNER: the third room is refused too_many_rooms', async () => {
    const maker = await open(server, await signUp(server, 'maker'));
    for (const room of ['mk-1', 'mk-2']) {
      maker.send({ type: 'create', room });
      await maker.next('room_added');
    }
    assert.equal((await refused(maker, { type: 'create', room: 'mk-3' })).code, 'too_many_rooms');
    maker.ws.close();
  });

  test('PENDING_INVITATIONS_PER_USER, MEMBERSHIPS_PER_USER and INVITATIONS_PER_HOUR', async () => {
    const target = await open(server, await signUp(server, 'target'));
    const hosts: Client[] = [];
    for (const name of ['host1', 'host2', 'host3']) {
      const host = await open(server, await signUp(server, name));
      host.send({ type: 'create', room: `${name}-room` });
      await host.next('room_added');
      hosts.push(host);
    }
    // Two pending invitations fill the invitee's cap; the third is refused.
    for (const [i, host] of hosts.slice(0, 2).entries()) {
      host.send({ type: 'invite', room: `host${i + 1}-room`, user: 'target' });
      await target.next('invitation_added');
    }
    assert.equal((await refused(hosts[2]!, { type: 'invite', room: 'host3-room', user: 'target' })).code, 'too_many_invitations');
    // Memberships: target creates two rooms (2 memberships) and accepts one invitation (3): the next accept is refused.
    for (const room of ['tg-1', 'tg-2']) {
      target.send({ type: 'create', room });
      await target.next('room_added');
    }
    target.send({ type: 'accept', room: 'host1-room' });
    await target.next('room_added');
    assert.equal((await refused(target, { type: 'accept', room: 'host2-room' })).code, 'too_many_memberships');
    assert.equal((await refused(target, { type: 'create', room: 'tg-3' })).code, 'too_many_rooms', 'owner cap first');
    // Invitations per hour: five attempts pass the bucket (whatever their outcome), the sixth is refused.
    const spammer = hosts[2]!;
    const others: string[] = [];
    for (let i = 0; i < 6; i++) others.push(`rcpt${i}`);
    for (const name of others) await signUp(server, name);
    const codes: string[] = [];
    for (const name of others) {
      spammer.send({ type: 'invite', room: 'host3-room', user: name });
      await settled(spammer, 'host3-room');
    }
    for (const f of spammer.frames) if (f.type === 'error') codes.push(f.code);
    assert.ok(codes.includes('invite_rate_limited'), `codes: ${JSON.stringify(codes)}`);
    assert.equal(
      codes.filter((c) => c === 'invite_rate_limited').length,
      2,
      `the attempts past five (the refused one above counted) are refused: ${JSON.stringify(codes)}`,
    );
    for (const c of [target, ...hosts]) c.ws.close();
  });
});

// The review finding: six accounts put one person in 300 rooms in 12 s, pushing ~3 MB at them
// (the whole room list was resent on each invitation). Now an invitation costs the invitee one
// small frame, and the caps (per inviter, and inviters per invitee) bound how many can be pending.
for (const [pending, perInviter] of [
  ['50', '3'],
  ['1000', '1000'],
])
  describe(`a stranger's 50 invitations from 10 accounts (PENDING_INVITATIONS_PER_USER=${pending}, PENDING_INVITATIONS_PER_INVITER=${perInviter})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({
        env: { ...FAST, PENDING_INVITATIONS_PER_USER: pending!, PENDING_INVITATIONS_PER_INVITER: perInviter!, ROOMS_PER_OWNER: '10' },
      });
    });
    after(() => server?.close());

    test('cost the victim under 64 KiB of frames', async () => {
      const victimCookie = await signUp(server, 'victim');
      const attempt = await connect(server, { cookie: victimCookie });
      assert.ok('client' in attempt);
      const victim = attempt.client;
      await victim.next('rooms');
      await sleep(100);
      let bytes = 0;
      let frames = 0;
      victim.ws.on('message', (data: Buffer) => {
        bytes += data.length;
        frames += 1;
      });
      const attackers: Client[] = [];
      for (let a = 0; a < 10; a++) {
        // Long names: the worst case per frame.
        const name = `spammer-${a}-${'x'.repeat(20)}`.slice(0, 32);
        const client = await open(server, await signUp(server, name));
        for (let r = 0; r < 5; r++) {
          client.send({ type: 'create', room: `free-gift-card-${a}-${r}-${'y'.repeat(32)}`.slice(0, 32) });
        }
        attackers.push(client);
      }
      await Promise.all(attackers.map((client) => settled(client, 'lobby')));
      for (const [a, client] of attackers.entries()) {
        for (let r = 0; r < 5; r++) client.send({ type: 'invite', room: `free-gift-card-${a}-${r}-${'y'.repeat(32)}`.slice(0, 32), user: 'victim' });
      }
      await Promise.all(attackers.map((client) => settled(client, 'lobby')));
      await sleep(300);
      console.log(`# 50 invitations (pending caps ${pending} inviters, ${perInviter} per inviter): the victim received ${frames} frames, ${bytes} bytes`);
      assert.ok(frames > 0, 'the invitations did reach the victim');
      assert.ok(bytes < 64 * 1024, `${bytes} bytes`);
      for (const c of [victim, ...attackers]) c.ws.close();
    });
  });
