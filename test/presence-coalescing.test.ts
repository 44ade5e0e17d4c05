// tier: unit
// Presence changes are coalesced per room (server/ws/presence.ts, decision 018 amendment): what
// changed within one window goes out as one frame — a `presence_change` for one user, a
// `presence_delta` for several — and a user who came and went within it is not mentioned. The
// crowd over real sockets and Redis is test/scale/presence-cost.test.ts.
// Run: npx node --test test/presence-coalescing.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBus } from '../server/cluster/bus.ts';
import type { Connection } from '../server/ws/connection.ts';
import { Presence } from '../server/ws/presence.ts';
import type { ServerFrame } from '../shared/protocol.ts';
import { sleep } from './helpers/server.ts';

/** Presence only reads the socket's user. */
const socketOf = (user: string) => ({ user }) as Connection;

function setup(coalesceMs: number) {
  const frames: Array<{ room: string; frame: ServerFrame }> = [];
  const presence = new Presence(new LocalBus(), { refreshMs: 60_000, coalesceMs }, (room, frame) => void frames.push({ room, frame }));
  return { presence, frames };
}

test('one event-loop turn (0): a crowd is one presence_delta per room; one user alone is a presence_change', async () => {
  const { presence, frames } = setup(0);
  const sockets = Array.from({ length: 50 }, (_, i) => socketOf(`user${i}`));
  for (const socket of sockets) presence.live('lobby', socket, true);
  presence.live('den', sockets[0]!, true);
  assert.equal(frames.length, 0, 'nothing is sent within the turn');
  await new Promise((resolve) => setImmediate(resolve)); // queued after the flush: it has run
  assert.equal(frames.length, 2);
  const lobby = frames.find((f) => f.room === 'lobby')!.frame;
  assert.ok(lobby.type === 'presence_delta');
  assert.deepEqual(
    lobby.online,
    sockets.map((s) => s.user),
  );
  assert.deepEqual(lobby.offline, []);
  assert.deepEqual(frames.find((f) => f.room === 'den')!.frame, { type: 'presence_change', room: 'den', user: 'user0', online: true });
  presence.close();
});

test('within a window: a user who came and went is not mentioned; a second socket of an online user changes nothing', async () => {
  const { presence, frames } = setup(40);
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map(socketOf) as [Connection, Connection, Connection];
  presence.live('lobby', alice, true);
  await sleep(80);
  assert.deepEqual(
    frames.map((f) => f.frame),
    [{ type: 'presence_change', room: 'lobby', user: 'alice', online: true }],
  );
  frames.length = 0;
  presence.live('lobby', bob, true);
  presence.live('lobby', bob, false);
  presence.live('lobby', socketOf('alice'), true); // alice's second socket
  presence.live('lobby', carol, true);
  presence.live('lobby', alice, false); // one of alice's two sockets: still online
  await sleep(10);
  assert.equal(frames.length, 0, 'the window is still open');
  await sleep(80);
  assert.deepEqual(
    frames.map((f) => f.frame),
    [{ type: 'presence_change', room: 'lobby', user: 'carol', online: true }],
  );
  assert.deepEqual(presence.online('lobby'), ['alice', 'carol']);
  presence.close();
});

test('close() tells what changed in the open window at once (the last sockets going offline), then nothing more', async () => {
  const { presence, frames } = setup(20);
  presence.live('lobby', socketOf('alice'), true);
  await sleep(60);
  frames.length = 0;
  presence.live('lobby', socketOf('alice'), false);
  presence.close();
  assert.deepEqual(
    frames.map((f) => f.frame),
    [{ type: 'presence_change', room: 'lobby', user: 'alice', online: false }],
    'told at close, not dropped with the window',
  );
  await sleep(60);
  assert.equal(frames.length, 1, 'nothing after close');
});
