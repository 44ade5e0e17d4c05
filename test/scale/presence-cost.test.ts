// requires: redis
// Presence under a crowd, and presence off a recording. Two Parley instances (A, B) on one
// real Redis; a raw Redis client listens on the presence channel the way anyone with
// subscribe access could, and publishes what it recorded.
//
// Cost: N users join one room at once on A (as after a bus loss, when every client of an
// instance reconnects within seconds), then all leave at once, while listeners sit in the
// room on A and on B. Each listener must get the changes coalesced — a bounded number of
// frames per PRESENCE_COALESCE_SECONDS window, not one per user — and the bus must carry what
// changed, not the room's whole online set on every change (that is N publishes of O(N)
// names: quadratic bytes).
//
// Replay: a sealed presence body ("X is online") and a sealed room line ("X joined"),
// recorded off Redis and published again after X left, must not bring X back online nor
// repeat the line; they are dropped and logged once, like any other bad bus input.
// Decisions: docs/decisions/018-rooms-with-consent.md (presence), 013-bus-loss.md (the bus).
// Run: npx node --test --test-concurrency=1 test/scale/presence-cost.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createClient } from '@redis/client';
import { hashPassword } from '../../server/security/passwords.ts';
import { joined, login, open, PASSWORD, sleep, startServer, type Client, type TestServer } from '../helpers/server.ts';
import { startRedis, type RedisService } from '../helpers/services.ts';

/** Users joining (and then leaving) at once. */
const N = 150;
/** The coalescing window these instances run with: wide, so the bound below does not hinge on the machine's speed. */
const WINDOW_MS = 200;
const ROOM = 'lobby';
const PRESENCE_CHANNEL = 'parley:presence';

type Tally = { frames: number; bytes: number; names: number };

