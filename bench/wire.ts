// The load generator's WebSocket client: RFC 6455 over a bare TLS socket, as lean as a
// client can be, used for all three servers (socket.io through its engine.io packets).
//
// Why not the `ws` client: in the fan-out scenario the load generator receives every
// delivery of every server, and with `ws` (a Writable stream per socket, a Buffer and an
// 'message' event per frame) it saturated its CPU core at the same step for Parley and the
// bare server — a ceiling of the measuring instrument, not of the servers. Here a received
// chunk is walked in place: no copy, no allocation per frame unless a frame straddles two
// chunks. Sending still uses `ws`'s own framer (masked, as RFC 6455 §5.3 requires of clients).
import { createHash, randomBytes } from 'node:crypto';
import tls from 'node:tls';
import * as wsModule from 'ws';

type FrameOptions = { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean };
const { Sender } = wsModule as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } };
const MASKED = (opcode: number): FrameOptions => ({ fin: true, opcode, mask: true, readOnly: true, rsv1: false });
const TEXT = MASKED(0x1);
const CLOSE = MASKED(0x8);
const PONG = MASKED(0xa);
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const HEAD_END = Buffer.from('\r\n\r\n');

/** One received text frame: its payload is `data[start, end)` (valid only during the call). */
export type OnText = (data: Buffer, start: number, end: number) => void;

export type WireOptions = {
  port: number;
  ca: string;
  localAddress: string;
  path: string;
  /** Extra request headers (Origin, Cookie). */
  headers: Record<string, string>;
  onText: OnText;
};

export class WireSocket {
  readonly #socket: tls.TLSSocket;
  #rest: Buffer | undefined;
  #open = true;
  onText: OnText;

  private constructor(socket: tls.TLSSocket, onText: OnText) {
    this.#socket = socket;
    this.onText = onText;
  }

  /** Resolves after the server's `101 Switching Protocols` (with a correct Sec-WebSocket-Accept). */
  static connect(options: WireOptions): Promise<WireSocket> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const accept = createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      // tls.connect hands localAddress on to net.connect; @types/node leaves it out of ConnectionOptions.
      const socket = tls.connect({
        host: '127.0.0.1',
        port: options.port,
        ca: options.ca,
        servername: 'localhost',
        localAddress: options.localAddress,
      } as tls.ConnectionOptions);
      socket.setNoDelay(true);
      const extra = Object.entries(options.headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.once('secureConnect', () => {
        socket.write(
          `GET ${options.path} HTTP/1.1\r\nHost: localhost:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      });
      let head = Buffer.alloc(0);
      const fail = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEAD_END);
        if (end < 0) return;
        socket.off('data', onHead);
        const response = head.toString('latin1', 0, end);
        if (!response.startsWith('HTTP/1.1 101')) return fail(new Error(response.split('\r\n')[0]));
        if (!new RegExp(`^sec-websocket-accept: *${accept.replace(/[+/]/g, '\\$&')}\\s*$`, 'im').test(response)) {
          return fail(new Error('bad Sec-WebSocket-Accept'));
        }
        const wire = new WireSocket(socket, options.onText);
        socket.on('data', (data: Buffer) => wire.#receive(data));
        socket.on('close', () => (wire.#open = false));
        socket.off('error', fail);
        socket.on('error', () => (wire.#open = false));
        resolve(wire);
        if (head.length > end + 4) wire.#receive(head.subarray(end + 4));
      };
      socket.on('data', onHead);
      socket.on('error', fail);
    });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  send(text: string): void {
    if (this.#open) this.#socket.write(Sender.frame(Buffer.from(text), TEXT)[0]!);
  }

  close(): void {
    this.#open = false;
    this.#socket.destroy();
  }

  /** Walks the frames of a chunk; keeps an incomplete tail for the next one. */
  #receive(chunk: Buffer): void {
    let data = chunk;
    if (this.#rest) {
      data = Buffer.concat([this.#rest, chunk]);
      this.#rest = undefined;
    }
    let i = 0;
    while (this.#open) {
      if (data.length - i < 2) break;
      const b0 = data[i]!;
      let length = data[i + 1]!;
      let start = i + 2;
      if (length & 0x80) return this.#protocolError(); // server frames are never masked (RFC 6455 §5.1)
      if (length === 126) {
        if (data.length - i < 4) break;
        length = data.readUInt16BE(i + 2);
        start = i + 4;
      } else if (length === 127) {
        if (data.length - i < 10) break;
        length = data.readUIntBE(i + 4, 6);
        start = i + 10;
      }
      const end = start + length;
      if (end > data.length) break;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || opcode === 0) return this.#protocolError(); // the servers never fragment
      if (opcode === 0x1) this.onText(data, start, end);
      else if (opcode === 0x9) this.#socket.write(Sender.frame(Buffer.from(data.subarray(start, end)), PONG)[0]!);
      else if (opcode === 0x8) {
        this.#socket.end(Sender.frame(Buffer.from(data.subarray(start, Math.min(end, start + 2))), CLOSE)[0]!);
        this.#open = false;
      }
      i = end;
    }
    if (i < data.length && this.#open) this.#rest = Buffer.from(data.subarray(i));
  }

  #protocolError(): void {
    this.#open = false;
    this.#socket.destroy();
  }
}

/**
 * The send time carried in a message's text as `~12345.678~` (performance.now() of the load
 * generator), read straight from the bytes; -1 for the readiness probe (`~-1~`).
 */
export function stampOf(data: Buffer, start: number, end: number): number {
  let i = data.indexOf(0x7e, start);
  if (i < 0 || i >= end) return NaN;
  const sign = data[i + 1] === 0x2d ? -1 : 1;
  if (sign < 0) i++;
  let digits = 0;
  let divisor = 1;
  let fraction = false;
  for (i++; i < end; i++) {
    const c = data[i]!;
    if (c === 0x7e) return (sign * digits) / divisor;
    if (c === 0x2e) fraction = true;
    else {
      digits = digits * 10 + (c - 0x30);
      if (fraction) divisor *= 10;
    }
  }
  return NaN;
}
