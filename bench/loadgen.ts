// The load generator: a separate process (forked by bench/run.ts, commands over IPC) that
// plays many users against one server at a time. It measures what a user would see
// (handshakes/s, delivered messages/s, end-to-end latency from a timestamp carried in the
// message text) and reads the server's CPU and RSS from /proc, and reports its own CPU
// next to the server's so a saturated load generator is not mistaken for a saturated server.
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { WORST_CASE } from './costly-messages.ts';
import { cpuMsOf, Histogram, ownCpuMs, rssKbOf, sleep, type Kind } from './lib.ts';
import type { Step } from './report.ts';
import { stampOf, WireSocket, type OnText } from './wire.ts';

export const PASSWORD = 'correct horse battery staple';

type Target = { kind: Kind; port: number; pid: number; ca: string; origin: string };

/** Loopback source addresses, rotated so 10k+ sockets never run out of ephemeral ports. */
const SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);
let sourceIndex = 0;
const nextSource = (): string => SOURCES[sourceIndex++ % SOURCES.length]!;

/** Session cookies of the registered users (Parley only), index = user number. */
let cookies: string[] = [];

// ---- HTTP API (register / login) ------------------------------------------------------

function post(target: Target, path: string, body: unknown): Promise<{ status: number; cookie?: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `https://127.0.0.1:${target.port}${path}`,
      {
        method: 'POST',
        ca: target.ca,
        servername: 'localhost',
        agent: false,
        localAddress: nextSource(),
        headers: { origin: target.origin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const set = res.headers['set-cookie']?.find((c) => c.startsWith('__Host-parley.sid='));
          resolve({ status: res.statusCode ?? 0, ...(set ? { cookie: set.split(';')[0]! } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await job(i);
      }
    }),
  );
  return results;
}

/** Registers `users` accounts, then logs each in once (the login rate is measured here). */
async function setup(target: Target, users: number, concurrency: number) {
  const t0 = performance.now();
  await pool(users, concurrency, async (i) => {
    const reply = await post(target, '/api/register', { username: `bench${i}`, password: PASSWORD });
    if (reply.status !== 201) throw new Error(`register bench${i}: ${reply.status}`);
  });
  const t1 = performance.now();
  const cpu0 = ownCpuMs();
  const s0 = cpuMsOf(target.pid);
  cookies = await pool(users, concurrency, async (i) => {
    const reply = await post(target, '/api/login', { username: `bench${i}`, password: PASSWORD });
    if (reply.status !== 200 || !reply.cookie) throw new Error(`login bench${i}: ${reply.status}`);
    return reply.cookie;
  });
  const t2 = performance.now();
  return {
    users,
    concurrency,
    registerPerSec: users / ((t1 - t0) / 1000),
    loginPerSec: users / ((t2 - t1) / 1000),
    loginSeconds: (t2 - t1) / 1000,
    serverCpuPct: ((cpuMsOf(target.pid) - s0) / (t2 - t1)) * 100,
    loadgenCpuPct: ((ownCpuMs() - cpu0) / (t2 - t1)) * 100,
  };
}

// ---- clients ----------------------------------------------------------------------

type Client = {
  join: () => void;
  send: (text: string) => void;
  close: () => void;
  isOpen: () => boolean;
};
type Handlers = { onText?: OnText; onError?: () => void };

const UPGRADE_PATH: Record<Kind, string> = { parley: '/ws', bare: '/', socketio: '/socket.io/?EIO=4&transport=websocket' };
// Every server's frames put the frame type at a fixed offset: {"type":"message",… for Parley
// and the bare server, 42["message",… for socket.io. One byte tells a delivered message
// (m) from an error frame (e) without parsing the JSON.
const TYPE_AT: Record<Kind, number> = { parley: 9, bare: 9, socketio: 4 };
const M = 0x6d;
const E = 0x65;
// engine.io packet types (first byte of a socket.io frame) and socket.io packet types (second).
const EIO_OPEN = 0x30;
const EIO_PING = 0x32;
const EIO_MESSAGE = 0x34;
const SIO_CONNECT = 0x30;
const SIO_EVENT = 0x32;
const SIO_CONNECT_ERROR = 0x34;

/** The upgrade a browser sends: Origin, and for Parley the user's session cookie. */
function upgrade(target: Target, user: number, onText: OnText): Promise<WireSocket> {
  return WireSocket.connect({
    port: target.port,
    ca: target.ca,
    localAddress: nextSource(),
    path: UPGRADE_PATH[target.kind],
    headers: { origin: target.origin, ...(target.kind === 'parley' ? { cookie: cookies[user % cookies.length]! } : {}) },
    onText,
  });
}

/**
 * Opens one client of `target.kind` over the lean client in wire.ts; resolves once the server
 * accepted it (101, and for socket.io the namespace connect).
 */
async function open(target: Target, user: number, handlers: Handlers = {}): Promise<Client> {
  const at = TYPE_AT[target.kind];
  const onText: OnText = (data, start, end) => {
    const type = data[start + at];
    if (type === M) handlers.onText?.(data, start, end);
    else if (type === E) handlers.onError?.();
  };
  const wire = await upgrade(target, user, onText);
  const client = (join: string, send: (text: string) => string): Client => ({
    join: () => wire.send(join),
    send: (text) => wire.send(send(text)),
    close: () => wire.close(),
    isOpen: () => wire.isOpen,
  });
  if (target.kind !== 'socketio') {
    return client(JSON.stringify({ type: 'join', room: 'lobby' }), (text) => JSON.stringify({ type: 'send', room: 'lobby', text }));
  }
  // socket.io's handshake on the WebSocket: engine.io open (0{…}) → we connect the default
  // namespace (40) → 40{sid}. Afterwards engine.io pings (2) are answered with pongs (3).
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket.io: no namespace connect')), 20_000);
    wire.onText = (data, start) => {
      if (data[start] === EIO_OPEN) wire.send('40');
      else if (data[start] === EIO_MESSAGE && data[start + 1] === SIO_CONNECT) {
        clearTimeout(timer);
        resolve();
      } else if (data[start] === EIO_MESSAGE && data[start + 1] === SIO_CONNECT_ERROR) reject(new Error('socket.io connect_error'));
    };
  });
  wire.onText = (data, start, end) => {
    if (data[start] === EIO_MESSAGE && data[start + 1] === SIO_EVENT) onText(data, start, end);
    else if (data[start] === EIO_PING) wire.send('3');
  };
  return client(`42${JSON.stringify(['join', { room: 'lobby' }])}`, (text) => `42${JSON.stringify(['send', { room: 'lobby', text }])}`);
}

