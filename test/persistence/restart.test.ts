// SQLite durability across a restart (same DATA_DIR): users stay registered, sessions stay
// valid (the very same cookie works for the API and the WebSocket upgrade), private rooms
// and memberships remain, and the whole history is there, page by page.
// Run: npx node --test test/persistence/restart.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../server/config.ts';
import { inviteAndAccept } from '../helpers/rooms.ts';
import { joined, login, open, request, signUp, startServer, type Client, type TestServer } from '../helpers/server.ts';

const FAST = { WS_MESSAGES_PER_SECOND: '10000', WS_MESSAGE_BURST: '10000' };
const COUNT = loadConfig({}, []).ws.historyPageSize * 2 + 7; // three pages at the default page size

/** Every message of a room, through the paginated history frames a client sees. */
async function fullHistory(client: Client, room: string): Promise<Array<{ id: number; user: string; html: string }>> {
  client.send({ type: 'join', room });
  let page = await client.next('history');
  const all = [...page.messages];
  while (page.more) {
    client.send({ type: 'history', room, before: all[0]!.id });
    page = await client.next('history');
    all.unshift(...page.messages);
  }
  return all;
}

describe('restart with the same DATA_DIR', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-restart-'));
  let server: TestServer;
  let aliceCookie: string;
  const sentIds: number[] = [];

  before(async () => {
    server = await startServer({ dataDir, env: FAST });
    aliceCookie = await signUp(server, 'alice');
    await signUp(server, 'bob');
    const alice = await joined(server, aliceCookie);
    for (let i = 0; i < COUNT; i++) alice.send({ type: 'send', room: 'lobby', text: `before restart #${i}`, clientId: `c${i}` });
    for (let i = 0; i < COUNT; i++) sentIds.push((await alice.next('ack')).id);
    alice.send({ type: 'create', room: 'secret' });
    await alice.next('room_added');
    await inviteAndAccept(alice, await open(server, await login(server, 'bob')), 'secret', 'bob');
    alice.send({ type: 'send', room: 'secret', text: 'for members only', clientId: 's1' });
    await alice.next('ack');
    alice.ws.close();
    await server.close();
    // A new server process over the same files.
    server = await startServer({ dataDir, env: FAST });
  });

  after(async () => {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the session cookie issued before the restart still works for GET /api/me', async () => {
    const reply = await request(server, 'GET', '/api/me', { cookie: aliceCookie });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { username: 'alice' });
  });

  test('the same cookie still passes the WebSocket upgrade gate', async () => {
    const client = await open(server, aliceCookie);
    assert.equal(client.frames[0]?.type, 'rooms');
    client.ws.close();
  });

  test('users stay registered: bob logs in with his password after the restart', async () => {
    const cookie = await login(server, 'bob');
    assert.match(cookie, /^__Host-parley\.sid=/);
  });

  test('registering a name taken before the restart is still refused 409', async () => {
    const reply = await request(server, 'POST', '/api/register', { body: { username: 'alice', password: 'another long passphrase' } });
    assert.equal(reply.status, 409);
  });

  test(`all ${COUNT} lobby messages are in history, in order, across pages`, async () => {
    const client = await open(server, aliceCookie);
    const all = await fullHistory(client, 'lobby');
    assert.deepEqual(
      all.map((m) => m.id),
      sentIds,
    );
    assert.deepEqual(
      all.map((m) => m.html),
      sentIds.map((_, i) => `before restart #${i}`),
    );
    client.ws.close();
  });

  test('private room, its membership and its history survive: bob (invited) reads it, carol (a stranger) is refused', async () => {
    const bob = await open(server, await login(server, 'bob'));
    assert.ok(bob.frames.some((f) => f.type === 'rooms' && f.rooms.some((r) => r.name === 'secret' && r.private && r.owner === 'alice')));
    const messages = await fullHistory(bob, 'secret');
    assert.deepEqual(
      messages.map((m) => m.html),
      ['for members only'],
    );
    bob.ws.close();
    const carol = await open(server, await signUp(server, 'carol'));
    carol.send({ type: 'join', room: 'secret' });
    assert.equal((await carol.next('error')).code, 'forbidden');
    carol.ws.close();
  });

  test('a logout before a restart stays a logout after it', async () => {
    const cookie = await login(server, 'bob');
    assert.equal((await request(server, 'POST', '/api/logout', { body: {}, cookie })).status, 204);
    await server.close();
    server = await startServer({ dataDir, env: FAST });
    assert.equal((await request(server, 'GET', '/api/me', { cookie })).status, 401);
  });
});
