// The sanitizer pool is shared: whatever one user — or many accounts from one address — sends,
// everyone else's formatted messages still get a worker. Against the real server (a child
// process running server/main.ts) with one worker and a small queue (SANITIZE_WORKERS=1,
// SANITIZE_MAX_QUEUE=16), so the pool is cheap to fill, and a generous time budget
// (SANITIZE_BUDGET_SECONDS=2: on a loaded VM the costly messages overrun 0.2 s now and then, and
// each overrun costs a worker restart; budgets have their own tests). Every other limit at its default.
//
// - ATTACKERS accounts, each with every socket it may open (WS_MAX_CONNECTIONS_PER_USER, 8),
//   send the costliest Markdown found (bench/costly-messages.ts) as fast as their per-user rate
//   allows: the 30-frame burst, then 10 frames per second. A socket handles one frame at a time,
//   so each account keeps up to 8 messages in the pool. All of them come from 127.0.0.1, and so
//   does a well-behaved user who posts an ordinary formatted message ("see https://…") every
//   EVERY_MS (twice a second: faster than people type). Before per-user and per-address shares, the attackers kept the global queue full
//   and some of the well-behaved user's messages were refused `server_busy`. Now none is (its
//   message waits behind at most one message of each attacker; the latency is reported, not asserted).
// - One user cannot have more than SANITIZE_MAX_IN_FLIGHT_PER_USER (4) messages in the pool:
//   the same costly message on each of its 8 sockets at once gets 4 acks and 4 `rate_limited`.
// Run: npx node --test test/abuse/sanitizer-share.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { open, signUp, type Client, type TestServer } from '../helpers/server.ts';
import { COSTLY_MARKDOWN } from '../../bench/costly-messages.ts';
import { percentile, sleep, spawnServer, type ChildServer } from './harness.ts';

const ATTACKERS = 4;
const SOCKETS_PER_USER = 8; // WS_MAX_CONNECTIONS_PER_USER's default
const BURST = 30; // WS_MESSAGE_BURST's default
const RATE_PER_SECOND = 10; // WS_MESSAGES_PER_SECOND's default
const ATTACK_MS = 6000;
const EVERY_MS = 500;
const PER_USER = 4; // SANITIZE_MAX_IN_FLIGHT_PER_USER's default
/**
 * Generous for one worker on a shared, loaded 2-core VM (what it measures is printed): served in
 * turn, the writer's message waits for at most one message of each attacker, ~4 × 20–150 ms.
 */

type Answered = { code: string; at: number };

/** Every ack/error naming a clientId, from any of `clients`, by clientId. */
function answers(clients: Client[]): Map<string, Answered> {
  const found = new Map<string, Answered>();
  for (const client of clients) {
    for (const f of client.frames) {
      if ((f.type === 'ack' || f.type === 'error') && f.clientId !== undefined && !found.has(f.clientId)) {
        found.set(f.clientId, { code: f.type === 'ack' ? 'ack' : f.code, at: 0 });
      }
    }
  }
  return found;
}

function tally(found: Map<string, Answered>): string {
  const counts = new Map<string, number>();
  for (const { code } of found.values()) counts.set(code, (counts.get(code) ?? 0) + 1);
  return [...counts].map(([code, n]) => `${code}×${n}`).join(', ');
}