// ---- scenario 1: reconnect storm -------------------------------------------------------

/**
 * One handshake as after a deploy: a full TLS handshake (no session reuse), the upgrade request
 * a browser sends (Origin, and for Parley the session cookie) and the server's
 * `101 Switching Protocols`; then the socket is dropped.
 */
async function upgradeOnce(target: Target, user: number): Promise<void> {
  (await upgrade(target, user, () => {})).close();
}

async function storm(target: Target, durationMs: number, concurrency: number, users: number) {
  let handshakes = 0;
  let failures = 0;
  let user = 0;
  const end = performance.now() + durationMs;
  const cpu0 = ownCpuMs();
  const s0 = cpuMsOf(target.pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await upgradeOnce(target, user++ % users);
          handshakes++;
        } catch {
          failures++;
          await sleep(5);
        }
      }
    }),
  );
  const ms = performance.now() - t0;
  return {
    handshakes,
    failures,
    perSec: handshakes / (ms / 1000),
    serverCpuPct: ((cpuMsOf(target.pid) - s0) / ms) * 100,
    loadgenCpuPct: ((ownCpuMs() - cpu0) / ms) * 100,
  };
}

// ---- scenario 3: fan-out ---------------------------------------------------------------

const FILLER = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod';

async function fanout(target: Target, clients: number, rates: number[], warmupMs: number, measureMs: number, drainMs: number, allSteps: boolean) {
  // Measurement state of the current step, read by every client's message handler.
  let winStart = Infinity;
  let winEnd = -Infinity;
  let delivered = 0;
  let errors = 0;
  let hist = new Histogram();
  let probes = 0;
  const onText: OnText = (data, start, end) => {
    const t = stampOf(data, start, end);
    if (t < 0) {
      probes++;
      return;
    }
    if (t >= winStart && t < winEnd) {
      delivered++;
      hist.add(performance.now() - t);
    }
  };
  const list: Client[] = [];
  await pool(clients, 50, async (i) => {
    list[i] = await open(target, i, { onText, onError: () => errors++ });
  });
  for (const client of list) client.join();
  await sleep(300);
  // Ready when a probe message reaches every client.
  list[0]!.send(`~-1~ probe`);
  const ready = performance.now() + 15_000;
  while (probes < clients && performance.now() < ready) await sleep(20);
  if (probes < clients) throw new Error(`only ${probes}/${clients} clients got the probe`);

  const steps: Step[] = [];
  // The climb stops after two steps in a row are not held, not at the first: a neighbour's burst
  // on a shared machine can spoil one step, and a server that coalesces writes can hold a higher
  // rate after missing a lower one (at a low rate every delivery is its own TLS record, which is
  // also the load generator's most expensive case).
  let missed = 0;
  for (const rate of rates) {
    const total = rate * clients; // messages/s into the server
    delivered = 0;
    errors = 0;
    hist = new Histogram();
    let sent = 0;
    let sentInWindow = 0;
    const start = performance.now();
    winStart = start + warmupMs;
    winEnd = winStart + measureMs;
    let cpu0 = 0;
    let s0 = 0;
    let measuring = false;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        if (!measuring && now >= winStart) {
          measuring = true;
          cpu0 = ownCpuMs();
          s0 = cpuMsOf(target.pid);
        }
        if (now >= winEnd) {
          clearInterval(tick);
          resolve();
          return;
        }
        const due = Math.floor((total * (now - start)) / 1000);
        for (; sent < due; sent++) {
          const client = list[sent % clients]!;
          if (!client.isOpen()) continue;
          const t = performance.now();
          client.send(`~${t.toFixed(3)}~ ${FILLER}`);
          if (t >= winStart) sentInWindow++;
        }
      }, 2);
    });
    const cpuMs = ownCpuMs() - cpu0;
    const serverMs = cpuMsOf(target.pid) - s0;
    const expected = sentInWindow * clients;
    const deadline = performance.now() + drainMs;
    while (delivered < expected && performance.now() < deadline) await sleep(20);
    // CPU per delivery: server CPU time from the window's start until its messages are out.
    const serverMsToDrain = cpuMsOf(target.pid) - s0;
    const closed = list.filter((c) => !c.isOpen()).length;
    const p99 = hist.percentile(99);
    const step: Step = {
      ratePerClient: rate,
      offeredPerSec: total * clients,
      sentPerSec: sentInWindow / (measureMs / 1000),
      deliveredPerSec: delivered / (measureMs / 1000),
      deliveredPct: expected ? (delivered / expected) * 100 : 0,
      p50: hist.percentile(50),
      p99,
      serverCpuPct: (serverMs / measureMs) * 100,
      serverCpuUsPerDelivery: delivered ? (serverMsToDrain * 1000) / delivered : NaN,
      loadgenCpuPct: (cpuMs / measureMs) * 100,
      errors,
      closed,
      held: expected > 0 && delivered / expected >= 0.95 && p99 <= 50,
    };
    steps.push(step);
    process.send?.({
      progress:
        `  ${target.kind} ${clients} clients × ${rate}/s: ${Math.round(step.deliveredPerSec)} deliveries/s (${step.deliveredPct.toFixed(1)} %), ` +
        `p50 ${step.p50} / p99 ${p99} ms, server ${step.serverCpuPct.toFixed(0)} % CPU = ${step.serverCpuUsPerDelivery.toFixed(1)} µs/delivery, ` +
        `load-gen ${step.loadgenCpuPct.toFixed(0)} %${step.errors ? `, ${step.errors} errors` : ''}${step.closed ? `, ${step.closed} closed` : ''}${step.held ? '' : ' (not held)'}`,
    });
    winStart = Infinity;
    missed = step.held ? 0 : missed + 1;
    if (missed >= 2 && !allSteps) break;
    await sleep(300);
  }
  for (const client of list) client.close();
  await sleep(500);
  return { clients, steps };
}

