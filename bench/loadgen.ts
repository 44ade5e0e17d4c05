// The load generator: a separate process (forked by bench/run.ts, commands over IPC) that
// plays many users against one server at a time. It measures what a user would see
// (handshakes/s, delivered messages/s, end-to-end latency from a timestamp carried in the
// message text) and reads the server's CPU and RSS from /proc, and reports its own CPU
// next to the server's so a saturated load generator is not mistaken for a saturated server.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { io, type Socket } from 'socket.io-client';
import { cpuMsOf, Histogram, ownCpuMs, rssKbOf, sleep, type Kind } from './lib.ts';

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
type Handlers = { onText?: (raw: Buffer | string) => void; onError?: () => void };

// Every server puts `type` first: {"type":"message",… — byte 9 tells the frame types apart
// without scanning (m = message, e = error, r = rooms, h = history, a = ack).
const TYPE_AT = Buffer.byteLength('{"type":"');
const M = 0x6d;
const E = 0x65;

/** Opens one client of `target.kind`; resolves once the server accepted it (101 / connect). */
function open(target: Target, user: number, handlers: Handlers = {}): Promise<Client> {
  const localAddress = nextSource();
  if (target.kind === 'socketio') {
    return new Promise((resolve, reject) => {
      const socket: Socket = io(`https://127.0.0.1:${target.port}`, {
        transports: ['websocket'],
        ca: target.ca,
        localAddress,
        forceNew: true,
        reconnection: false,
        perMessageDeflate: false,
        timeout: 20_000,
      } as never);
      socket.on('message', (m: { html: string }) => handlers.onText?.(m.html));
      socket.once('connect', () =>
        resolve({
          join: () => socket.emit('join', { room: 'lobby' }),
          send: (text) => socket.emit('send', { room: 'lobby', text }),
          close: () => socket.disconnect(),
          isOpen: () => socket.connected,
        }),
      );
      socket.once('connect_error', reject);
    });
  }
  const parley = target.kind === 'parley';
  const options: ClientOptions & ConnectionOptions = {
    ca: target.ca,
    servername: 'localhost',
    localAddress,
    perMessageDeflate: false,
    skipUTF8Validation: true, // the load generator trusts the servers; saves its CPU
    ...(parley ? { origin: target.origin, headers: { cookie: cookies[user % cookies.length]! } } : {}),
  };
  const ws = new WebSocket(`wss://127.0.0.1:${target.port}${parley ? '/ws' : '/'}`, options);
  ws.on('message', (data: Buffer) => {
    const type = data[TYPE_AT];
    if (type === M) handlers.onText?.(data);
    else if (type === E) handlers.onError?.();
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.on('error', () => {});
      resolve({
        join: () => ws.send(JSON.stringify({ type: 'join', room: 'lobby' })),
        send: (text) => ws.send(JSON.stringify({ type: 'send', room: 'lobby', text })),
        close: () => ws.terminate(),
        isOpen: () => ws.readyState === WebSocket.OPEN,
      });
    });
    ws.once('error', reject);
  });
}

// ---- scenario 1: reconnect storm -------------------------------------------------------

const UPGRADE_PATH: Record<Kind, string> = { parley: '/ws', bare: '/', socketio: '/socket.io/?EIO=4&transport=websocket' };

/**
 * One handshake as lean as a client can make it: a full TLS handshake (no session reuse, as
 * after a deploy), the upgrade request a browser sends (Origin, and for Parley the session
 * cookie), and the server's `101 Switching Protocols`. Then the socket is dropped. Leaner than a
 * `ws` client so the load generator, which pays as much for a TLS handshake as the server,
 * is less of a ceiling; the Sec-WebSocket-Accept value is not checked (the servers are trusted).
 */
function upgradeOnce(target: Target, user: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // tls.connect hands localAddress on to net.connect; @types/node leaves it out of ConnectionOptions.
    const options = { host: '127.0.0.1', port: target.port, ca: target.ca, servername: 'localhost', localAddress: nextSource() };
    const socket = tls.connect(options as tls.ConnectionOptions);
    socket.once('secureConnect', () => {
      socket.write(
        `GET ${UPGRADE_PATH[target.kind]} HTTP/1.1\r\nHost: localhost:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nOrigin: ${target.origin}\r\n` +
          (target.kind === 'parley' ? `Cookie: ${cookies[user % cookies.length]}\r\n` : '') +
          '\r\n',
      );
    });
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      if (chunk.toString('latin1', 0, 12) === 'HTTP/1.1 101') resolve();
      else reject(new Error(chunk.toString('latin1', 0, 12)));
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
  });
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

/** The send time (performance.now() of this process) carried in the text as ~12345.678~. */
function sentAt(raw: Buffer | string): number {
  if (typeof raw === 'string') {
    const a = raw.indexOf('~');
    return Number(raw.slice(a + 1, raw.indexOf('~', a + 1)));
  }
  const a = raw.indexOf(126);
  return Number(raw.toString('latin1', a + 1, raw.indexOf(126, a + 1)));
}

type Step = {
  ratePerClient: number;
  offeredPerSec: number;
  sentPerSec: number;
  deliveredPerSec: number;
  deliveredPct: number;
  p50: number;
  p99: number;
  serverCpuPct: number;
  serverCpuUsPerDelivery: number;
  loadgenCpuPct: number;
  errors: number;
  closed: number;
  held: boolean;
};

async function fanout(target: Target, clients: number, rates: number[], warmupMs: number, measureMs: number, drainMs: number, allSteps: boolean) {
  // Measurement state of the current step, read by every client's message handler.
  let winStart = Infinity;
  let winEnd = -Infinity;
  let delivered = 0;
  let errors = 0;
  let hist = new Histogram();
  let probes = 0;
  const onText = (raw: Buffer | string): void => {
    const t = sentAt(raw);
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

// ---- IPC ----------------------------------------------------------------------------------

type Command =
  | { cmd: 'setup'; target: Target; users: number; concurrency: number }
  | { cmd: 'storm'; target: Target; durationMs: number; concurrency: number; users: number }
  | { cmd: 'fanout'; target: Target; clients: number; rates: number[]; warmupMs: number; measureMs: number; drainMs: number; allSteps: boolean }
  | { cmd: 'memory'; target: Target; steps: number[]; socketsPerUser: number; settleMs: number }
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
      case 'exit':
        process.exit(0);
    }
    process.send!({ id: message.id, result });
  } catch (error) {
    process.send!({ id: message.id, error: error instanceof Error ? error.stack ?? error.message : String(error) });
  }
});
