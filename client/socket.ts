// The chat WebSocket: one connection per signed-in tab, reconnecting with exponential
// backoff + jitter, validating every frame before anyone else sees it, and reporting a
// visible connection state. It knows nothing about rooms or the DOM; ui/chat-screen.ts
// listens to its events.
import { CLOSE, parseServerFrame } from '../shared/protocol.ts';
import type { ClientFrame, ServerFrame } from '../shared/protocol.ts';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

/** What GET /api/me said: still signed in, definitely signed out, or no answer. */
export type SessionCheck = 'valid' | 'ended' | 'unknown';

export type SocketEvents = {
  state: ConnectionState;
  /** A (re)connection is open; the server's `rooms` frame follows. */
  open: undefined;
  frame: ServerFrame;
  /** An open connection closed (the close code and reason the server gave); what follows is reported by `state`. */
  closed: { code: number; reason: string };
  /** The session is over; the socket has stopped for good. */
  ended: undefined;
  /**
   * Handshakes kept being refused although the session is valid (most likely the per-user
   * connection cap: too many open tabs or devices). Retrying has stopped until reconnectNow().
   */
  refused: undefined;
};

/** What the socket takes from the browser; the unit tests (test/client-socket.test.ts) pass fakes. */
export type SocketPlatform = {
  WebSocket: { new (url: string): WebSocket; readonly OPEN: number };
  /** Where the `online` and `offline` events arrive. */
  events: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>;
  onLine: () => boolean;
};

export type SocketOptions = {
  url: string;
  checkSession: () => Promise<SessionCheck>;
  /** The browser's own when left out. */
  platform?: SocketPlatform;
};

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A connection that stayed up this long was healthy: the next failure starts backoff afresh. */
const STABLE_AFTER_MS = 10_000;
/**
 * Refused handshakes in a row, each while GET /api/me says the session is valid, after which
 * the socket stops retrying and says so. Retrying for ever would poll /api/me for as long as
 * the tab stays open, against a limit that only closing another tab lifts.
 */
const MAX_REFUSED_WHILE_SIGNED_IN = 4;

type Listeners = { [K in keyof SocketEvents]: Set<(detail: SocketEvents[K]) => void> };

