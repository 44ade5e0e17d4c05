// requires: redis, postgres, haproxy
// The topology of compose.yaml without containers: Debian's HAProxy, run with the very
// deploy/haproxy.cfg compose uses, terminating TLS on 127.0.0.2 and re-encrypting to two Parley
// processes on 127.0.0.1 that share a real Redis and a real PostgreSQL and trust X-Forwarded-For
// only from the balancer (TRUST_PROXY=127.0.0.1, the address HAProxy connects to them from).
// Clients connect from other loopback addresses (127.0.0.4 …), so "the client's address" and
// "the balancer's address" differ, as they do in production.
//
// What it proves: WebSocket upgrades pass through; the health checks against /readyz pass over
// TLS; X-Forwarded-For is believed only from the balancer (a client's own header changes
// nothing, through the balancer or sent straight to an instance), so per-address limits see
// the real client; no sticky sessions are needed; and when an instance is SIGKILLed, its
// clients' next connect succeeds (on the survivor) and they receive messages again.
// Run: npx node --test --test-concurrency=1 test/deploy/load-balancer.test.ts  (about 20 s)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import type { ServerFrame } from '../../shared/protocol.ts';
import { localCertificate } from '../../server/tls.ts';
import { PASSWORD, sleep, type Reply } from '../helpers/server.ts';
import {
  freePort,
  freshDatabase,
  spawnParley,
  startPostgres,
  startRedis,
  type ParleyProcess,
  type PostgresService,
  type RedisService,
} from '../helpers/services.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Debian's package (scripts/ensure-system-deps.sh); /usr/sbin is not on every user's PATH. */
const HAPROXY = fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
const LB_ADDRESS = '127.0.0.2';
/** HAProxy reaches the instances (on 127.0.0.1) from 127.0.0.1: the one address they trust. */
const LB_SOURCE = '127.0.0.1';

type Endpoint = { host: string; port: number; ca: string; origin: string };

/** An HTTPS request from `from` (a loopback address) as a browser on `origin` sends it. */
function call(to: Endpoint, from: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: to.host,
        port: to.port,
        path: urlPath,
        method,
        localAddress: from,
        servername: 'localhost',
        ca: to.ca,
        agent: false,
        headers: {
          host: new URL(to.origin).host,
          origin: to.origin,
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

function cookieOf(reply: Reply): string {
  const lines = reply.headers['set-cookie'] ?? [];
  const line = (Array.isArray(lines) ? lines : [lines]).find((c) => c.startsWith('__Host-parley.sid='));
  if (!line) throw new Error(`no session cookie: ${reply.status} ${reply.text}`);
  return line.split(';')[0]!;
}

type Socket = {
  ws: WebSocket;
  next: <T extends ServerFrame['type']>(type: T, timeoutMs?: number) => Promise<Extract<ServerFrame, { type: T }>>;
  closed: Promise<number>;
};

/** A WSS client from `from`; resolves after its first `rooms` frame (the upgrade passed every check). */
function socket(to: Endpoint, from: string, cookie: string): Promise<Socket> {
  const options: ClientOptions & ConnectionOptions & { localAddress: string } = {
    ca: to.ca,
    servername: 'localhost',
    localAddress: from,
    origin: to.origin,
    headers: { host: new URL(to.origin).host, cookie },
    perMessageDeflate: false,
  };
  const ws = new WebSocket(`wss://${to.host}:${to.port}/ws`, options);
  const frames: ServerFrame[] = [];
  const waiters: Array<() => void> = [];
  let cursor = 0;
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as ServerFrame);
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const client: Socket = {
    ws,
    closed,
    next: (type, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${type}" frame within ${timeoutMs} ms; got ${JSON.stringify(frames.slice(cursor))}`)), timeoutMs);
        const look = () => {
          while (cursor < frames.length) {
            const frame = frames[cursor++]!;
            if (frame.type === type) {
              clearTimeout(timer);
              return resolve(frame as never);
            }
          }
          waiters.push(look);
        };
        look();
      }),
  };
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
    ws.once('open', () => client.next('rooms').then(() => resolve(client), reject));
  });
}