// ---- scenario 4: idle memory --------------------------------------------------------------

async function memory(target: Target, steps: number[], socketsPerUser: number, settleMs: number) {
  await sleep(settleMs);
  const baseKb = rssKbOf(target.pid);
  const list: Client[] = [];
  const out: Array<{ connections: number; rssMB: number; perConnectionKB: number }> = [];
  const t0 = performance.now();
  for (const n of steps) {
    const from = list.length;
    await pool(n - from, 100, async (k) => {
      const i = from + k;
      list[i] = await open(target, Math.floor(i / socketsPerUser));
    });
    await sleep(settleMs);
    const kb = rssKbOf(target.pid);
    out.push({ connections: n, rssMB: kb / 1024, perConnectionKB: (kb - baseKb) / n });
    process.send?.({ progress: `  ${target.kind} ${n} idle connections: ${((kb - baseKb) / n).toFixed(1)} KB each` });
  }
  const openSeconds = (performance.now() - t0) / 1000;
  for (const client of list) client.close();
  await sleep(500);
  return { baseRssMB: baseKb / 1024, steps: out, openSeconds };
}

// ---- scenario 6: a hostile sender (Parley only) ------------------------------------------

/**
 * `observers` users in the lobby each send a plain-text message every `everyMs`; every delivery
 * to every observer is timed. First without, then with one more account sending the costliest
 * messages it may (costly-messages.ts) at its full allowed rate: the burst, then `ratePerSec`.
 */
