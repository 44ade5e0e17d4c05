// One socket's life: frames in order, heartbeat, backpressure, and an end that follows
// its session (expiry, logout, password change → close 1008).
//
// Send path: every server frame is framed once (a shared Buffer for a broadcast), queued on
// this connection, and all frames queued during one event-loop turn go out in one write on
// the TLS socket. Why this is sound next to ws's own writes (pings, pongs, close frames):
// docs/decisions/009-fan-out-write-coalescing.md.
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';
import { CLOSE, type ClientFrame, type ErrorCode, type ServerFrame } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { FrameReader } from './frames.ts';
import { flushAtEndOfTurn } from './write-batcher.ts';

type FrameOptions = { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean };
/** ws's own framer (exported by ws as `Sender`; not declared in @types/ws). */
const { Sender } = wsModule as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } };
/** WebSocket.OPEN (readyState), read without a getter on the hot path. */
const OPEN = 1;
/** RFC 6455 §5.2: one unfragmented text frame; server frames are never masked. */
const TEXT_FRAME: FrameOptions = { fin: true, opcode: 0x1, mask: false, readOnly: true, rsv1: false };

/**
 * A complete WebSocket text frame (header + payload in one Buffer), built once and written
 * as is to any number of sockets. The Buffer is never modified afterwards.
 */
export type TextFrame = Buffer & { readonly __textFrame: unique symbol };

export function textFrame(json: string | Buffer): TextFrame {
  const payload = typeof json === 'string' ? Buffer.from(json) : json;
  const [header, data] = Sender.frame(payload, TEXT_FRAME) as [Buffer, Buffer?];
  return (data ? Buffer.concat([header, data], header.length + data.length) : header) as TextFrame;
}

export type ConnectionDeps = {
  readFrame: FrameReader;
  handle: (connection: Connection, frame: ClientFrame) => Promise<void>;
  /** Re-reads the session; resolves its new deadline, or undefined when it has ended. */
  sessionDeadline: (connection: Connection, touch: boolean) => Promise<number | undefined>;
  onClose: (connection: Connection) => void;
  log: AuditLog;
  maxBufferedBytes: number;
  /** How long a peer may stay over maxBufferedBytes before it counts as a slow consumer. */
  slowConsumerGraceMs: number;
  /** Over this the peer is dropped at once: memory stays bounded. */
  maxBufferedHardBytes: number;
  /** How often socket activity may move the session's idle deadline. */
  touchEveryMs: number;
  /** SESSION_RECHECK_SECONDS: the longest a socket goes without re-reading its session. */
  recheckMs: number;
};

export class Connection {
  static #nextId = 1;
  /** Process-unique, for keying per-socket state such as log aggregation; never sent anywhere. */
  readonly id = Connection.#nextId++;
  alive = true;
  #expiresAt: number;
  #lastTouch = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #drainCheck: NodeJS.Timeout | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Frames queued this turn, in the order send() was called; written by flush(). */
  #out: Buffer[] = [];
  #outBytes = 0;
  /**
   * The socket's buffered bytes as of the last flush. Between flushes only ws's own control
   * frames (a few bytes each) can add to them while the kernel drains them, so queued bytes +
   * this value bound bufferedAmount for the cheap check in sendFrame (point 4 of decision 009).
   */
  #socketBuffered = 0;
  readonly #ws: WebSocket;
  /** The TLS socket ws was handed in handleUpgrade: the one our frames are written to. */
  readonly #socket: Duplex;
  readonly #deps: ConnectionDeps;
  readonly user: string;
  readonly sid: string;
  readonly ip: string;

