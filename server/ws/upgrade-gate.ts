// The upgrade gate: every WebSocket handshake passes here, in the HTTPS server's
// 'upgrade' event, before ws.handleUpgrade. Checks run cheapest first:
//   same origin (Origin, Host, Sec-Fetch-Site) → path → session → per-user cap;
//   anonymous failures are counted per address.
// A refusal is a plain HTTP response (never a 101) and the socket is destroyed.
// (ASVS 4.4.1–4.4.4; OWASP WebSocket cheat sheet: Origin + authentication at handshake.)
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { limitKey, type AddressOf } from '../security/client-address.ts';
import type { HostVerdict } from '../security/host.ts';
import type { OriginVerdict } from '../security/origin.ts';
import { FailureWindows } from '../security/rate-limit.ts';
import { sessionExpiresAt, sessionUser, type SessionParser, type SessionRequest } from '../http/session.ts';
import type { Registry } from './registry.ts';

export const WS_PATH = '/ws';

/** `socket` is the one handed to ws.handleUpgrade: ws's own transport, which Connection writes frames to. */
export type Admitted = { ws: WebSocket; socket: Duplex; user: string; sid: string; ip: string; expiresAt: number };

export type GateDeps = {
  config: Config;
  wss: WebSocketServer;
  checkOrigin: (origin: string | undefined) => OriginVerdict;
  checkHost: (req: IncomingMessage) => HostVerdict;
  sessionParser: SessionParser;
  registry: Registry;
  addressOf: AddressOf;
  log: AuditLog;
  onAdmitted: (admitted: Admitted) => void;
  /** Dev mode only: upgrades another listener serves (Vite's HMR socket), after the Origin check. */
  passThrough?: (req: IncomingMessage) => boolean;
};

export type Refusal = { status: number; error: string; message: string };

const REFUSE = {
  throttled: { status: 429, error: 'too_many_failures', message: 'Too many refused connection attempts. Wait and retry.' },
  path: { status: 404, error: 'not_found', message: `WebSocket endpoint is ${WS_PATH}.` },
  origin: { status: 403, error: 'origin_not_allowed', message: 'This origin may not open a WebSocket here.' },
  host_not_allowed: { status: 403, error: 'host_not_allowed', message: 'This host name may not open a WebSocket here.' },
  host_duplicate: { status: 400, error: 'bad_request', message: 'Send exactly one Host header.' },
  cross_site: { status: 403, error: 'cross_site', message: 'Cross-site WebSocket requests are not allowed.' },
  session: { status: 401, error: 'unauthenticated', message: 'Sign in before opening a WebSocket.' },
  cap: { status: 429, error: 'too_many_connections', message: 'Too many open connections for this user.' },
  // The session store is unreachable (Redis/PostgreSQL outage): not the client's fault.
  unavailable: { status: 503, error: 'server_busy', message: 'The server is busy. Try again in a moment.' },
} satisfies Record<string, Refusal>;

/** A refusal before the handshake: a plain HTTP response, then the socket is destroyed. */
export function refuse(socket: Duplex, { status, error, message }: Refusal): void {
  const body = JSON.stringify({ error, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json\r\n' +
      'Cache-Control: no-store\r\n' +
      (status === 503 ? 'Retry-After: 1\r\n' : '') + // an outage or a shutdown: come back soon
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
    () => socket.destroy(),
  );
}

/**
 * A peer reset must not become an uncaught error. A module-level function, not a closure:
 * a closure here would keep this request (headers, session) alive as long as the socket.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function createUpgradeGate(deps: GateDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { config, wss, checkOrigin, checkHost, sessionParser, registry, addressOf, log } = deps;
  // Refused upgrades count against the client address; successful ones never do.
  const failures = new FailureWindows(config.upgrade.addressFailures, config.upgrade.addressWindowMs);
  const checks = {
    origin: !config.disabled.has('origin'),
    session: !config.disabled.has('session'),
    cap: !config.disabled.has('connection-cap'),
  };

  return (req, socket, head) => {
    socket.on('error', destroyOnError);
    const ip = addressOf(req);
    const deny = (refusal: keyof typeof REFUSE, user?: string) => {
      let reason = refusal;
      // Anonymous failures (path, Origin, session) count against the address, and once it is
      // over budget each of them is answered 429. Only failures: an attempt with a valid
      // session is never refused for its neighbours' failures (a workshop behind one NAT).
      // Not 'cap' either: that user is known and already limited per user.
      if (reason !== 'cap' && reason !== 'unavailable') {
        if (failures.retryAfter(limitKey(ip)) > 0) reason = 'throttled';
        else failures.fail(limitKey(ip));
      }
      log('upgrade_refused', { reason, status: REFUSE[reason].status, ip, user, path: pathOf(req).slice(0, 64) });
      refuse(socket, REFUSE[reason]);
    };

    const path = pathOf(req);
    if (checks.origin) {
      // ASVS 4.4.2: exact-match Origin allowlist; missing, "null" and look-alikes refused.
      if (!checkOrigin(req.headers.origin).ok) return deny('origin');
      // One Host, and one of ours (security/host.ts: duplicates, DNS rebinding).
      const host = checkHost(req);
      if (!host.ok) return deny(host.reason);
      // Fetch Metadata, as the HTTP CSRF guard: when the browser says, it must be same-origin.
      const site = req.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin') return deny('cross_site');
    }
    if (path !== WS_PATH) {
      if (deps.passThrough?.(req)) return;
      return deny('path');
    }

    // The same session parser as the HTTP routes (the ws express-session pattern).
    const sreq = req as SessionRequest;
    sessionParser(sreq as never, {} as never, (error?: unknown) => {
      if (socket.destroyed) return;
      if (error) return deny('unavailable');
      const user = sessionUser(sreq, config.session) ?? (checks.session ? undefined : 'anonymous');
      if (!user) return deny('session');
      if (checks.cap && registry.count(user) >= config.upgrade.maxConnectionsPerUser) return deny('cap', user);

      // Hold a slot through the handshake so parallel upgrades cannot overrun the cap.
      const release = registry.reserve(user);
      socket.once('close', release);
      const sid = sreq.sessionID ?? `anonymous:${ip}`;
      const expiresAt = sreq.session?.createdAt ? sessionExpiresAt(sreq.session as never, config.session) : Date.now() + config.session.idleMs;
      wss.handleUpgrade(req, socket, head, (ws) => {
        release();
        deps.onAdmitted({ ws, socket, user, sid, ip, expiresAt });
      });
    });
  };
}
