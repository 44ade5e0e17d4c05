// A well-behaved user in its own process, so that what it measures is the server (and the
// network), not the event loop of the test process that is busy attacking. Two sockets: a
// sender posts a message to the lobby every OBS_EVERY_MS, a listener (another user) times
// each one from send to receipt. Driven over stdin/stdout, one line each:
//   → "ready"                       once both sockets have joined the lobby
//   ← "start"  → (sends until "stop")
//   ← "stop"   → {"sent":n,"latencies":[ms,…]}   (after waiting up to 3 s for stragglers)
// Started by startObserver() in harness.ts; not a test file itself.
import readline from 'node:readline';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const url = env('OBS_URL');
const everyMs = Number(env('OBS_EVERY_MS'));

function join(cookie: string): Promise<WebSocket> {
  const options: ClientOptions & ConnectionOptions = {
    ca: env('OBS_CA'),
    servername: 'localhost',
    origin: env('OBS_ORIGIN'),
    // The browser's Host: the allowed origin's host (the gate refuses any other).
    headers: { cookie, host: new URL(env('OBS_ORIGIN')).host },
    perMessageDeflate: false,
  };
  const ws = new WebSocket(url, options);
  return new Promise((resolve, reject) => {
    ws.on('message', function first(data) {
      if ((JSON.parse(String(data)) as { type: string }).type !== 'history') return;
      ws.off('message', first);
      resolve(ws);
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'join', room: 'lobby' })));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused ${res.statusCode}`)));
  });
}

const sender = await join(env('OBS_SENDER_COOKIE'));
const listener = await join(env('OBS_LISTENER_COOKIE'));
const sentAt = new Map<string, number>();
let latencies: number[] = [];
let sent = 0;
let timer: NodeJS.Timeout | undefined;
let phase = 0;

listener.on('message', (data) => {
  const received = Date.now();
  const frame = JSON.parse(String(data)) as { type: string; html?: string };
  if (frame.type !== 'message' || frame.html === undefined) return;
  const at = sentAt.get(frame.html);
  if (at === undefined) return;
  latencies.push(received - at);
  sentAt.delete(frame.html);
});
for (const ws of [sender, listener]) ws.on('close', (code) => process.stderr.write(`observer socket closed ${code}\n`));

const tick = () => {
  const text = `observer ${phase} says ${sent}`;
  sentAt.set(text, Date.now());
  sender.send(JSON.stringify({ type: 'send', room: 'lobby', text }));
  sent += 1;
  timer = setTimeout(tick, everyMs);
};

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'start') {
    phase += 1;
    sent = 0;
    latencies = [];
    sentAt.clear();
    tick();
  } else if (line === 'stop') {
    clearTimeout(timer);
    const deadline = Date.now() + 3000;
    while (sentAt.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    process.stdout.write(JSON.stringify({ sent, latencies }) + '\n');
  } else if (line === 'exit') {
    sender.close();
    listener.close();
    process.exit(0);
  }
});
process.stdout.write('ready\n');