  constructor(ws: WebSocket, identity: { socket: Duplex; user: string; sid: string; ip: string; expiresAt: number }, deps: ConnectionDeps) {
    // Writing pre-built frames next to ws is sound only while ws's Sender never holds frames
    // back, i.e. without permessage-deflate (server.ts turns it off). Fail loudly otherwise.
    if (ws.extensions !== '') throw new Error(`Connection: unexpected WebSocket extensions "${ws.extensions}"`);
    this.#ws = ws;
    this.#socket = identity.socket;
    this.#deps = deps;
    this.user = identity.user;
    this.sid = identity.sid;
    this.ip = identity.ip;
    this.#expiresAt = identity.expiresAt;

    ws.on('message', (data: Buffer, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => (this.alive = true));
    // The socket wrote out everything it held: the peer is reading, so a grace period ends.
    // ('drain' comes only after a write found the socket over its highWaterMark, 64 KiB, the
    // smallest WS_MAX_BUFFERED_BYTES; the check at the start of flush() covers the rest.)
    // ws's automatic pongs bypass this queue; ws bounds them itself (maxPendingAutoPongs, 60).
    identity.socket.on('drain', () => this.#drained());
    // Without an 'error' listener, ws's error for an oversized frame or bad UTF-8 would be
    // an uncaught exception that kills the process. ws closes the socket itself (1009/1007/1002).
    ws.on('error', (error: Error & { code?: string }) => {
      deps.log('ws_bad_frame', { user: this.user, ip: this.ip, reason: error.code ?? 'error' });
    });
    ws.on('close', (code) => {
      this.#stop();
      deps.log('ws_close', { user: this.user, ip: this.ip, code });
      deps.onClose(this);
    });
    this.#arm();
  }

  /** Resolves once every frame received so far has been handled (and its writes committed). */
  get settled(): Promise<void> {
    return this.#queue;
  }

  get isOpen(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  send(frame: ServerFrame): void {
    this.sendFrame(textFrame(JSON.stringify(frame)));
  }

  /**
   * Queues one frame (Fanout hands every member the same one). Everything sent to this socket
   * goes through this queue, so frames keep the order of the calls: an `ack` sent before a
   * broadcast is delivered before it. The queue is written in one go at the end of the
   * event-loop turn (flush), so a socket that receives 50 messages in one turn costs one TLS
   * write, not 100.
   */
  sendFrame(frame: TextFrame): void {
    if (this.#closed || this.#ws.readyState !== OPEN) return;
    if (this.#out.length === 0) flushAtEndOfTurn(this);
    this.#out.push(frame);
    this.#outBytes += frame.length;
    // Per delivery, so the cheap bound first; the exact check reads the socket's buffer.
    if (this.#outBytes + this.#socketBuffered > this.#deps.maxBufferedBytes) this.#checkBackpressure();
  }

  /**
   * Writes the queued frames as one buffer. Never after close: once ws has begun closing
   * (our close(), a peer's close frame, a protocol error) its close frame may be on the wire,
   * and RFC 6455 §5.5.1 allows no data frame after it; the queue is discarded instead.
   */
  flush(): void {
    const out = this.#out;
    if (out.length === 0) return;
    this.#outBytes = 0;
    const socket = this.#socket;
    // Under the limit before this turn's frames: the peer caught up since the last flush.
    if (this.#drainCheck && this.#ws.bufferedAmount <= this.#deps.maxBufferedBytes) this.#drained();
    if (this.isOpen && !socket.destroyed && socket.writable) {
      // Corked, the frames leave as one writev, which Node's TLS layer encrypts as one
      // SSL_write. Not Buffer.concat: a new Buffer per write is tens of MB/s of external
      // memory under fan-out, which V8 answers with full GCs (decision 009, "Allocation").
      if (out.length > 1) socket.cork();
      for (const frame of out) socket.write(frame);
      if (out.length > 1) socket.uncork();
    }
    out.length = 0;
    if (!this.isOpen) return;
    this.#socketBuffered = this.#ws.bufferedAmount;
    this.#checkBackpressure();
  }

  /** Bytes not yet handed to the kernel: our queue plus the socket's (= ws.bufferedAmount). */
  get bufferedAmount(): number {
    return this.#outBytes + this.#ws.bufferedAmount;
  }

  /**
   * Backpressure (OWASP WS: resource limits): a peer that stops reading is dropped, not
   * buffered without bound. Right after a burst, bytes sit in the buffer only because the
   * event loop has not flushed them yet, so being over the limit starts a grace period;
   * the peer is dropped if it stays over for the whole grace period, or at once past a hard
   * bound. A reader that catches up in between (the socket drains, or is under the limit
   * before the next flush) ends the grace period: being over at two instants a second apart
   * is a busy reader, not a stopped one. The bound counts this connection's own queue too,
   * so coalescing cannot hide bytes from it.
   */
  #checkBackpressure(): void {
    const buffered = this.bufferedAmount;
    const limit = this.#deps.maxBufferedBytes;
    if (buffered <= limit) return;
    if (buffered > this.#deps.maxBufferedHardBytes) return this.#drop(buffered);
    if (!this.#drainCheck) {
      this.#drainCheck = setTimeout(() => {
        this.#drainCheck = undefined;
        if (this.isOpen && this.bufferedAmount > limit) this.#drop(this.bufferedAmount);
      }, this.#deps.slowConsumerGraceMs);
      this.#drainCheck.unref();
    }
  }

  #drained(): void {
    clearTimeout(this.#drainCheck);
    this.#drainCheck = undefined;
  }

  #drop(buffered: number): void {
    this.#deps.log('ws_dropped_slow_consumer', { user: this.user, ip: this.ip, count: buffered });
    this.terminate();
  }

  sendError(code: ErrorCode, message: string, clientId?: string): void {
    this.send(clientId === undefined ? { type: 'error', code, message } : { type: 'error', code, message, clientId });
  }

  /** Frames queued before the close (e.g. the `session_expired` error) go out before the close frame. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.flush();
    this.#stop();
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#stop();
    this.#ws.terminate();
  }

  /** No more frames from us and no more timers: the queue is dropped, the session timer and grace check end. */
  #stop(): void {
    this.#closed = true;
    this.#out.length = 0;
    this.#outBytes = 0;
    clearTimeout(this.#timer);
    clearTimeout(this.#drainCheck);
    this.#drainCheck = undefined;
  }

  /** Heartbeat tick: a peer that did not answer the last ping is gone (NAT drop, sleep, crash). */
  ping(): boolean {
    if (!this.alive) return false;
    this.alive = false;
    this.#ws.ping();
    return true;
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.alive = true;
    const verdict = this.#deps.readFrame(this, data, isBinary);
    if (verdict.kind === 'refuse') return this.sendError(verdict.code, verdict.message, verdict.clientId);
    if (verdict.kind === 'close') return this.close(verdict.code, verdict.reason);
    // One frame at a time per socket, so a client's messages keep their order.
    const { frame } = verdict;
    this.#queue = this.#queue.then(() => this.#process(frame));
  }

  async #process(frame: ClientFrame): Promise<void> {
    if (!this.isOpen) return;
    // Everything inside the try: a rejection here must not break this socket's frame queue.
    try {
      const now = Date.now();
      // A message on an expired session is refused, even in the instant before the timer fires.
      const touch = now - this.#lastTouch >= this.#deps.touchEveryMs;
      if (now >= this.#expiresAt || touch) {
        const deadline = await this.#deps.sessionDeadline(this, touch);
        if (deadline === undefined || deadline <= Date.now()) return this.#sessionEnded();
        this.#expiresAt = deadline;
        if (touch) this.#lastTouch = now;
        this.#arm();
        // The socket may have closed while the session was read: its frame is not handled.
        if (!this.isOpen) return;
      }
      await this.#deps.handle(this, frame);
    } catch (error) {
      this.#deps.log('server_error', { user: this.user, detail: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
      this.sendError('internal', 'The server could not process that message.');
    }
  }

  /**
   * ASVS 7.4.1/7.4.3: the session is over (expired, logged out, password changed), so is the
   * socket: the client is told why, then closed with 1008 (it must sign in, not reconnect).
   */
  endSession(reason: 'session expired' | 'session ended'): void {
    if (!this.isOpen) return; // already closed for another reason (e.g. 1013: store unreachable)
    this.sendError('session_expired', 'Your session has ended. Sign in again.');
    this.close(CLOSE.policyViolation, reason);
  }

  #sessionEnded(): void {
    if (!this.isOpen) return;
    this.#deps.log('session_expired', { user: this.user, ip: this.ip });
    this.endSession('session expired');
  }

  /**
   * Wake up at the session's deadline, or after SESSION_RECHECK_SECONDS if that is sooner, and
   * re-read the session then (other tabs may have kept it alive). The re-check bounds how long
   * a socket that only listens outlives a session that vanished from the store without a
   * revocation reaching it (Redis restarted empty, a notice lost: decision 013).
   */
  #arm(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const delay = Math.max(0, Math.min(this.#expiresAt - Date.now(), this.#deps.recheckMs, 2 ** 31 - 1));
    this.#timer = setTimeout(async () => {
      const deadline = await this.#deps.sessionDeadline(this, false).catch(() => undefined);
      if (deadline === undefined || deadline <= Date.now()) return this.#sessionEnded();
      this.#expiresAt = deadline;
      this.#arm();
    }, delay + 5);
    this.#timer.unref();
  }
}
