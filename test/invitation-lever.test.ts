// requires: postgres
// The invitation cap must not be a lever against the invitee (docs/decisions/018-rooms-with-consent.md,
// "Amendment: the cap is not a lever"). A review found that the pending-invitation cap counted per
// invitee only: one stranger with 20 rooms filled anyone's invitations, after which nobody else could
// invite them (`too_many_invitations`), and re-invited at once after each decline.
// Over real WSS, on SQLite as it runs and on the backends that open the gap between a check and
// its act (a slow store; PostgreSQL under READ COMMITTED).
// Run: npx node --test --test-concurrency=1 test/invitation-lever.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Invitation, ServerFrame } from '../shared/protocol.ts';
import { RACE_BACKENDS, on } from './helpers/backends.ts';
import { open, signUp, sleep, startServer, type Client, type TestServer } from './helpers/server.ts';

const FAST = { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000' };

/** Waits for the answer to a `members` request: every earlier frame of this socket was handled (one at a time per socket). */
async function settled(client: Client): Promise<void> {
  const from = client.frames.length;
  client.send({ type: 'members', room: 'lobby' });
  for (;;) {
    await sleep(5);
    if (client.frames.slice(from).some((f) => f.type === 'members')) return;
    if (client.ws.readyState !== client.ws.OPEN) throw new Error('closed');
  }
}

/** The first frame from `from` on that satisfies `match`, waiting up to `timeoutMs`. */
async function until<T extends ServerFrame>(client: Client, match: (f: ServerFrame) => f is T, from = 0, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = client.frames.slice(from).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out; frames: ${JSON.stringify(client.frames.slice(from))}`);
    await sleep(5);
  }
}

const errorsOf = (client: Client, from = 0): string[] => client.frames.slice(from).flatMap((f) => (f.type === 'error' ? [f.code] : []));

/** What a fresh socket of the user is told is pending for them (the whole list, once, on connect). */
async function pendingFor(server: TestServer, cookie: string): Promise<Invitation[]> {
  const fresh = await open(server, cookie);
  const list = await fresh.next('invitations');
  fresh.ws.close();
  return list.invitations;
}

/** A user who owns `rooms` private rooms named `${prefix}-0` … */
async function owner(server: TestServer, name: string, prefix: string, rooms: number): Promise<{ client: Client; cookie: string; rooms: string[] }> {
  const cookie = await signUp(server, name);
  const client = await open(server, cookie);
  const names = Array.from({ length: rooms }, (_, i) => `${prefix}-${i}`);
  for (const room of names) client.send({ type: 'create', room });
  await settled(client);
  assert.deepEqual(errorsOf(client), [], `${name} created ${rooms} rooms`);
  return { client, cookie, rooms: names };
}

for (const backend of [{ name: 'SQLite', options: async () => ({}) }, ...RACE_BACKENDS])
  describe(`the invitation cap is not a lever against the invitee — ${backend.name}`, () => {
    let server: TestServer;
    let victim: Client;
    let victimCookie: string;
    const opened: Client[] = [];

    before(async () => {
      // The default caps (ROOMS_PER_OWNER 20, INVITATIONS_PER_HOUR 60, the pending caps): what a deployment runs.
      server = await startServer(await on(backend, FAST));
      victimCookie = await signUp(server, 'victim');
      victim = await open(server, victimCookie);
      await victim.next('invitations');
    });

    after(async () => {
      for (const c of [victim, ...opened]) c?.ws.close();
      await server?.close();
    });

    test("one stranger with 20 rooms cannot fill the victim's invitations: a friend's invitation still arrives and is accepted", async () => {
      const stranger = await owner(server, 'stranger', 'gift', 20);
      opened.push(stranger.client);
      const mark = victim.frames.length;
      for (const room of stranger.rooms) stranger.client.send({ type: 'invite', room, user: 'victim' });
      await settled(stranger.client);
      await sleep(100);
      const fromStranger = victim.frames.slice(mark).filter((f) => f.type === 'invitation_added' && f.invitation.from === 'stranger').length;
      const refusals = errorsOf(stranger.client);
      console.log(
        `# one stranger, 20 rooms: ${fromStranger} invitations reached the victim; ${refusals.length} refused (${[...new Set(refusals)].join(', ')})`,
      );
      assert.ok(fromStranger >= 1, 'the stranger may invite (that is the feature)');

      const friend = await owner(server, 'friend', 'friends', 1);
      opened.push(friend.client);
      friend.client.send({ type: 'invite', room: 'friends-0', user: 'victim' });
      const added = await until(
        victim,
        (f): f is Extract<ServerFrame, { type: 'invitation_added' }> => f.type === 'invitation_added' && f.invitation.from === 'friend',
        mark,
      );
      assert.deepEqual(added.invitation, { room: 'friends-0', from: 'friend' });
      await settled(friend.client);
      assert.deepEqual(errorsOf(friend.client), [], "the friend's invitation was not refused");
      victim.send({ type: 'accept', room: 'friends-0' });
      assert.equal((await victim.next('room_added')).room.name, 'friends-0');
    });

    test("a decline is remembered: the stranger's re-invitation, to that room or another of theirs, is refused; their other invitations go with it", async () => {
      const pending = (await pendingFor(server, victimCookie)).filter((i) => i.from === 'stranger');
      assert.ok(pending.length >= 1);
      const mark = victim.frames.length;
      victim.send({ type: 'decline', room: pending[0]!.room });
      await settled(victim);
      const removed = victim.frames.slice(mark).flatMap((f) => (f.type === 'invitation_removed' ? [f.room] : []));
      assert.deepEqual(removed.sort(), pending.map((i) => i.room).sort(), "declining one withdraws all of that inviter's pending invitations");
      assert.deepEqual(
        (await pendingFor(server, victimCookie)).filter((i) => i.from === 'stranger'),
        [],
      );

      const stranger = opened[0]!;
      const before = stranger.frames.length;
      stranger.send({ type: 'invite', room: pending[0]!.room, user: 'victim' }); // the same room, at once
      stranger.send({ type: 'invite', room: 'gift-19', user: 'victim' }); // another of their rooms
      await settled(stranger);
      assert.deepEqual(errorsOf(stranger, before), ['invitation_declined', 'invitation_declined']);
      await sleep(100);
      assert.equal(victim.frames.slice(mark).filter((f) => f.type === 'invitation_added').length, 0, 'nothing reached the victim');
    });

    test('invitations from several sockets of one stranger at the same instant: at most PENDING_INVITATIONS_PER_INVITER are stored', async () => {
      const racer = await owner(server, 'racer', 'race', 12);
      const sockets = [racer.client];
      for (let i = 0; i < 3; i++) sockets.push(await open(server, racer.cookie));
      opened.push(...sockets);
      // Each socket handles its frames one at a time; four sockets race each other.
      racer.rooms.forEach((room, i) => sockets[i % sockets.length]!.send({ type: 'invite', room, user: 'victim' }));
      await Promise.all(sockets.map((s) => settled(s)));
      const fromRacer = (await pendingFor(server, victimCookie)).filter((i) => i.from === 'racer');
      assert.equal(fromRacer.length, 3, `the default per-inviter cap holds under concurrency: ${JSON.stringify(fromRacer)}`);
    });

    test("a decline racing the same inviter's invitations from other sockets leaves none of theirs pending", async () => {
      const pending = (await pendingFor(server, victimCookie)).filter((i) => i.from === 'racer');
      const sockets = opened.slice(-4);
      // Make room under the per-inviter cap first (the owner cancels two), so the racing invitations could pass it.
      for (const { room } of pending.slice(1)) sockets[0]!.send({ type: 'remove', room, user: 'victim' });
      await settled(sockets[0]!);
      const free = ['race-3', 'race-4', 'race-5', 'race-6', 'race-7', 'race-8', 'race-9', 'race-10', 'race-11'];
      victim.send({ type: 'decline', room: pending[0]!.room });
      free.forEach((room, i) => sockets[i % sockets.length]!.send({ type: 'invite', room, user: 'victim' }));
      await Promise.all([victim, ...sockets].map((s) => settled(s)));
      assert.deepEqual(
        (await pendingFor(server, victimCookie)).filter((i) => i.from === 'racer'),
        [],
        'after the decline committed, no invitation of the declined inviter is pending',
      );
    });
  });

