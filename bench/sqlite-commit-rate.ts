// Committed messages per second on the default SQLite store.
//
//   npx node bench/sqlite-commit-rate.ts [--seconds 5] [--clients 4] [--window 32] [--raw-count 20000]
//
// 1. End to end: the real server as a child process (node server/main.ts, its own DATA_DIR),
//    `--clients` signed-in users each keeping `--window` `send` frames in flight over WSS
//    and counting `ack` frames — an ack is sent only after the INSERT committed, so
//    acks/s = committed messages/s through TLS, ws, validation, sanitization and the store.
//    (Rate limits are raised for the run; everything else is the production path.)
// 2. Raw store: SqliteStore.addMessage awaited one after another in this process: the
//    ceiling the store itself puts on (1).
//
// Prints a summary line per part, then one JSON line; the JSON also goes to
// bench/results/sqlite-commit-rate.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../server/store/sqlite.ts';
import { joined, signUp } from '../test/helpers/server.ts';
import { spawnParley } from '../test/helpers/services.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '4' },
    window: { type: 'string', default: '32' },
    'raw-count': { type: 'string', default: '20000' },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const WINDOW = Number(values.window);
const RAW_COUNT = Number(values['raw-count']);
const TEXT = 'A typical chat line, about sixty characters long, plain text.';

async function endToEnd(): Promise<{ acked: number; seconds: number; perSecond: number; p50Ms: number; p99Ms: number }> {
  const server = await spawnParley({
    env: { WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '1000000', WS_MAX_CONNECTIONS_PER_USER: '100' },
  });
  try {
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await joined(server, await signUp(server, `bench${i}`)));
    let acked = 0;
    let measuring = false;
    let stop = false;
    const latencies: number[] = [];
    const done = clients.map(
      (client, c) =>
        new Promise<void>((resolve) => {
          let n = 0;
          let outstanding = 0;
          const sentAt = new Map<string, number>();
          const sendOne = () => {
            const clientId = `${c}-${n++}`;
            sentAt.set(clientId, performance.now());
            outstanding += 1;
            client.send({ type: 'send', room: 'lobby', text: TEXT, clientId });
          };
          client.ws.on('message', (data) => {
            const frame = JSON.parse(String(data)) as { type: string; clientId?: string };
            if (frame.type !== 'ack') return;
            outstanding -= 1;
            if (measuring) {
              acked += 1;
              latencies.push(performance.now() - sentAt.get(frame.clientId!)!);
            }
            sentAt.delete(frame.clientId!);
            if (!stop) sendOne();
            else if (outstanding === 0) resolve();
          });
          for (let i = 0; i < WINDOW; i++) sendOne();
        }),
    );
    // One second of warm-up (JIT, page cache), then the measured window.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    measuring = true;
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    measuring = false;
    const elapsed = (performance.now() - start) / 1000;
    const counted = acked;
    stop = true;
    await Promise.all(done);
    for (const client of clients) client.ws.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 10) / 10;
    return { acked: counted, seconds: Math.round(elapsed * 100) / 100, perSecond: Math.round(counted / elapsed), p50Ms: pct(0.5), p99Ms: pct(0.99) };
  } finally {
    await server.close();
  }
}

async function rawStore(): Promise<{ count: number; seconds: number; perSecond: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  const store = new SqliteStore(dir, () => Date.now() + 60_000);
  try {
    for (let i = 0; i < 1000; i++) await store.addMessage({ room: 'lobby', user: 'bench', text: TEXT, html: TEXT, ts: Date.now() }); // warm-up
    const start = performance.now();
    for (let i = 0; i < RAW_COUNT; i++) await store.addMessage({ room: 'lobby', user: 'bench', text: TEXT, html: TEXT, ts: Date.now() });
    const seconds = (performance.now() - start) / 1000;
    return { count: RAW_COUNT, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round(RAW_COUNT / seconds) };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The machine may be shared: the load average says how much the figures can be trusted.
const loadBefore = os.loadavg()[0]!;
const e2e = await endToEnd();
console.log(
  `end to end (WSS, ack after commit): ${e2e.perSecond} msgs/s — ${e2e.acked} acks in ${e2e.seconds} s, ` +
    `${CLIENTS} clients × ${WINDOW} in flight; ack latency p50 ${e2e.p50Ms} ms, p99 ${e2e.p99Ms} ms`,
);
const raw = await rawStore();
console.log(`raw SqliteStore.addMessage (one INSERT per commit, WAL, synchronous=NORMAL): ${raw.perSecond} msgs/s — ${raw.count} in ${raw.seconds} s`);
const result = {
  bench: 'sqlite-commit-rate',
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadAverage1m: { before: Math.round(loadBefore * 100) / 100, after: Math.round(os.loadavg()[0]! * 100) / 100 },
  endToEnd: { clients: CLIENTS, window: WINDOW, ...e2e },
  rawStore: raw,
};
console.log(JSON.stringify(result));
fs.mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
fs.writeFileSync(path.join(import.meta.dirname, 'results', 'sqlite-commit-rate.json'), JSON.stringify(result, null, 2) + '\n');