/** Every presence frame a listener got after `mark`, and the online set they add up to. */
function presenceSince(client: Client, mark: number, start: ReadonlySet<string>): Tally & { online: Set<string> } {
  const online = new Set(start);
  const tally = { frames: 0, bytes: 0, names: 0 };
  for (const frame of client.frames.slice(mark)) {
    if (!frame.type.startsWith('presence') || !('room' in frame) || frame.room !== ROOM) continue;
    tally.frames += 1;
    tally.bytes += Buffer.byteLength(JSON.stringify(frame));
    if (frame.type === 'presence') {
      online.clear();
      for (const user of frame.online) online.add(user);
      tally.names += frame.online.length;
    } else if (frame.type === 'presence_change') {
      if (frame.online) online.add(frame.user);
      else online.delete(frame.user);
      tally.names += 1;
    } else if (frame.type === 'presence_delta') {
      for (const user of frame.online) online.add(user);
      for (const user of frame.offline) online.delete(user);
      tally.names += frame.online.length + frame.offline.length;
    }
  }
  return { ...tally, online };
}

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for: ${what}`);
    await sleep(20);
  }
}

/** Accounts made straight in the store (one argon2 hash for all: the test is about presence, not registration), then logged in over HTTPS. */
async function accounts(server: TestServer, names: string[], hash: string): Promise<string[]> {
  for (const name of names) assert.ok(await server.parley.store.createUser(name, hash, Date.now()));
  const cookies: string[] = [];
  for (let i = 0; i < names.length; i += 8) cookies.push(...(await Promise.all(names.slice(i, i + 8).map((name) => login(server, name)))));
  return cookies;
}

describe('presence: a crowd joining at once, and a recorded notice replayed', () => {
  let redis: RedisService;
  let a: TestServer;
  let b: TestServer;
  let tap: ReturnType<typeof createClient>;
  /** Every envelope seen on a channel, with the time it was seen. */
  const seen: Array<{ channel: string; payload: string; at: number }> = [];

  before(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      PRESENCE_COALESCE_SECONDS: String(WINDOW_MS / 1000),
      WS_MESSAGES_PER_SECOND: '1000',
      WS_MESSAGE_BURST: '1000',
    };
    [a, b] = await Promise.all([startServer({ env }), startServer({ env })]);
    tap = createClient({ url: redis.url });
    await tap.connect();
    for (const channel of [PRESENCE_CHANNEL, 'parley:rooms']) await tap.subscribe(channel, (payload) => seen.push({ channel, payload, at: Date.now() }));
  });

  after(async () => {
    tap?.destroy();
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  test(`cost: ${N} users join at once on A, then leave at once; listeners on A and B get coalesced frames, the bus carries changes`, async () => {
    const hash = await hashPassword(PASSWORD);
    const crowd = Array.from({ length: N }, (_, i) => `crowd${i}`);
    const crowdCookies = await accounts(a, crowd, hash);
    const [listenerA] = await accounts(a, ['listen-a'], hash);
    const [listenerB] = await accounts(b, ['listen-b'], hash);
    const listeners = { A: await joined(a, listenerA!, ROOM), B: await joined(b, listenerB!, ROOM) };
    await until('each listener sees the other online', 5000, () =>
      Object.values(listeners).every((client) => presenceSince(client, 0, new Set()).online.size === 2),
    );
    const sockets = await Promise.all(crowdCookies.map((cookie) => open(a, cookie)));
    await sleep(3 * WINDOW_MS);
    const everyone = new Set(['listen-a', 'listen-b', ...crowd]);
    const report: string[] = [];
    const failures: string[] = [];
    const check = (ok: boolean, why: string) => void (ok || failures.push(why));

    for (const phase of ['join', 'leave'] as const) {
      const marks = { A: listeners.A.frames.length, B: listeners.B.frames.length };
      const startSets = { A: presenceSince(listeners.A, 0, new Set()).online, B: presenceSince(listeners.B, 0, new Set()).online };
      const busMark = seen.length;
      const started = Date.now();
      if (phase === 'join') for (const socket of sockets) socket.send({ type: 'join', room: ROOM });
      else for (const socket of sockets) socket.ws.close();
      const want = phase === 'join' ? everyone.size : 2;
      await until(`${phase}: both listeners see ${want} online`, 20_000, () =>
        (['A', 'B'] as const).every((at) => presenceSince(listeners[at], marks[at], startSets[at]).online.size === want),
      );
      const settled = Date.now() - started;
      await sleep(3 * WINDOW_MS); // room for late or repeated frames, were there any
      for (const at of ['A', 'B'] as const) {
        const got = presenceSince(listeners[at], marks[at], startSets[at]);
        assert.deepEqual([...got.online].sort(), phase === 'join' ? [...everyone].sort() : ['listen-a', 'listen-b']);
        report.push(`${phase}: listener on ${at}: ${got.frames} presence frames, ${got.bytes} bytes, ${got.names} names (settled in ${settled} ms)`);
        // Coalesced: at most one frame per window (plus the window in flight at each end) — not one per user.
        const windows = Math.ceil(settled / WINDOW_MS) + 2;
        check(
          got.frames <= windows,
          `${phase} on ${at}: ${got.frames} presence frames for ${N} changes in ${settled} ms (> ${windows}, one per ${WINDOW_MS} ms window)`,
        );
        // Linear: each change is named about once.
        check(got.names <= 2 * N, `${phase} on ${at}: ${got.names} names sent for ${N} changes`);
      }
      // The whole set goes out every PRESENCE_REFRESH_SECONDS whatever happens: count the deltas.
      const all = seen.slice(busMark).filter((entry) => entry.channel === PRESENCE_CHANNEL);
      const bus = all.filter((entry) => !entry.payload.includes('"kind":"set"'));
      const busBytes = all.reduce((sum, entry) => sum + Buffer.byteLength(entry.payload), 0);
      report.push(`${phase}: bus: ${bus.length} presence publishes, ${busBytes} bytes`);
      // One delta per window at most (not one per user), however fast this machine is.
      const busWindows = Math.ceil(settled / WINDOW_MS) + 2;
      check(bus.length <= busWindows, `${phase}: ${bus.length} presence deltas for ${N} changes in ${settled} ms (> ${busWindows})`);
      // Linear: a change costs its name plus a share of an envelope; the whole set each time would be ~N²/2 names.
      check(busBytes <= 64 * N, `${phase}: ${busBytes} bytes of presence on the bus for ${N} changes (> ${64 * N})`);
    }
    console.log(report.join('\n'));
    for (const client of Object.values(listeners)) client.ws.close();
    assert.deepEqual(failures, [], report.join('\n'));
  });

  test('replay: a recorded presence body and room line, published again after the user left, are dropped and logged once', async () => {
    const hash = await hashPassword(PASSWORD);
    const [ghostCookie, hostOnA] = await accounts(a, ['ghost', 'host'], hash);
    await accounts(a, ['guest'], hash);
    const [watcherCookie, hostOnB] = await accounts(b, ['watcher', 'host'], hash);
    // Each instance has its own SQLite here: the private room exists on both, owned by "host".
    const owners = { A: await open(a, hostOnA!), B: await open(b, hostOnB!) };
    for (const owner of Object.values(owners)) {
      owner.send({ type: 'create', room: 'club' });
      await owner.next('room_added');
      owner.send({ type: 'join', room: 'club' });
      await owner.next('history');
    }
    const watcher = await joined(b, watcherCookie!, ROOM);
    const mark = seen.length;
    const ghost = await joined(a, ghostCookie!, ROOM);
    owners.A.send({ type: 'invite', room: 'club', user: 'guest' });
    await until('the watcher on B sees ghost online', 5000, () => presenceSince(watcher, 0, new Set()).online.has('ghost'));
    const invitedLines = () => owners.B.frames.filter((f) => f.type === 'room_event' && f.event === 'invited' && f.user === 'guest').length;
    await until('the invited line reached the room on B', 5000, () => invitedLines() === 1);
    const recorded = seen.slice(mark);
    const presenceBody = recorded.find((entry) => entry.channel === PRESENCE_CHANNEL && entry.payload.includes('ghost'));
    const invitedLine = recorded.find((entry) => entry.channel === 'parley:rooms' && entry.payload.includes('"invited"'));
    assert.ok(presenceBody, 'a presence envelope naming ghost was published');
    assert.ok(invitedLine, 'an invited line was published');

    ghost.ws.close();
    await until('the watcher on B sees ghost offline', 5000, () => !presenceSince(watcher, 0, new Set()).online.has('ghost'));
    await sleep(3 * WINDOW_MS);
    const replayMark = watcher.frames.length;
    const logsBefore = b.logs.length;
    for (let i = 0; i < 3; i++) {
      await tap.publish(presenceBody.channel, presenceBody.payload);
      await tap.publish(invitedLine.channel, invitedLine.payload);
    }
    await sleep(4 * WINDOW_MS);
    // Every check is made before failing, so one run shows each that fails.
    const failures: string[] = [];
    const check = (ok: boolean, why: string) => void (ok || failures.push(why));
    check(!presenceSince(watcher, 0, new Set()).online.has('ghost'), 'a replayed presence notice showed ghost online again');
    const replayedFrames = watcher.frames.slice(replayMark).filter((f) => f.type.startsWith('presence'));
    check(replayedFrames.length === 0, `presence frames after the replay: ${JSON.stringify(replayedFrames)}`);
    check(invitedLines() === 1, `a replayed room line was shown again (${invitedLines()} invited lines)`);
    // A socket that joins now is told who is online: ghost is not.
    const [lateCookie] = await accounts(b, ['late'], hash);
    const late = await open(b, lateCookie!);
    late.send({ type: 'join', room: ROOM });
    const set = await late.next('presence');
    check(!set.online.includes('ghost'), `ghost listed online to a new joiner: ${set.online.join(',')}`);
    const dropped = b.logs.slice(logsBefore).filter((line) => line.includes('"reason":"bus_bad_message"'));
    check(dropped.length >= 1 && dropped.length <= 2, `the replays are logged once per channel and window, got ${dropped.length} lines: ${dropped.join('\n')}`);
    assert.deepEqual(failures, []);
    for (const client of [watcher, late, ...Object.values(owners)]) client.ws.close();
  });
});
