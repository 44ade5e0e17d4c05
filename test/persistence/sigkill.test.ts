// requires: postgres
// An acknowledged message is a committed message: the real server (a child process) is
// killed with SIGKILL in the middle of a stream of messages, restarted over the same
// DATA_DIR (SQLite) or the same DATABASE_URL (PostgreSQL), and every message it had
// acknowledged is in history.
// Run: npx node --test test/persistence/sigkill.test.ts
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joined, open, signUp, type Client } from '../helpers/server.ts';
import { spawnParley, startPostgres, type ParleyProcess, type PostgresService } from '../helpers/services.ts';

const FAST = { WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '100000' };
/** Acks to collect before the kill, and messages kept in flight meanwhile. */
const ACKS_BEFORE_KILL = 400;
const IN_FLIGHT = 40;

const running: ParleyProcess[] = [];
const dirs: string[] = [];
let postgres: PostgresService | undefined;
after(async () => {
  for (const server of running) await server.kill('SIGKILL');
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  await postgres?.destroy();
});

async function fullHistory(client: Client, room: string): Promise<Array<{ id: number; html: string }>> {
  client.send({ type: 'join', room });
  let page = await client.next('history', 10_000);
  const all = [...page.messages];
  while (page.more) {
    client.send({ type: 'history', room, before: all[0]!.id });
    page = await client.next('history', 10_000);
    all.unshift(...page.messages);
  }
  return all;
}

for (const engine of ['SQLite', 'PostgreSQL'] as const) {
  test(`${engine}: SIGKILL mid-stream, restart: every acknowledged message is in history`, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sigkill-'));
    dirs.push(dataDir);
    const env: Record<string, string> = { ...FAST };
    if (engine === 'PostgreSQL') {
      postgres = await startPostgres();
      env['DATABASE_URL'] = postgres.url;
    }
    const first = await spawnParley({ dataDir, env });
    running.push(first);
    const cookie = await signUp(first, 'alice');
    const client = await joined(first, cookie);

    // Stream: keep IN_FLIGHT sends outstanding; each ack releases the next send.
    const acked = new Map<string, number>(); // clientId → message id
    let sent = 0;
    const sendOne = () => {
      const clientId = `m${sent++}`;
      client.send({ type: 'send', room: 'lobby', text: `msg ${clientId}`, clientId });
    };
    const killed = new Promise<void>((resolve) => {
      client.ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string; clientId?: string; id?: number };
        if (frame.type !== 'ack') return;
        acked.set(frame.clientId!, frame.id!);
        if (acked.size === ACKS_BEFORE_KILL) {
          // Mid-stream: IN_FLIGHT more are on the wire or being committed right now.
          first.child.kill('SIGKILL');
          resolve();
        } else if (acked.size < ACKS_BEFORE_KILL) {
          sendOne();
        }
      });
    });
    for (let i = 0; i < IN_FLIGHT; i++) sendOne();
    await killed;
    await first.kill('SIGKILL');
    await client.closed;
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.ok(sent > acked.size, `the kill came mid-stream (${sent} sent, ${acked.size} acked)`);

    const second = await spawnParley({ dataDir, env });
    running.push(second);
    // The session survived too: the same cookie opens a socket on the restarted server.
    const reader = await open(second, cookie);
    const history = await fullHistory(reader, 'lobby');
    const byId = new Map(history.map((m) => [m.id, m.html]));
    for (const [clientId, id] of acked) {
      assert.equal(byId.get(id), `msg ${clientId}`, `acknowledged message ${clientId} (id ${id}) is in history`);
    }
    // Nothing was invented or duplicated: every stored message is one that was sent, once.
    const texts = history.map((m) => m.html);
    assert.equal(new Set(texts).size, texts.length);
    for (const text of texts) assert.match(text, /^msg m\d+$/);
    assert.ok(history.length >= acked.size && history.length <= sent);
    reader.ws.close();
    await second.close();
  });
}
