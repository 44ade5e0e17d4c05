// Shared pieces of the abuse tests: the real server as a child process (so its RSS and its
// exit are its own), a seeded PRNG, and a raw WebSocket client that writes frames byte by byte
// (RFC 6455 §5.2) so a test can send what no well-behaved library would: reserved opcodes,
// RSV bits, oversized or fragmented control frames, stray continuations, bad close codes.
import { freePort } from '../helpers/server.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';
import type { TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The Node running this test (npm test's, or PARLEY_TEST_NODE's). */
const NODE = process.execPath;

// ---- seeded PRNG -------------------------------------------------------------------

/** mulberry32: a tiny, fast, seedable PRNG; the same seed replays the same fuzz run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the server as a child process -------------------------------------------------

export type ChildServer = {
  proc: ChildProcess;
  pid: number;
  port: number;
  dataDir: string;
  /** Everything the process wrote to stdout and stderr, line by line. */
  output: string[];
  /** A TestServer-shaped handle for the HTTP/WS helpers in test/helpers/server.ts (no `parley`). */
  server: TestServer;
  /** Resident set size of the server process, in MiB (from /proc/<pid>/status). */
  rssMb: () => number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (or the given signal) and wait for the exit; removes DATA_DIR unless the caller gave it. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** `node server/main.ts` with the given env on a free loopback port; resolves once it listens. */
export async function spawnServer(env: Record<string, string> = {}, options: { dataDir?: string } = {}): Promise<ChildServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-abuse-'));
  const port = await freePort();
  const origin = `https://localhost:${port}`;
  const proc = spawn(NODE, ['server/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', PORT: String(port), HOST: '127.0.0.1', APP_ORIGIN: origin, DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        output.push(line);
        if (line.includes('Parley is listening')) listening();
      }
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const failed = exited.then(({ code }) => {
    throw new Error(`server exited (${code}) before listening:\n${output.join('\n')}`);
  });
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`server did not start:\n${output.join('\n')}`)), 30_000);
  });
  try {
    await Promise.race([ready, failed, slow]);
  } finally {
    clearTimeout(timer);
  }
  failed.catch(() => {});
  const ca = fs.readFileSync(path.join(dataDir, 'localhost-cert.pem'), 'utf8');
  const server = {
    port,
    origin,
    base: `https://127.0.0.1:${port}`,
    ca,
    dataDir,
    logs: output,
  } as unknown as TestServer;
  return {
    proc,
    pid: proc.pid!,
    port,
    dataDir,
    output,
    server,
    rssMb: () => {
      const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
    },
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const result = await exited;
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true }); // ours: a throwaway
      return result;
    },
  };
}

// ---- raw WebSocket frames ------------------------------------------------------------

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export type FrameSpec = {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as bits 0b100, 0b010, 0b001. */
  rsv?: number;
  /** Clients must mask (§5.3); false writes an unmasked frame, itself a protocol violation. */
  mask?: boolean;
  /** Declare this payload length in the header instead of the real one (the bytes are not sent). */
  declaredLength?: bigint;
};

