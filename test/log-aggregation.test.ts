// A socket that repeats a refused action (here: `join` of a private room, as fast as the rate
// limit allows) writes one log line and then one summary per window, not a line per frame.
// Run: npx node --test test/log-aggregation.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { joined, open, signUp, sleep, startServer, type TestServer } from './helpers/server.ts';

describe('repeated refusals are logged once per window, with a count', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { WS_MESSAGES_PER_SECOND: '5000', WS_MESSAGE_BURST: '5000', LOG_REPEAT_WINDOW_SECONDS: '1' } });
  });
  after(() => server.close());

  test('2,000 forbidden joins from one socket: at most a few ws_forbidden lines, whose counts add up', async () => {
    const owner = await joined(server, await signUp(server, 'logowner'));
    owner.send({ type: 'create', room: 'logvault' });
    await owner.next('room_added');
    const spy = await open(server, await signUp(server, 'logspy'));
    for (let i = 0; i < 2000; i++) spy.send({ type: 'join', room: 'logvault' });
    while (spy.frames.filter((f) => f.type === 'error').length < 2000) await spy.next('error');
    await sleep(1300); // the window closes and writes its summary
    const lines = server.logs
      .map((line) => JSON.parse(line) as { event: string; user?: string; count?: number })
      .filter((e) => e.event === 'ws_forbidden' && e.user === 'logspy');
    const logged = lines.reduce((n, e) => n + (e.count ?? 1), 0);
    assert.ok(lines.length <= 6, `${lines.length} lines for 2000 refusals`);
    assert.equal(logged, 2000, 'every refusal is accounted for in a count');
    for (const c of [owner, spy]) c.ws.close();
  });
});