export class ChatSocket {
  readonly #url: string;
  readonly #checkSession: () => Promise<SessionCheck>;
  readonly #platform: SocketPlatform;
  readonly #listeners: Listeners = { state: new Set(), open: new Set(), frame: new Set(), closed: new Set(), ended: new Set(), refused: new Set() };
  #ws: WebSocket | null = null;
  #state: ConnectionState = 'offline';
  #running = false;
  #attempt = 0;
  #openedAt = 0;
  /** Handshakes refused in a row while the session was valid. */
  #refusedInARow = 0;
  /** Stopped retrying after MAX_REFUSED_WHILE_SIGNED_IN; reconnectNow() resumes. */
  #gaveUp = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: SocketOptions) {
    this.#url = options.url;
    this.#checkSession = options.checkSession;
    this.#platform = options.platform ?? { WebSocket, events: window, onLine: () => navigator.onLine };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  on<K extends keyof SocketEvents>(type: K, listener: (detail: SocketEvents[K]) => void): void {
    this.#listeners[type].add(listener);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#gaveUp = false;
    this.#refusedInARow = 0;
    this.#platform.events.addEventListener('online', this.#onOnline);
    this.#platform.events.addEventListener('offline', this.#onOffline);
    this.#connect('connecting');
  }

  /** Close for good (log-out, session end). No reconnect follows. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#platform.events.removeEventListener('online', this.#onOnline);
    this.#platform.events.removeEventListener('offline', this.#onOffline);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(CLOSE.normal);
    }
    this.#setState('offline');
  }

  /** Send one frame; false when there is no open connection (nothing is queued). */
  send(frame: ClientFrame): boolean {
    if (!this.#ws || this.#ws.readyState !== this.#platform.WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Skip the rest of the backoff wait, or try again after giving up (the "Reconnect now" / "Try again" buttons). */
  reconnectNow(): void {
    if (!this.#running || this.#ws) return;
    clearTimeout(this.#timer);
    if (this.#gaveUp) this.#attempt = 0; // "Try again" after giving up: short waits again
    this.#gaveUp = false;
    this.#refusedInARow = 0;
    this.#connect('reconnecting');
  }

  // ---- internals -------------------------------------------------------------

  #connect(state: ConnectionState): void {
    this.#setState(state);
    let ws: WebSocket;
    try {
      ws = new this.#platform.WebSocket(this.#url);
    } catch (error) {
      console.error('Parley: could not open the WebSocket', error);
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    let opened = false;

    ws.onopen = () => {
      opened = true;
      this.#refusedInARow = 0;
      this.#openedAt = Date.now();
      this.#setState('connected');
      this.#emit('open', undefined);
    };
    ws.onmessage = (event: MessageEvent) => {
      // The server is trusted, but a frame is still checked against its schema before the UI
      // relies on its shape (ASVS 2.2.1; OWASP WS cheat sheet: validate in both directions).
      const frame = typeof event.data === 'string' ? parseServerFrame(event.data) : null; // JSON text frames only
      if (frame) this.#emit('frame', frame);
      else console.warn('Parley: ignored a malformed frame from the server');
    };
    ws.onclose = (event: CloseEvent) => {
      if (ws !== this.#ws) return; // a socket we already replaced or stopped
      this.#ws = null;
      const upFor = opened ? Date.now() - this.#openedAt : 0;
      if (opened) this.#emit('closed', { code: event.code, reason: event.reason });
      void this.#afterClose(event.code, opened, upFor);
    };
    // An error is always followed by a close event; the close handler decides what to do.
    ws.onerror = () => {};
  }

  async #afterClose(code: number, opened: boolean, upFor: number): Promise<void> {
    if (upFor >= STABLE_AFTER_MS) this.#attempt = 0;
    if (code === CLOSE.tooBig || code === CLOSE.unsupportedData) {
      console.warn(`Parley: the server closed the socket for a protocol error (${code})`);
    }
    // 1008: the server ended this socket on purpose: the session may be over, or the
    // password changed (every socket closes, but this tab's session stays valid).
    // Closed before open: the browser hides the refused handshake's HTTP status
    // (we only see 1006), so ask the HTTP API whether we are still signed in.
    if (code === CLOSE.policyViolation || !opened) {
      this.#setState('reconnecting');
      const session = await this.#checkSession();
      if (!this.#running || this.#ws) return; // stopped, or "Reconnect now" won the race
      if (session === 'ended') {
        this.stop();
        this.#emit('ended', undefined);
        return;
      }
      // Signed in, yet the handshake was refused: count it (an unknown answer, e.g. the
      // server restarting, is not counted). After a few in a row, stop and say why.
      if (!opened && session === 'valid') this.#refusedInARow += 1;
      if (this.#refusedInARow >= MAX_REFUSED_WHILE_SIGNED_IN) {
        this.#gaveUp = true;
        this.#setState('offline');
        this.#emit('refused', undefined);
        return;
      }
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    if (!this.#platform.onLine()) {
      this.#setState('offline'); // #onOnline resumes
      return;
    }
    // Exponential backoff with jitter, so a restarted server is not hit by every client at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#attempt += 1;
    this.#setState('reconnecting');
    this.#timer = setTimeout(() => this.#connect('reconnecting'), delay);
  }

  readonly #onOnline = (): void => {
    if (this.#running && !this.#ws && !this.#gaveUp) {
      clearTimeout(this.#timer);
      this.#connect('reconnecting');
    }
  };

  readonly #onOffline = (): void => {
    // An open socket may survive a short blip, so only a waiting one turns "offline".
    if (this.#running && !this.#ws && !this.#gaveUp) {
      clearTimeout(this.#timer);
      this.#setState('offline');
    }
  };

  #setState(state: ConnectionState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#emit('state', state);
  }

  #emit<K extends keyof SocketEvents>(type: K, detail: SocketEvents[K]): void {
    for (const listener of this.#listeners[type]) {
      try {
        listener(detail);
      } catch (error) {
        console.error(`Parley: a "${type}" listener failed`, error);
      }
    }
  }
}