/** One client-to-server frame, exactly as specified (including the invalid bits). */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : (spec.payload ?? Buffer.alloc(0));
  const fin = spec.fin ?? true;
  const masked = spec.mask ?? true;
  const length = spec.declaredLength ?? BigInt(payload.length);
  const b0 = (fin ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f);
  let header: Buffer;
  if (length < 126n) {
    header = Buffer.from([b0, (masked ? 0x80 : 0) | Number(length)]);
  } else if (length < 65536n) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = (masked ? 0x80 : 0) | 126;
    header.writeUInt16BE(Number(length), 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = (masked ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(length, 2);
  }
  if (spec.declaredLength !== undefined) {
    return Buffer.concat([header, masked ? crypto.randomBytes(4) : Buffer.alloc(0)]);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

export type RawFrame = { opcode: number; fin: boolean; payload: Buffer };

/**
 * A WebSocket client over a raw TLS socket: hand-written upgrade (session cookie, allowed
 * Origin), then whatever bytes the test writes. Server frames are parsed as they arrive.
 */
export class RawWs {
  readonly socket: tls.TLSSocket;
  readonly texts: string[] = [];
  readonly pongs: Buffer[] = [];
  /** The code of the server's close frame (undefined: none yet; 1005: a close frame with no code). */
  closeCode: number | undefined;
  ended = false;
  /** The socket error that ended the connection, if any (e.g. ECONNRESET). */
  error: Error | undefined;
  #buffer: Buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
  }

  static open(server: TestServer, cookie: string, options: { localAddress?: string } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: server.port,
        ca: server.ca,
        servername: 'localhost',
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      });
      const ws = new RawWs(socket);
      let head = '';
      let upgraded = false;
      const key = crypto.randomBytes(16).toString('base64');
      socket.on('secureConnect', () => {
        socket.write(
          [
            'GET /ws HTTP/1.1',
            `Host: localhost:${server.port}`,
            'Upgrade: websocket',
            'Connection: Upgrade',
            `Sec-WebSocket-Key: ${key}`,
            'Sec-WebSocket-Version: 13',
            `Origin: ${server.origin}`,
            `Cookie: ${cookie}`,
          ].join('\r\n') + '\r\n\r\n',
        );
      });
      socket.on('data', (chunk: Buffer) => {
        if (upgraded) return ws.#onData(chunk);
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!head.startsWith('HTTP/1.1 101 ')) {
          socket.destroy();
          return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        }
        const accept = crypto
          .createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64');
        if (!head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
          socket.destroy();
          return reject(new Error('bad Sec-WebSocket-Accept'));
        }
        upgraded = true;
        resolve(ws);
        const rest = Buffer.from(head.slice(end + 4), 'latin1');
        if (rest.length) ws.#onData(rest);
      });
      socket.on('error', (error) => {
        ws.error = error;
        if (!upgraded) reject(error);
      });
      socket.on('close', () => {
        ws.ended = true;
        if (!upgraded) reject(new Error('closed before the upgrade'));
        ws.#wake();
      });
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    for (;;) {
      const parsed = parseServerFrame(this.#buffer);
      if (!parsed) break;
      this.#buffer = this.#buffer.subarray(parsed.size);
      const { opcode, payload } = parsed.frame;
      if (opcode === OP.text) this.texts.push(payload.toString('utf8'));
      else if (opcode === OP.pong) this.pongs.push(payload);
      else if (opcode === OP.ping) this.write(frame({ opcode: OP.pong, payload }));
      else if (opcode === OP.close && this.closeCode === undefined) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        // Answer like a real client (§5.5.1), so the server can end the TCP connection at once.
        this.write(frame({ opcode: OP.close, payload: payload.subarray(0, 2) }));
        this.socket.end();
      }
    }
    this.#wake();
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  /** Resolves when `done()` holds (checked on every arrival), or rejects after timeoutMs. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const look = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else if (this.ended) {
          clearTimeout(timer);
          if (done()) resolve();
          else
            reject(new Error(`socket ended (close code ${this.closeCode ?? 'none'}, ${this.error?.message ?? 'no socket error'}) while waiting for ${what}`));
        } else this.#waiters.push(look);
      };
      look();
    });
  }

  /** Waits for the server's close frame (or the end of the connection): its code, 1006 when there was none. */
  async closed(timeoutMs = 5000): Promise<number> {
    await this.until(() => this.ended || this.closeCode !== undefined, timeoutMs, 'the server to close');
    return this.closeCode ?? 1006;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function parseServerFrame(buffer: Buffer): { frame: RawFrame; size: number } | undefined {
  if (buffer.length < 2) return undefined;
  const b0 = buffer[0]!;
  const b1 = buffer[1]!;
  let length = b1 & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  if (b1 & 0x80) offset += 4; // servers never mask; tolerate it anyway
  if (buffer.length < offset + length) return undefined;
  return { frame: { opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, payload: buffer.subarray(offset, offset + length) }, size: offset + length };
}

// ---- a well-behaved user in its own process ------------------------------------------

export type Observation = { sent: number; latencies: number[] };

export type Observer = {
  /** Start sending (one message every everyMs). */
  start: () => void;
  /** Stop, wait for the stragglers, and report. */
  stop: () => Promise<Observation>;
  close: () => Promise<void>;
};

/** Starts test/abuse/observer.ts against `server`: a sender and a listener (two users) in the lobby. */
export async function startObserver(server: TestServer, senderCookie: string, listenerCookie: string, everyMs: number): Promise<Observer> {
  const proc = spawn(NODE, [path.join(ROOT, 'test/abuse/observer.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      OBS_URL: `wss://127.0.0.1:${server.port}/ws`,
      OBS_ORIGIN: server.origin,
      OBS_CA: server.ca,
      OBS_SENDER_COOKIE: senderCookie,
      OBS_LISTENER_COOKIE: listenerCookie,
      OBS_EVERY_MS: String(everyMs),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  let wake: () => void = () => {};
  let partial = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const nextLine = async (timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (lines.length === 0) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`observer: no answer (${stderr.trim()})`);
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(50)]);
    }
    return lines.shift()!;
  };
  const ready = await nextLine(20_000);
  if (ready !== 'ready') throw new Error(`observer said ${ready}`);
  return {
    start: () => proc.stdin!.write('start\n'),
    stop: async () => {
      proc.stdin!.write('stop\n');
      return JSON.parse(await nextLine(10_000)) as Observation;
    },
    close: async () => {
      if (proc.exitCode === null) proc.stdin!.write('exit\n');
      await Promise.race([exited, sleep(2000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

// ---- a legitimate user in its own process ------------------------------------------

export type LegitTiming = { total: number; login: number; upgrade: number; cookie: string };

/** Starts test/abuse/legit-user.ts: each attempt() is a timed login + upgrade from `localAddress`. */
export async function startLegitUser(server: TestServer, username: string, password: string, localAddress: string) {
  const proc = spawn(NODE, [path.join(ROOT, 'test/abuse/legit-user.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      LEGIT_BASE: server.base,
      LEGIT_ORIGIN: server.origin,
      LEGIT_CA: server.ca,
      LEGIT_LOCAL_ADDRESS: localAddress,
      LEGIT_USER: username,
      LEGIT_PASSWORD: password,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`legit user exited: ${stderr.trim()}`);
    return value as string;
  };
  if ((await next()) !== 'ready') throw new Error(`legit user did not start: ${stderr.trim()}`);
  return {
    attempt: async (): Promise<LegitTiming> => {
      proc.stdin!.write('attempt\n');
      const reply = JSON.parse(await next()) as LegitTiming | { error: string };
      if ('error' in reply) throw new Error(`legitimate login + upgrade failed: ${reply.error}`);
      return reply;
    },
    close: async () => {
      if (proc.exitCode === null) proc.stdin!.write('exit\n');
      await Promise.race([new Promise((resolve) => proc.once('exit', resolve)), sleep(2000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}
