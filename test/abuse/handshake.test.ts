// Handshake abuse against the real server with its DEFAULT configuration (a child process
// running server/main.ts): 200 TCP connections that never start TLS, 200 TLS connections
// that trickle header lines and never finish, and an upgrade flood with forged cookies. Each
// is cut or refused, and a legitimate login + upgrade during each attack stays under 1 s.
// Run: npx node --test test/abuse/handshake.test.ts
//
// Every test client is on loopback. The forged-cookie flood comes from 127.0.0.1 and the
// legitimate user from 127.0.0.2 (`localAddress`; all of 127.0.0.0/8 is loopback on Linux),
// so the server sees two client addresses, as it would see an attacker and a user. The
// legitimate user also runs in its own process (legit-user.ts), so the attack's client-side
// work in this process is not counted as server latency.
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import cookieSignature from 'cookie-signature';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { PASSWORD, register, type TestServer } from '../helpers/server.ts';
import { percentile, sleep, spawnServer, startLegitUser, type ChildServer, type LegitTiming } from './harness.ts';

type LegitUser = Awaited<ReturnType<typeof startLegitUser>>;

const ATTACKERS = 200;
const CUT_WITHIN_MS = 30_000;
const LEGIT_BOUND_MS = 1000;
const LEGIT_ADDRESS = '127.0.0.2';

type Cut = { cutAfterMs: number | undefined };

/** A TCP connection that never sends a byte; resolves when the server cuts it (or at waitMs). */
function silentTcp(port: number, waitMs: number): Promise<Cut> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({ cutAfterMs: undefined });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ cutAfterMs: Date.now() - start });
    });
  });
}

/** Completes TLS, then sends one header line a second and never the blank line that ends them. */
function trickle(server: TestServer, waitMs: number): Promise<Cut & { tls: boolean }> {
  return new Promise((resolve) => {
    const start = Date.now();
    let secured = false;
    let interval: NodeJS.Timeout | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => {
      secured = true;
      socket.write(`GET / HTTP/1.1\r\nHost: localhost:${server.port}\r\n`);
      interval = setInterval(() => {
        if (socket.writable) socket.write(`X-Trickle-${crypto.randomBytes(2).toString('hex')}: slow\r\n`);
      }, 1000);
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      clearInterval(interval);
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({ cutAfterMs: undefined, tls: secured });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      clearInterval(interval);
      resolve({ cutAfterMs: Date.now() - start, tls: secured });
    });
  });
}

/** Legitimate logins + upgrades (in their own process), one every `everyMs`, while `running()` holds. */
async function legitDuring(legit: LegitUser, running: () => boolean, everyMs: number): Promise<LegitTiming[]> {
  const times: LegitTiming[] = [];
  await sleep(300); // let the attack get going first
  while (running()) {
    const timing = await legit.attempt();
    const value = decodeURIComponent(timing.cookie.slice(timing.cookie.indexOf('=') + 1));
    sentIds.add(value.slice(2, value.lastIndexOf('.')));
    times.push(timing);
    await sleep(everyMs);
  }
  return times;
}

function timings(list: LegitTiming[]): string {
  return `${list.map((l) => `${l.total} (${l.login}+${l.upgrade})`).join(', ')} ms (login+upgrade); max ${Math.max(...list.map((l) => l.total))} ms`;
}

function summary(cuts: Array<number | undefined>): string {
  const done = cuts.filter((c): c is number => c !== undefined);
  return `${done.length}/${cuts.length} cut; after min ${Math.min(...done)} ms, median ${percentile(done, 50)} ms, p95 ${percentile(done, 95)} ms, max ${Math.max(...done)} ms`;
}

/** Every session id the tests sent (forged and real): none may appear in the server's output. */
const sentIds = new Set<string>();

function forgedCookie(): string {
  const id = crypto.randomBytes(24).toString('base64url');
  sentIds.add(id);
  return `__Host-parley.sid=${encodeURIComponent('s:' + cookieSignature.sign(id, crypto.randomBytes(32).toString('hex')))}`;
}

/** A WebSocket upgrade with a forged session cookie; resolves with the HTTP status (101 would be a breach). */
function forgedUpgrade(server: TestServer): Promise<number> {
  return new Promise((resolve) => {
    const options: ClientOptions & ConnectionOptions = {
      ca: server.ca,
      servername: 'localhost',
      origin: server.origin,
      headers: { cookie: forgedCookie(), host: new URL(server.origin).host },
      perMessageDeflate: false,
    };
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, options);
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', () => resolve(0));
  });
}

