// One socket's life: frames in order, heartbeat, backpressure, and an end that follows
// its session (expiry, logout, password change → close 1008).
import type { WebSocket } from 'ws';
import { CLOSE, type ClientFrame, type ErrorCode, type ServerFrame } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { FrameReader } from './frames.ts';

/** How long a peer may stay over WS_MAX_BUFFERED_BYTES before it counts as a slow consumer. */
const DRAIN_GRACE_MS = 1000;
/** Over this multiple of the limit the peer is dropped at once: memory stays bounded. */
const HARD_BOUND_FACTOR = 16;

export type ConnectionDeps = {
  readFrame: FrameReader;
  handle: (connection: Connection, frame: ClientFrame) => Promise<void>;
  /** Re-reads the session; resolves its new deadline, or undefined when it has ended. */
  sessionDeadline: (connection: Connection, touch: boolean) => Promise<number | undefined>;
  onClose: (connection: Connection) => void;
  log: AuditLog;
  maxBufferedBytes: number;
  /** How often socket activity may move the session's idle deadline. */
  touchEveryMs: number;
};

export class Connection {
  readonly rooms = new Set<string>();
  /** Rate-limited frames since the last accepted one; past a threshold the socket is closed. */
  refusedInARow = 0;
  alive = true;
  #expiresAt: number;
  #lastTouch = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #drainCheck: NodeJS.Timeout | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #ws: WebSocket;
  readonly #deps: ConnectionDeps;
  readonly user: string;
  readonly sid: string;
  readonly ip: string;

  constructor(ws: WebSocket, identity: { user: string; sid: string; ip: string; expiresAt: number }, deps: ConnectionDeps) {
    this.#ws = ws;
    this.#deps = deps;
    this.user = identity.user;
    this.sid = identity.sid;
    this.ip = identity.ip;
    this.#expiresAt = identity.expiresAt;

    ws.on('message', (data: Buffer, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => (this.alive = true));
    // Without an 'error' listener, ws's error for an oversized frame or bad UTF-8 would be
    // an uncaught exception that kills the process. ws closes the socket itself (1009/1007/1002).
    ws.on('error', (error: Error & { code?: string }) => {
      deps.log('ws_bad_frame', { user: this.user, ip: this.ip, reason: error.code ?? 'error' });
    });
    ws.on('close', (code) => {
      this.#closed = true;
      clearTimeout(this.#timer);
      clearTimeout(this.#drainCheck);
      deps.log('ws_close', { user: this.user, ip: this.ip, code });
      deps.onClose(this);
    });
    this.#arm();
  }

  get isOpen(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  send(frame: ServerFrame): void {
    this.sendSerialized(Buffer.from(JSON.stringify(frame)));
  }

  /**
   * Backpressure (OWASP WS: resource limits): a peer that stops reading is dropped, not
   * buffered without bound. Right after a burst, bytes sit in the buffer only because the
   * event loop has not flushed them yet, so being over the limit starts a grace period;
   * the peer is dropped if it is still over when the grace ends, or at once past a hard bound.
   */
  sendSerialized(data: Buffer): void {
    if (!this.isOpen) return;
    this.#ws.send(data, { binary: false });
    const buffered = this.#ws.bufferedAmount;
    const limit = this.#deps.maxBufferedBytes;
    if (buffered > limit * HARD_BOUND_FACTOR) return this.#drop(buffered);
    if (buffered > limit && !this.#drainCheck) {
      this.#drainCheck = setTimeout(() => {
        this.#drainCheck = undefined;
        if (this.isOpen && this.#ws.bufferedAmount > limit) this.#drop(this.#ws.bufferedAmount);
      }, DRAIN_GRACE_MS);
      this.#drainCheck.unref();
    }
  }

  #drop(buffered: number): void {
    this.#deps.log('ws_dropped_slow_consumer', { user: this.user, ip: this.ip, count: buffered });
    this.terminate();
  }

  sendError(code: ErrorCode, message: string, clientId?: string): void {
    this.send(clientId === undefined ? { type: 'error', code, message } : { type: 'error', code, message, clientId });
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#drainCheck);
    this.#ws.terminate();
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
    const frame = this.#deps.readFrame(this, data, isBinary);
    if (!frame) return;
    // One frame at a time per socket, so a client's messages keep their order.
    this.#queue = this.#queue.then(() => this.#process(frame));
  }

  async #process(frame: ClientFrame): Promise<void> {
    if (!this.isOpen) return;
    const now = Date.now();
    // A message on an expired session is refused, even in the instant before the timer fires.
    const touch = now - this.#lastTouch >= this.#deps.touchEveryMs;
    if (now >= this.#expiresAt || touch) {
      const deadline = await this.#deps.sessionDeadline(this, touch);
      if (deadline === undefined || deadline <= Date.now()) return this.#sessionEnded();
      this.#expiresAt = deadline;
      if (touch) this.#lastTouch = now;
      this.#arm();
    }
    try {
      await this.#deps.handle(this, frame);
    } catch (error) {
      this.#deps.log('server_error', { user: this.user, detail: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
      this.sendError('internal', 'The server could not process that message.');
    }
  }

  #sessionEnded(): void {
    this.#deps.log('session_expired', { user: this.user, ip: this.ip });
    this.sendError('session_expired', 'Your session has ended. Sign in again.');
    this.close(CLOSE.policyViolation, 'session expired');
  }

  /** Wake up at the session's deadline; re-read it then (other tabs may have kept it alive). */
  #arm(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const delay = Math.max(0, Math.min(this.#expiresAt - Date.now(), 2 ** 31 - 1));
    this.#timer = setTimeout(async () => {
      const deadline = await this.#deps.sessionDeadline(this, false).catch(() => undefined);
      if (deadline === undefined || deadline <= Date.now()) return this.#sessionEnded();
      this.#expiresAt = deadline;
      this.#arm();
    }, delay + 5);
    this.#timer.unref();
  }
}