describe('the sanitizer pool is shared fairly (one worker, SANITIZE_MAX_QUEUE 16)', () => {
  let child: ChildServer;
  let server: TestServer;
  const sockets = new Map<string, Client[]>();

  before(async () => {
    child = await spawnServer({ SANITIZE_WORKERS: '1', SANITIZE_MAX_QUEUE: '16', SANITIZE_BUDGET_SECONDS: '2' });
    server = child.server;
  });
  after(async () => {
    for (const list of sockets.values()) for (const client of list) client.ws.close();
    await child?.stop();
  });

  async function account(name: string, count: number): Promise<Client[]> {
    const cookie = await signUp(server, name);
    const list = await Promise.all(Array.from({ length: count }, () => open(server, cookie)));
    sockets.set(name, list);
    return list;
  }

  test(`${ATTACKERS} accounts flooding costly Markdown from one address: a well-behaved user there is never refused`, async (t) => {
    const attackers = await Promise.all(Array.from({ length: ATTACKERS }, (_, i) => account(`attacker${i}`, SOCKETS_PER_USER)));
    const [writer] = await account('writer', 1);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    writer!.ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { type: string; clientId?: string };
      const at = f.clientId === undefined ? undefined : sentAt.get(f.clientId);
      if (f.type === 'ack' && at !== undefined) latencies.push(Date.now() - at);
    });

    // Calm first: the same messages with nobody else sending.
    let written = 0;
    const write = () => {
      const clientId = `w${written++}`;
      sentAt.set(clientId, Date.now());
      writer!.send({ type: 'send', room: 'lobby', text: `see https://example.org/${written} for *this* one`, clientId });
    };
    for (let i = 0; i < 5; i++) {
      write();
      await sleep(EVERY_MS);
    }
    const calm = [...latencies];

    let attackSent = 0;
    const sentBy = attackers.map(() => 0);
    const attack = (index: number) => {
      const list = attackers[index]!;
      const n = sentBy[index]!++;
      // Round the account's sockets, so each keeps a message in the pool.
      list[n % list.length]!.send({ type: 'send', room: 'lobby', text: COSTLY_MARKDOWN[n % COSTLY_MARKDOWN.length], clientId: `a${index}-${n}` });
      attackSent += 1;
    };
    const writing = setInterval(write, EVERY_MS);
    const started = Date.now();
    for (let i = 0; i < BURST; i++) for (let a = 0; a < ATTACKERS; a++) attack(a);
    while (Date.now() - started < ATTACK_MS) {
      await sleep(1000 / RATE_PER_SECOND);
      for (let a = 0; a < ATTACKERS; a++) attack(a);
    }
    clearInterval(writing);

    const everyAttacker = attackers.flat();
    const deadline = Date.now() + 20_000;
    while ((answers([writer!]).size < written || answers(everyAttacker).size < attackSent) && Date.now() < deadline) await sleep(50);

    const writerAnswers = answers([writer!]);
    const refused = [...writerAnswers.values()].filter((a) => a.code !== 'ack');
    const attackerAnswers = answers(everyAttacker);
    const during = latencies.slice(calm.length);
    const stats = (values: number[]) => `p50 ${percentile(values, 50)} ms, p99 ${percentile(values, 99)} ms, max ${Math.max(...values)} ms`;
    t.diagnostic(`writer calm: ${calm.length} of 5 acknowledged, ${stats(calm)}`);
    t.diagnostic(
      `writer under attack: ${written - 5} sent, ${during.length} acknowledged, ${stats(during)}; refused: ${tally(new Map(refused.map((a, i) => [String(i), a])))}`,
    );
    t.diagnostic(`attackers: ${attackSent} frames from ${ATTACKERS} accounts × ${SOCKETS_PER_USER} sockets: ${tally(attackerAnswers)}`);
    t.diagnostic(`server errors: ${child.output.filter((l) => l.includes('"server_error"')).length}`);

    assert.equal(writerAnswers.size, written, 'every one of the writer’s messages answered');
    assert.deepEqual(
      refused.map((a) => a.code),
      [],
      'none of the writer’s messages refused',
    );
    // Latency is reported, not asserted: one worker on a loaded 2-core box makes any bound a guess.
    // Its figure belongs to the benchmark (npm run bench -- --scenarios hostile); here the property is
    // that none of the writer's messages is refused while the attack runs.
    // The attack did press on the pool: the attackers were refused by it, not only by their rate.
    const pressed = [...attackerAnswers.values()].filter((a) => a.code === 'server_busy' || a.code === 'rate_limited').length;
    assert.ok(pressed > 0, 'the attackers were held back');
    assert.equal(child.proc.exitCode, null);
  });

  test(`one user has at most ${PER_USER} messages in the pool: the rest are refused rate_limited`, async () => {
    await sleep(4000); // the pool of the test before has drained
    const list = await account('eager', SOCKETS_PER_USER);
    // Another user's costly message first, so the one worker is busy while all eight arrive.
    const [blocker] = await account('blocker', 1);
    blocker!.send({ type: 'send', room: 'lobby', text: COSTLY_MARKDOWN[0], clientId: 'block' });
    list.forEach((client, i) => client.send({ type: 'send', room: 'lobby', text: COSTLY_MARKDOWN[i % COSTLY_MARKDOWN.length], clientId: `e${i}` }));
    const deadline = Date.now() + 10_000;
    while (answers(list).size < list.length && Date.now() < deadline) await sleep(20);
    const found = answers(list);
    // Admitted: rendered, then stored (ack) or refused for what it rendered to (too_complex: links by the
    // hundred pass SANITIZE_MAX_HTML_CHARS); either way it held a place in the pool.
    const codes = [...found.values()].map((a) => (a.code === 'ack' || a.code === 'too_complex' ? 'admitted' : a.code)).sort();
    assert.deepEqual(codes, [...Array(PER_USER).fill('admitted'), ...Array(SOCKETS_PER_USER - PER_USER).fill('rate_limited')], tally(found));
    const refusal = list.flatMap((c) => c.frames).find((f) => f.type === 'error' && f.code === 'rate_limited');
    assert.ok(refusal && refusal.type === 'error' && /Slow down/.test(refusal.message), JSON.stringify(refusal));
  });
});
