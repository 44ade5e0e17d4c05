// Graceful shutdown of the real process (server/main.ts as a child): SIGTERM while three users
// are sending stops accepting connections, closes every socket with 1001 (reconnect), finishes
// what is in flight, closes the store and exits 0; after a restart on the same DATA_DIR every
// acknowledged message is in the history. Run: npx node --test test/abuse/shutdown.test.ts
// (SIGKILL durability is tested with the persistence work; this file is about SIGTERM.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatMessage } from '../../shared/protocol.ts';
import { joined, login, signUp, type Client } from '../helpers/server.ts';
import { RawWs, sleep, spawnServer, type ChildServer } from './harness.ts';

const USERS = ['ann', 'ben', 'cat'];
const ENV = { WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '100000' };

/** Every message of a room, oldest first, paging back with `history` frames. */
async function wholeHistory(client: Client, room = 'lobby'): Promise<ChatMessage[]> {
  client.send({ type: 'join', room });
  let page = await client.next('history', 10_000);
  const all = [...page.messages];
  while (page.more && page.messages.length > 0) {
    client.send({ type: 'history', room, before: page.messages[0]!.id });
    page = await client.next('history', 10_000);
    all.unshift(...page.messages);
  }
  return all;
}

function tlsConnects(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
  });
}

describe('graceful shutdown (SIGTERM to server/main.ts)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-shutdown-'));
  let first: ChildServer | undefined;
  let second: ChildServer | undefined;
  after(async () => {
    await first?.stop('SIGKILL');
    await second?.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('stops accepting, closes sockets 1001, exits 0; after a restart every acknowledged message is in history', async (t) => {
    first = await spawnServer(ENV, { dataDir });
    const server = first.server;
    const clients: Client[] = [];
    for (const user of USERS) clients.push(await joined(server, await signUp(server, user)));

    // Each user sends a message every 5 ms, without waiting for acks, until its socket closes.
    const sent = new Map<string, string>(); // clientId → text
    const acked = new Map<string, number>(); // clientId → message id
    for (const client of clients) {
      client.ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string; clientId?: string; id?: number };
        if (frame.type === 'ack' && frame.clientId) acked.set(frame.clientId, frame.id!);
      });
    }
    const senders = clients.map(async (client, index) => {
      for (let n = 0; client.ws.readyState === client.ws.OPEN; n++) {
        const clientId = `${USERS[index]}-${n}`;
        const text = `message ${clientId}`;
        sent.set(clientId, text);
        client.send({ type: 'send', room: 'lobby', text, clientId });
        await sleep(5);
      }
    });
    await sleep(1500);
    const ackedBeforeSignal = acked.size;
    const signalledAt = Date.now();
    const exited = first.stop('SIGTERM');

    const closes = await Promise.all(clients.map((c) => c.closed));
    const closedAfter = Date.now() - signalledAt;
    // Once clients are told to go, the listener is already closed: nobody new gets in.
    const afterClose = await tlsConnects(first.port, server.ca);
    const { code, signal } = await exited;
    const exitedAfter = Date.now() - signalledAt;
    await Promise.all(senders);

    t.diagnostic(
      `SIGTERM after ${ackedBeforeSignal} acks; sockets closed ${closes.map((c) => c.code).join(', ')} within ${closedAfter} ms; exit ${code} after ${exitedAfter} ms`,
    );
    assert.deepEqual(
      closes.map((c) => c.code),
      [1001, 1001, 1001],
      'every client told to reconnect (1001)',
    );
    assert.equal(afterClose, 'ECONNREFUSED', 'no new connection accepted during shutdown');
    assert.equal(code, 0, `exit code ${code} (signal ${signal})`);
    assert.ok(
      first.output.some((l) => l.includes('SIGTERM: closed cleanly.')),
      'the shutdown completed (store closed)',
    );
    assert.ok(exitedAfter < 10_000, 'within the 10 s backstop');

    // Restart on the same DATA_DIR: every acknowledged message was committed.
    second = await spawnServer(ENV, { dataDir });
    const reader = await joined(second.server, await login(second.server, 'ann'));
    const history = await wholeHistory(reader);
    const byId = new Map(history.map((m) => [m.id, m]));
    const missing = [...acked].filter(([clientId, id]) => byId.get(id)?.html !== sent.get(clientId));
    const committedUnacked = history.length - acked.size;
    t.diagnostic(
      `sent ${sent.size}, acked ${acked.size}, in history after restart ${history.length} (committed but not acked: ${committedUnacked}; never committed: ${sent.size - history.length}); acked but missing: ${missing.length}`,
    );
    assert.ok(acked.size >= 100, `only ${acked.size} acks: the test did not exercise the shutdown under load`);
    assert.deepEqual(missing, [], 'every acknowledged message is in history after the restart');
    assert.ok(
      history.every((m) => [...sent.values()].includes(m.html)),
      'nothing in history that was not sent',
    );
    reader.ws.close();
    const restartExit = await second.stop('SIGTERM');
    assert.equal(restartExit.code, 0);
  });

  test('a client that never answers the close frame does not hold the shutdown: terminated after the drain bound, exit 0', async (t) => {
    const third = await spawnServer(ENV);
    try {
      const cookie = await signUp(third.server, 'deaf');
      const deaf = await RawWs.open(third.server, cookie);
      deaf.socket.pause(); // reads nothing, so it never answers the server's close frame
      const polite = await joined(third.server, cookie);
      const signalledAt = Date.now();
      const { code } = await third.stop('SIGTERM');
      const exitedAfter = Date.now() - signalledAt;
      t.diagnostic(`exit ${code} after ${exitedAfter} ms with one socket that never answered the close`);
      assert.equal((await polite.closed).code, 1001);
      assert.equal(code, 0, 'a clean exit, not the 10 s backstop');
      assert.ok(exitedAfter >= 4000 && exitedAfter < 9000, `exited after ${exitedAfter} ms: the drain waits (5 s), bounded`);
      deaf.destroy();
    } finally {
      await third.stop('SIGKILL');
      fs.rmSync(third.dataDir, { recursive: true, force: true });
    }
  });
});
