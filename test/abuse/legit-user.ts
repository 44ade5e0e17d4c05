// A legitimate user in its own process, for the handshake-abuse test: on each "attempt" line
// it logs in over HTTPS and opens a WebSocket, both from LEGIT_LOCAL_ADDRESS, and answers
// with one JSON line {total, login, upgrade} (ms, until the first `rooms` frame) or {error}.
// Its own process, so the attack's client work in the test process does not count as the
// server's latency. Started by startLegitUser() in harness.ts; not a test file itself.
import https from 'node:https';
import readline from 'node:readline';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const base = env('LEGIT_BASE');
const port = new URL(base).port;
const origin = env('LEGIT_ORIGIN');
const ca = env('LEGIT_CA');
const localAddress = env('LEGIT_LOCAL_ADDRESS');
const body = JSON.stringify({ username: env('LEGIT_USER'), password: env('LEGIT_PASSWORD') });

function login(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${base}/api/login`,
      {
        method: 'POST',
        ca,
        servername: 'localhost',
        agent: false,
        localAddress,
        headers: { origin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const setCookie = res.headers['set-cookie'] ?? [];
          const line = setCookie.find((c) => c.startsWith('__Host-parley.sid='));
          if (res.statusCode !== 200 || !line) return reject(new Error(`login ${res.statusCode}`));
          resolve(line.split(';')[0]!);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function upgrade(cookie: string): Promise<void> {
  const options: ClientOptions & ConnectionOptions = {
    ca,
    servername: 'localhost',
    localAddress,
    origin,
    headers: { cookie, host: new URL(origin).host },
    perMessageDeflate: false,
  };
  const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, options);
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string };
      ws.close();
      if (frame.type === 'rooms') resolve();
      else reject(new Error(`first frame ${frame.type}`));
    });
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'exit') process.exit(0);
  if (line !== 'attempt') return;
  const start = Date.now();
  try {
    const cookie = await login();
    const loggedIn = Date.now();
    await upgrade(cookie);
    const end = Date.now();
    process.stdout.write(JSON.stringify({ total: end - start, login: loggedIn - start, upgrade: end - loggedIn, cookie }) + '\n');
  } catch (error) {
    process.stdout.write(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }) + '\n');
  }
});
process.stdout.write('ready\n');