describe('handshake abuse (default configuration, child-process server)', () => {
  let child: ChildServer;
  let legit: LegitUser;

  before(async () => {
    child = await spawnServer(); // DEFAULT limits and timeouts: nothing lowered for the test
    await register(child.server, 'legit');
    // The legitimate user is its own process (as it would be its own machine), from 127.0.0.2.
    legit = await startLegitUser(child.server, 'legit', PASSWORD, LEGIT_ADDRESS);
    await legit.attempt(); // warm-up (first argon2 hash in the server)
  });
  after(async () => {
    await legit?.close();
    await child?.stop();
  });

  test(`${ATTACKERS} TCP connections that never start TLS: ≥ 95 % cut within 30 s; legitimate login + upgrade < 1 s meanwhile`, async (t) => {
    let running = true;
    // Opened over ~4 s (20 ms apart), as a slow-loris tool ramps up; the cut time counts from each connect.
    const attack = Promise.all(Array.from({ length: ATTACKERS }, async (_, i) => (await sleep(i * 20), silentTcp(child.port, CUT_WITHIN_MS + 2000))));
    const legitRun = legitDuring(legit, () => running, 1500);
    const cuts = (await attack).map((c) => c.cutAfterMs);
    running = false;
    const latencies = (await legitRun).map((l) => l.total);
    const within = cuts.filter((c) => c !== undefined && c <= CUT_WITHIN_MS).length;
    t.diagnostic(`silent TCP: ${summary(cuts)}`);
    t.diagnostic(`legitimate login + upgrade during the attack: ${timings(await legitRun)}`);
    assert.ok(within >= ATTACKERS * 0.95, `only ${within}/${ATTACKERS} cut within 30 s`);
    assert.ok(latencies.length >= 3, `${latencies.length} legitimate attempts`);
    assert.ok(Math.max(...latencies) < LEGIT_BOUND_MS, `a legitimate login + upgrade took ${Math.max(...latencies)} ms`);
  });

  test(`${ATTACKERS} TLS connections trickling header lines: ≥ 95 % cut within 30 s; legitimate login + upgrade < 1 s meanwhile`, async (t) => {
    let running = true;
    const attack = Promise.all(Array.from({ length: ATTACKERS }, async (_, i) => (await sleep(i * 20), trickle(child.server, CUT_WITHIN_MS + 2000))));
    const legitRun = legitDuring(legit, () => running, 1500);
    const results = await attack;
    running = false;
    const latencies = (await legitRun).map((l) => l.total);
    const cuts = results.map((c) => c.cutAfterMs);
    const within = cuts.filter((c) => c !== undefined && c <= CUT_WITHIN_MS).length;
    t.diagnostic(`trickling headers: ${summary(cuts)} (${results.filter((r) => r.tls).length} completed TLS first)`);
    t.diagnostic(`legitimate login + upgrade during the attack: ${timings(await legitRun)}`);
    assert.ok(results.filter((r) => r.tls).length >= ATTACKERS * 0.95, 'the attackers did get past TLS (the headers timeout is what cuts them)');
    assert.ok(within >= ATTACKERS * 0.95, `only ${within}/${ATTACKERS} cut within 30 s`);
    assert.ok(latencies.length >= 3, `${latencies.length} legitimate attempts`);
    assert.ok(Math.max(...latencies) < LEGIT_BOUND_MS, `a legitimate login + upgrade took ${Math.max(...latencies)} ms`);
  });

  test('an upgrade flood with forged cookies: never a 101, capped per address (429 after UPGRADE_ADDRESS_FAILURES = 60); a legitimate user on another address upgrades in < 1 s', async (t) => {
    const FLOOD = 400;
    const CONCURRENCY = 4;
    const statuses = new Map<number, number>();
    let sent = 0;
    const started = Date.now();
    let running = true;
    const legitRun = legitDuring(legit, () => running, 300);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (sent < FLOOD) {
          sent += 1;
          const status = await forgedUpgrade(child.server);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    const floodMs = Date.now() - started;
    running = false;
    const latencies = (await legitRun).map((l) => l.total);
    t.diagnostic(`forged-cookie upgrades: ${FLOOD} in ${floodMs} ms from 127.0.0.1; statuses ${[...statuses].map(([k, v]) => `${k}×${v}`).join(', ')}`);
    t.diagnostic(`legitimate login + upgrade from ${LEGIT_ADDRESS} during the flood: ${timings(await legitRun)}`);
    assert.equal(statuses.get(101) ?? 0, 0, 'no forged cookie was ever upgraded');
    const unauthenticated = statuses.get(401) ?? 0;
    const throttled = statuses.get(429) ?? 0;
    assert.equal(unauthenticated + throttled, FLOOD, 'every attempt refused with 401 or 429');
    // Checked before the async session lookup, so up to CONCURRENCY attempts may be in flight past the limit.
    assert.ok(unauthenticated >= 60 && unauthenticated <= 60 + CONCURRENCY, `${unauthenticated} attempts reached the session check`);
    assert.ok(throttled >= FLOOD - 60 - CONCURRENCY, `${throttled} throttled`);
    assert.ok(latencies.length >= 2, `${latencies.length} legitimate attempts`);
    assert.ok(Math.max(...latencies) < LEGIT_BOUND_MS, `a legitimate login + upgrade took ${Math.max(...latencies)} ms`);
    // The throttle is per address: 127.0.0.1 itself stays throttled for the window.
    assert.equal(await forgedUpgrade(child.server), 429);
  });

  // ASVS 16.2.5: nothing the attacks or the legitimate user sent that is secret reached the server's output.
  test('no session id (forged or real) and no password in anything the server wrote', () => {
    const everything = child.output.join('\n');
    assert.ok(sentIds.size > 400, `${sentIds.size} session ids to look for`);
    for (const id of sentIds) assert.ok(!everything.includes(id), 'a session id was logged');
    assert.ok(!everything.includes(PASSWORD), 'a password was logged');
    assert.ok(
      child.output.some((l) => l.includes('"upgrade_refused"')),
      'the refusals themselves were logged',
    );
  });
});