describe('the total per invitee stays a bounded backstop, and a decline frees it', () => {
  let server: TestServer;
  const clients: Client[] = [];
  before(async () => {
    server = await startServer({ env: { ...FAST, PENDING_INVITATIONS_PER_USER: '3', PENDING_INVITATIONS_PER_INVITER: '2' } });
  });
  after(async () => {
    for (const c of clients) c.ws.close();
    await server?.close();
  });

  test('three inviters hold the three slots (two invitations each); a fourth is refused until the victim declines one of them', async () => {
    const victimCookie = await signUp(server, 'target');
    const victim = await open(server, victimCookie);
    clients.push(victim);
    const inviters = [];
    for (let i = 0; i < 4; i++) inviters.push(await owner(server, `inviter${i}`, `room${i}`, 3));
    clients.push(...inviters.map((x) => x.client));
    for (const inviter of inviters.slice(0, 3)) {
      for (const room of inviter.rooms) inviter.client.send({ type: 'invite', room, user: 'target' });
      await settled(inviter.client);
      assert.deepEqual(errorsOf(inviter.client), ['too_many_invitations'], 'two of three stored: the per-inviter cap');
    }
    const list = await pendingFor(server, victimCookie);
    assert.equal(list.length, 6, 'bounded overall: slots × per-inviter cap');
    const fourth = inviters[3]!;
    fourth.client.send({ type: 'invite', room: 'room3-0', user: 'target' });
    await settled(fourth.client);
    assert.deepEqual(errorsOf(fourth.client), ['too_many_invitations'], 'a fourth inviter: the total backstop');

    victim.send({ type: 'decline', room: 'room0-0' });
    await settled(victim);
    const mark = victim.frames.length;
    fourth.client.send({ type: 'invite', room: 'room3-0', user: 'target' });
    await until(victim, (f): f is ServerFrame => f.type === 'invitation_added' && f.invitation.from === 'inviter3', mark);
    assert.equal((await pendingFor(server, victimCookie)).length, 5);
  });
});