/** HAProxy's view of its servers (the runtime API on a unix socket): name → status (UP, DOWN, …). */
function serverStates(adminSocket: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(adminSocket);
    let text = '';
    conn.on('connect', () => conn.write('show stat\n'));
    conn.on('data', (chunk) => (text += chunk.toString()));
    conn.on('error', reject);
    conn.on('end', () => {
      const states = new Map<string, string>();
      const [head = '', ...rows] = text.trim().split('\n');
      const columns = head.replace(/^# /, '').split(',');
      const name = columns.indexOf('svname');
      const status = columns.indexOf('status');
      for (const row of rows) {
        const cells = row.split(',');
        if (cells[0] === 'parley' && !['FRONTEND', 'BACKEND'].includes(cells[name]!)) states.set(cells[name]!, cells[status]!);
      }
      resolve(states);
    });
  });
}

async function waitUntil(
  what: string,
  ms: number,
  ready: () => Promise<boolean>,
  detail: () => string = () => '',
  fatal: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready().catch(() => false))) {
    if (Date.now() > deadline || fatal()) throw new Error(`${what}: not within ${ms} ms\n${detail()}`);
    await sleep(100);
  }
}

/** The audit-log lines (JSON on stdout) of an instance with this event. */
function events(instance: ParleyProcess, event: string): Array<Record<string, unknown>> {
  return instance
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('two instances behind HAProxy (deploy/haproxy.cfg) on real Redis and PostgreSQL', () => {
  let redis: RedisService;
  let postgres: PostgresService;
  let instances: ParleyProcess[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyOutput = '';
  let dir: string;
  let adminSocket: string;
  let lb: Endpoint;
  const sockets: Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-lb-'));
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    const databaseUrl = await freshDatabase(postgres, 'parley_lb');
    const lbPort = await freePort();
    const origin = `https://localhost:${lbPort}`;
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: databaseUrl,
      // Shared by every instance: a cookie signed by one is accepted by the other.
      SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      TRUST_PROXY: LB_SOURCE,
      // The origin browsers see is the balancer's.
      APP_ORIGIN: origin,
      LOGIN_ADDRESS_FAILURES: '3',
    };
    // One internal certificate for both instances (TLS_CERT_FILE/TLS_KEY_FILE, as in compose), for
    // the name the balancer checks; each DATA_DIR holds a copy, where the test helpers read it.
    const internal = path.join(dir, 'internal');
    await localCertificate(internal, ['localhost']);
    const tls = { TLS_CERT_FILE: path.join(internal, 'localhost-cert.pem'), TLS_KEY_FILE: path.join(internal, 'localhost-key.pem') };
    const dataDirs = ['parley1', 'parley2'].map((name) => {
      const dataDir = path.join(dir, name);
      fs.mkdirSync(dataDir, { mode: 0o700 });
      fs.copyFileSync(tls.TLS_CERT_FILE, path.join(dataDir, 'localhost-cert.pem'));
      return dataDir;
    });
    instances = await Promise.all(dataDirs.map((dataDir) => spawnParley({ env: { ...env, ...tls }, dataDir })));

    // The balancer's public certificate (HAProxy wants certificate and key in one PEM), and the
    // instances' self-signed certificate as the CA it checks them against.
    const publicCert = await localCertificate(path.join(dir, 'public'), ['localhost']);
    const pem = (...blocks: string[]) => blocks.map((block) => `${block.replace(/\r\n/g, '\n').trim()}\n`).join('');
    fs.writeFileSync(path.join(dir, 'public.pem'), pem(publicCert.cert, publicCert.key), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'instances-ca.pem'), pem(instances[0]!.ca));
    // Test-only addition: the runtime API, to read the health-check verdicts.
    adminSocket = path.join(dir, 'admin.sock');
    fs.writeFileSync(path.join(dir, 'test.cfg'), `global\n    stats socket ${adminSocket} mode 600 level admin\n`);

    haproxy = spawn(HAPROXY, ['-db', '-f', path.join(ROOT, 'deploy/haproxy.cfg'), '-f', path.join(dir, 'test.cfg')], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/bin',
        LB_BIND: `${LB_ADDRESS}:${lbPort}`,
        LB_CERT: path.join(dir, 'public.pem'),
        PARLEY1: `127.0.0.1:${instances[0]!.port}`,
        PARLEY2: `127.0.0.1:${instances[1]!.port}`,
        PARLEY_CA: path.join(dir, 'instances-ca.pem'),
        PARLEY_TLS_NAME: 'localhost',
        APP_HOST: new URL(origin).host,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    haproxy.stdout?.on('data', (chunk: Buffer) => (haproxyOutput += chunk.toString()));
    haproxy.stderr?.on('data', (chunk: Buffer) => (haproxyOutput += chunk.toString()));
    haproxy.once('error', (error) => (haproxyOutput += `spawn failed: ${error.message} (apt-get install haproxy; scripts/ensure-system-deps.sh)\n`));
    lb = { host: LB_ADDRESS, port: lbPort, ca: publicCert.cert, origin };
    let states = new Map<string, string>();
    await waitUntil(
      'HAProxy listening and both instances UP',
      15_000,
      async () => {
        states = await serverStates(adminSocket);
        return states.get('parley1') === 'UP' && states.get('parley2') === 'UP';
      },
      () => `states: ${JSON.stringify(Object.fromEntries(states))}\nhaproxy (exit ${String(haproxy?.exitCode)}):\n${haproxyOutput}`,
      () => haproxy?.exitCode !== null,
    );
  });

  after(async () => {
    for (const s of sockets) s.ws.terminate();
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((resolve) => haproxy!.once('exit', resolve));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await Promise.all(instances.map((p) => p.close().catch(() => {})));
    await redis?.stop();
    await postgres?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function signUp(name: string, from = '127.0.0.4'): Promise<string> {
    const registered = await call(lb, from, 'POST', '/api/register', { username: name, password: PASSWORD });
    assert.equal(registered.status, 201, registered.text);
    const loggedIn = await call(lb, from, 'POST', '/api/login', { username: name, password: PASSWORD });
    assert.equal(loggedIn.status, 200, loggedIn.text);
    return cookieOf(loggedIn);
  }

  test('HAProxy marks both instances UP: its health checks reach GET /readyz over TLS and get 200', async () => {
    const states = await serverStates(adminSocket);
    assert.deepEqual(Object.fromEntries(states), { parley1: 'UP', parley2: 'UP' });
  });

  test('a WebSocket upgrade through the balancer is accepted (Origin, Host and session pass through) and carries frames', async () => {
    const cookie = await signUp('wanda');
    const client = await socket(lb, '127.0.0.4', cookie);
    sockets.push(client);
    client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    await client.next('history');
  });

  test('no sticky sessions: one login through the balancer, then requests and sockets land on both instances and all work', async () => {
    const cookie = await signUp('stella');
    for (let i = 0; i < 6; i++) {
      const me = await call(lb, '127.0.0.4', 'GET', '/api/me', undefined, { cookie });
      assert.equal(me.status, 200, `GET /api/me #${i + 1}: ${me.status} ${me.text}`);
    }
    for (let i = 0; i < 4; i++) sockets.push(await socket(lb, '127.0.0.4', cookie));
    const opened = instances.map((p) => events(p, 'ws_open').filter((e) => e['user'] === 'stella').length);
    assert.ok(opened[0]! >= 1 && opened[1]! >= 1, `stella's sockets per instance: ${opened.join(' / ')} (round robin: both)`);
  });

  test("a client's own X-Forwarded-For, sent through the balancer, changes nothing: Parley logs the client's real address", async () => {
    const reply = await call(lb, '127.0.0.4', 'POST', '/api/register', { username: 'xavier', password: PASSWORD }, { 'x-forwarded-for': '203.0.113.77' });
    assert.equal(reply.status, 201, reply.text);
    const logged = instances.flatMap((p) => events(p, 'register')).filter((e) => e['user'] === 'xavier');
    assert.deepEqual(
      logged.map((e) => e['ip']),
      ['127.0.0.4'],
    );
    for (const p of instances) assert.ok(!p.output().includes('203.0.113.77'), 'the forged address reaches no log');
  });

  test('per-address limits see the real client through the balancer: a rotating X-Forwarded-For does not escape them, and they do not fall on everyone behind the balancer', async () => {
    // LOGIN_ADDRESS_FAILURES=3, shared by both instances through Redis.
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await call(
        lb,
        '127.0.0.6',
        'POST',
        '/api/login',
        { username: `nobody${i}`, password: 'wrong password here' },
        { 'x-forwarded-for': `198.51.100.${i + 1}` },
      );
      statuses.push(reply.status);
    }
    assert.deepEqual(statuses.slice(0, 3), [401, 401, 401], statuses.join(','));
    assert.equal(statuses[4], 429, `the fifth failure from 127.0.0.6 is throttled: ${statuses.join(',')}`);
    // Another client behind the same balancer is not: the limit was keyed on 127.0.0.6, not on the balancer.
    const other = await call(lb, '127.0.0.7', 'POST', '/api/login', { username: 'nobody9', password: 'wrong password here' });
    assert.equal(other.status, 401, other.text);
  });

  test('sent straight to an instance (not through the balancer), X-Forwarded-For is ignored: the connecting address is logged', async () => {
    const target = instances[0]!;
    const direct: Endpoint = { host: '127.0.0.1', port: target.port, ca: target.ca, origin: lb.origin };
    const reply = await call(direct, '127.0.0.5', 'POST', '/api/register', { username: 'dexter', password: PASSWORD }, { 'x-forwarded-for': '203.0.113.99' });
    assert.equal(reply.status, 201, reply.text);
    assert.deepEqual(
      events(target, 'register')
        .filter((e) => e['user'] === 'dexter')
        .map((e) => e['ip']),
      ['127.0.0.5'],
    );
    assert.ok(!target.output().includes('203.0.113.99'));
  });

  test("health probes leave no trace in the instances' logs", () => {
    for (const p of instances) assert.ok(!/readyz|healthz/.test(p.output()), p.output().slice(-500));
  });

  test("one instance SIGKILLed: its clients' next connect through the balancer succeeds on the survivor, and they receive messages", async () => {
    const alice = await signUp('alice');
    const bob = await signUp('bob');
    // Two sockets each, opened one after the other: round robin puts one of each on each instance.
    const aliceSockets = [await socket(lb, '127.0.0.4', alice), await socket(lb, '127.0.0.4', alice)];
    const bobSockets = [await socket(lb, '127.0.0.8', bob), await socket(lb, '127.0.0.8', bob)];
    sockets.push(...aliceSockets, ...bobSockets);

    const victim = instances[0]!;
    await victim.kill('SIGKILL');
    // The sockets that were on it end (1006: no close frame from a killed process).
    const ended = async (list: Socket[]) => {
      const settled = await Promise.all(list.map((s) => Promise.race([s.closed.then(() => true), sleep(3000).then(() => false)])));
      return list.filter((_, i) => settled[i]);
    };
    const [aliceLost, bobLost] = await Promise.all([ended(aliceSockets), ended(bobSockets)]);
    assert.equal(aliceLost.length, 1, "one of alice's two sockets was on the killed instance");
    assert.equal(bobLost.length, 1, "one of bob's two sockets was on the killed instance");

    // Reconnect at once, before the health checks have noticed (2 s × 2): a connection the
    // balancer sends to the dead instance is refused and redispatched (retries, option redispatch).
    const aliceBack = await socket(lb, '127.0.0.4', alice);
    const bobBack = await socket(lb, '127.0.0.8', bob);
    sockets.push(aliceBack, bobBack);
    const aliceSurvivor = aliceSockets.find((s) => !aliceLost.includes(s))!;
    for (const s of [aliceBack, aliceSurvivor, bobBack]) {
      s.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
      await s.next('history');
    }
    bobBack.ws.send(JSON.stringify({ type: 'send', room: 'lobby', text: 'still here', clientId: 'after-kill' }));
    await bobBack.next('ack');
    for (const s of [aliceBack, aliceSurvivor]) {
      const message = await s.next('message');
      assert.equal(message.user, 'bob');
      assert.match(message.html, /still here/);
    }

    // And the health checks take the dead instance out of rotation.
    await waitUntil('HAProxy marks parley1 DOWN', 10_000, async () => (await serverStates(adminSocket)).get('parley1')?.startsWith('DOWN') === true);
    for (let i = 0; i < 4; i++) assert.equal((await call(lb, '127.0.0.4', 'GET', '/api/me', undefined, { cookie: alice })).status, 200);
  });
});
