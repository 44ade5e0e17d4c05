// tier: unit
// A `send` retried with the same clientId (a client that reconnected before it saw the ack)
// is stored once: the retry is acknowledged with the first message's id and not broadcast
// again. Over real WSS, against the stored history. Run: npx node --test test/send-retry.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { joined, signUp, sleep, startServer, type TestServer } from './helpers/server.ts';

describe('a retried send is stored once', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('the same clientId twice (even from a new socket): one message in history, one broadcast, both acks name its id', async () => {
    const cookie = await signUp(server, 'retrier');
    const reader = await joined(server, await signUp(server, 'retryreader'));
    const first = await joined(server, cookie);
    first.send({ type: 'send', room: 'lobby', text: 'only once', clientId: 'retry-1' });
    const ack1 = await first.next('ack');
    first.ws.close();
    const second = await joined(server, cookie); // "reconnected" and resent
    second.send({ type: 'send', room: 'lobby', text: 'only once', clientId: 'retry-1' });
    const ack2 = await second.next('ack');
    assert.equal(ack2.id, ack1.id);
    await sleep(200);
    assert.equal(reader.frames.filter((f) => f.type === 'message' && f.html === 'only once').length, 1, 'broadcast once');
    second.send({ type: 'join', room: 'lobby' });
    const page = await second.next('history');
    assert.equal(page.messages.filter((m) => m.html === 'only once').length, 1, 'stored once');
    // A new clientId is a new message.
    second.send({ type: 'send', room: 'lobby', text: 'only once', clientId: 'retry-2' });
    assert.notEqual((await second.next('ack')).id, ack1.id);
    for (const c of [reader, second]) c.ws.close();
  });
});