async function hostile(target: Target, observers: number, everyMs: number, measureMs: number, burst: number, ratePerSec: number) {
  let hist = new Histogram();
  let delivered = 0;
  let refused = 0;
  const onText: OnText = (data, start, end) => {
    const t = stampOf(data, start, end);
    if (!(t >= 0)) return; // the attacker's own messages carry no stamp
    delivered++;
    hist.add(performance.now() - t);
  };
  const list: Client[] = [];
  await pool(observers, 20, async (i) => {
    list[i] = await open(target, i, { onText, onError: () => refused++ });
  });
  for (const client of list) client.join();
  let attackerErrors = 0;
  const attacker = await open(target, observers, { onError: () => attackerErrors++ });
  await sleep(3000); // past the server's start-up (its sanitizer workers load jsdom on the other core)

  const phase = async (attack: boolean) => {
    hist = new Histogram();
    delivered = 0;
    refused = 0;
    attackerErrors = 0;
    let sent = 0;
    let attackSent = 0;
    const start = performance.now();
    const cpu0 = cpuMsOf(target.pid);
    const attackOne = () => attacker.send(WORST_CASE[attackSent++ % WORST_CASE.length]!);
    if (attack) for (let i = 0; i < burst; i++) attackOne();
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        if (now - start >= measureMs) {
          clearInterval(tick);
          resolve();
          return;
        }
        // Observers, spread evenly over each period.
        const due = Math.floor(((now - start) * observers) / everyMs);
        for (; sent < due; sent++) list[sent % observers]!.send(`~${performance.now().toFixed(3)}~ hello`);
        if (attack) for (; attackSent < burst + Math.floor(((now - start) * ratePerSec) / 1000);) attackOne();
      }, 5);
    });
    const expected = sent * observers;
    const deadline = performance.now() + 5000;
    while (delivered < expected && performance.now() < deadline) await sleep(20);
    const result = {
      attack,
      observerMessages: sent,
      deliveredPct: expected ? (delivered / expected) * 100 : 0,
      p50: hist.percentile(50),
      p99: hist.percentile(99),
      max: hist.percentile(100),
      observerRefused: refused,
      attackerFrames: attackSent,
      attackerRefused: attackerErrors,
      serverCpuPct: ((cpuMsOf(target.pid) - cpu0) / (performance.now() - start)) * 100,
    };
    process.send?.({
      progress:
        `  ${attack ? 'with' : 'without'} the hostile sender: ${observers} observers, p50 ${result.p50} / p99 ${result.p99} / max ${result.max} ms, ` +
        `${result.deliveredPct.toFixed(1)} % delivered, ${refused} observer frames refused; attacker ${attackSent} frames, ${attackerErrors} refused`,
    });
    return result;
  };
  const calm = await phase(false);
  await sleep(3000); // the attacker's bucket refills
  const attacked = await phase(true);
  for (const client of list) client.close();
  attacker.close();
  await sleep(500);
  return { observers, everyMs, measureMs, burst, ratePerSec, calm, attacked };
}

// ---- IPC ----------------------------------------------------------------------------------

type Command =
  | { cmd: 'setup'; target: Target; users: number; concurrency: number }
  | { cmd: 'storm'; target: Target; durationMs: number; concurrency: number; users: number }
  | { cmd: 'fanout'; target: Target; clients: number; rates: number[]; warmupMs: number; measureMs: number; drainMs: number; allSteps: boolean }
  | { cmd: 'memory'; target: Target; steps: number[]; socketsPerUser: number; settleMs: number }
  | { cmd: 'hostile'; target: Target; observers: number; everyMs: number; measureMs: number; burst: number; ratePerSec: number }
  | { cmd: 'exit' };

process.on('message', async (message: Command & { id: number }) => {
  try {
    let result: unknown;
    switch (message.cmd) {
      case 'setup':
        result = await setup(message.target, message.users, message.concurrency);
        break;
      case 'storm':
        result = await storm(message.target, message.durationMs, message.concurrency, message.users);
        break;
      case 'fanout':
        result = await fanout(message.target, message.clients, message.rates, message.warmupMs, message.measureMs, message.drainMs, message.allSteps);
        break;
      case 'memory':
        result = await memory(message.target, message.steps, message.socketsPerUser, message.settleMs);
        break;
      case 'hostile':
        result = await hostile(message.target, message.observers, message.everyMs, message.measureMs, message.burst, message.ratePerSec);
        break;
      case 'exit':
        process.exit(0);
    }
    process.send!({ id: message.id, result });
  } catch (error) {
    process.send!({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});
