// Test harness: a real Parley over real HTTPS/WSS on an ephemeral loopback port, with a
// temporary DATA_DIR, plus small clients that let a test play attacker: any Origin, any
// cookie, any header. No mocks: the server under test is the one users run.
import { SESSION_COOKIE } from '../../server/http/session.ts';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import type { ServerFrame } from '../../shared/protocol.ts';
import { loadConfig, type Control } from '../../server/config.ts';
import { startParley, type Parley } from '../../server/parley.ts';
import { createAuditLog } from '../../server/security/audit-log.ts';
import type { ParleyStore } from '../../server/store/store.ts';

export const PASSWORD = 'correct horse battery staple';

export type TestServer = {
  parley: Parley;
  port: number;
  /** The allowed browser origin. */
  origin: string;
  /** Where clients connect (the cert is valid for 127.0.0.1 and localhost). */
  base: string;
  ca: string;
  dataDir: string;
  /** Every audit-log line the server wrote. */
  logs: string[];
  close: () => Promise<void>;
};

export type StartOptions = {
  env?: Record<string, string>;
  disabled?: Control[];
  dataDir?: string;
  /** Wrap the real store (test/helpers/slow-store.ts). */
  wrapStore?: (store: ParleyStore) => ParleyStore;
};

/** Ports this process has handed out: the probe below is closed again, so the kernel may offer the same one twice. */
const handedOut = new Set<number>();

/**
 * A free loopback port, for servers and services the tests start; never one this process handed
 * out before (two instances given the same port: one exits EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-test-'));
  const port = await freePort();
  const config = loadConfig(
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_ORIGIN: `https://localhost:${port}`,
      DATA_DIR: dataDir,
      // The test-only way to switch one control off, to show its test can fail: the lab
      // switch, on loopback, as a workshop uses it (config is read-only once loaded).
      ...(options.disabled ? { PARLEY_UNSAFE_DISABLE: options.disabled.join(',') } : {}),
      ...options.env,
    },
    [],
  );
  const logs: string[] = [];
  const parley = await startParley(config, {
    log: createAuditLog((line) => logs.push(line)),
    ...(options.wrapStore ? { wrapStore: options.wrapStore } : {}),
  });
  return {
    parley,
    port,
    origin: `https://localhost:${port}`,
    base: `https://127.0.0.1:${port}`,
    ca: parley.certificate.cert,
    dataDir,
    logs,
    close: async () => {
      await parley.close();
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type Reply = { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any };

export type RequestOptions = {
  body?: unknown;
  /** Raw body string; sent as is (with whatever content-type header is given). */
  rawBody?: string;
  cookie?: string;
  /** Headers to send; `origin` defaults to the allowed origin; pass undefined to omit it. */
  headers?: Record<string, string | undefined>;
};

export function request(server: TestServer, method: string, urlPath: string, options: RequestOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const wanted: Record<string, string | undefined> = {
    origin: server.origin,
    ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(options.cookie ? { cookie: options.cookie } : {}),
    ...options.headers,
  };
  for (const [key, value] of Object.entries(wanted)) if (value !== undefined) headers[key] = value;
  const payload = options.rawBody ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined);
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.base}${urlPath}`, { method, headers, ca: server.ca, servername: 'localhost', agent: false }, (res) => {
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
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** The `name=value` pair of the session cookie from a Set-Cookie header, for a Cookie header. */
export function sessionCookie(reply: Reply): string {
  const setCookie = reply.headers['set-cookie'] ?? [];
  const line = (Array.isArray(setCookie) ? setCookie : [setCookie]).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!line) throw new Error(`no session cookie in reply ${reply.status} ${reply.text}`);
  return line.split(';')[0]!;
}

export async function register(server: TestServer, username: string, password = PASSWORD): Promise<void> {
  const reply = await request(server, 'POST', '/api/register', { body: { username, password } });
  if (reply.status !== 201) throw new Error(`register ${username}: ${reply.status} ${reply.text}`);
}

export async function login(server: TestServer, username: string, password = PASSWORD): Promise<string> {
  const reply = await request(server, 'POST', '/api/login', { body: { username, password } });
  if (reply.status !== 200) throw new Error(`login ${username}: ${reply.status} ${reply.text}`);
  return sessionCookie(reply);
}

/** Register and log in; returns the Cookie header value. */
export async function signUp(server: TestServer, username: string): Promise<string> {
  await register(server, username);
  return login(server, username);
}

// ---- WebSocket client --------------------------------------------------------------

export type Client = {
  ws: WebSocket;
  frames: ServerFrame[];
  /** Next frame (after those already consumed) matching the predicate. */
  next: <T extends ServerFrame['type']>(type: T, timeoutMs?: number) => Promise<Extract<ServerFrame, { type: T }>>;
  send: (frame: unknown) => void;
  closed: Promise<{ code: number; reason: string }>;
};

export type Attempt = { client: Client } | { status: number; body: string } | { error: Error };

export type ConnectOptions = { cookie?: string; origin?: string | null; path?: string; headers?: Record<string, string> };

/** Opens a WSS connection; resolves with the client, or with the HTTP refusal status. */
export function connect(server: TestServer, options: ConnectOptions = {}): Promise<Attempt> {
  // The Host a browser on the allowed origin sends (we connect to 127.0.0.1; the gate checks Host).
  const headers: Record<string, string> = { host: new URL(server.origin).host, ...options.headers };
  if (options.cookie) headers['cookie'] = options.cookie;
  const origin = options.origin === undefined ? server.origin : options.origin;
  const wsOptions: ClientOptions & ConnectionOptions = {
    ca: server.ca,
    servername: 'localhost',
    headers,
    ...(origin !== null ? { origin } : {}),
    perMessageDeflate: false,
  };
  const ws = new WebSocket(`wss://127.0.0.1:${server.port}${options.path ?? '/ws'}`, wsOptions);
  const frames: ServerFrame[] = [];
  const waiters: Array<() => void> = [];
  let cursor = 0;
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as ServerFrame);
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const wake of waiters.splice(0)) wake();
    }),
  );
  const client: Client = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: (type, timeoutMs = 3000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for a "${type}" frame; got ${JSON.stringify(frames.slice(cursor))}`)), timeoutMs);
        const look = () => {
          while (cursor < frames.length) {
            const frame = frames[cursor++]!;
            if (frame.type === type) {
              clearTimeout(timer);
              resolve(frame as never);
              return;
            }
          }
          if (ws.readyState === ws.CLOSED) {
            clearTimeout(timer);
            reject(new Error(`socket closed while waiting for "${type}"`));
            return;
          }
          waiters.push(look);
        };
        look();
      }),
  };
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ client }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (error) => resolve({ error }));
  });
}

/** Connect and insist on success: returns the client after its first `rooms` frame. */
export async function open(server: TestServer, cookie: string): Promise<Client> {
  const attempt = await connect(server, { cookie });
  if (!('client' in attempt)) throw new Error(`upgrade refused: ${JSON.stringify(attempt)}`);
  await attempt.client.next('rooms');
  return attempt.client;
}

/** Connect, join a room and wait for its history. */
export async function joined(server: TestServer, cookie: string, room = 'lobby'): Promise<Client> {
  const client = await open(server, cookie);
  client.send({ type: 'join', room });
  await client.next('history');
  return client;
}

export function refusedStatus(attempt: Attempt): number | undefined {
  return 'status' in attempt ? attempt.status : undefined;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
