// The upgrade gate: every WebSocket handshake passes here, in the HTTPS server's
// 'upgrade' event, before ws.handleUpgrade. Checks run cheapest first:
//   address failure limit → path → Origin → session → per-user cap.
// A refusal is a plain HTTP response (never a 101) and the socket is destroyed.
// (ASVS 4.4.1–4.4.4; OWASP WebSocket cheat sheet: Origin + authentication at handshake.)
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { AddressOf } from '../security/client-address.ts';
import type { OriginVerdict } from '../security/origin.ts';
import { FailureWindows } from '../security/rate-limit.ts';
import { sessionExpiresAt, sessionUser, type SessionParser, type SessionRequest } from '../http/session.ts';
import type { Registry } from './registry.ts';

export const WS_PATH = '/ws';

export type Admitted = { ws: WebSocket; user: string; sid: string; ip: string; expiresAt: number };

export type GateDeps = {
  config: Config;
  wss: WebSocketServer;
  checkOrigin: (origin: string | undefined) => OriginVerdict;
  sessionParser: SessionParser;
  registry: Registry;
  addressOf: AddressOf;
  log: AuditLog;
  onAdmitted: (admitted: Admitted) => void;
  /** Dev mode only: upgrades another listener serves (Vite's HMR socket), after the Origin check. */
  passThrough?: (req: IncomingMessage) => boolean;
};

type Refusal = { status: number; error: string; message: string };

const REFUSE = {
  throttled: { status: 429, error: 'too_many_failures', message: 'Too many refused connection attempts. Wait and retry.' },
  path: { status: 404, error: 'not_found', message: `WebSocket endpoint is ${WS_PATH}.` },
  origin: { status: 403, error: 'origin_not_allowed', message: 'This origin may not open a WebSocket here.' },
  session: { status: 401, error: 'unauthenticated', message: 'Sign in before opening a WebSocket.' },
  cap: { status: 429, error: 'too_many_connections', message: 'Too many open connections for this user.' },
} satisfies Record<string, Refusal>;

function refuse(socket: Duplex, { status, error, message }: Refusal): void {
  const body = JSON.stringify({ error, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json\r\n' +
      'Cache-Control: no-store\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
    () => socket.destroy(),
  );
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function createUpgradeGate(deps: GateDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { config, wss, checkOrigin, sessionParser, registry, addressOf, log } = deps;
  // Refused upgrades count against the client address; successful ones never do.
  const failures = new FailureWindows(config.upgrade.addressFailures, config.upgrade.addressWindowMs);
  const checks = {
    origin: !config.disabled.has('origin'),
    session: !config.disabled.has('session'),
    cap: !config.disabled.has('connection-cap'),
  };

  return (req, socket, head) => {
    socket.on('error', () => socket.destroy()); // a peer reset must not become an uncaught error
    const ip = addressOf(req);
    const deny = (reason: keyof typeof REFUSE, user?: string) => {
      // Anonymous failures count against the address. Not 'cap': that user is known and
      // already limited per user; counting it would let one user's ninth tab lock out a NAT.
      if (reason !== 'throttled' && reason !== 'cap') failures.fail(ip);
      log('upgrade_refused', { reason, status: REFUSE[reason].status, ip, user, path: pathOf(req).slice(0, 64) });
      refuse(socket, REFUSE[reason]);
    };

    if (failures.retryAfter(ip) > 0) return deny('throttled');
    const path = pathOf(req);
    // ASVS 4.4.2: exact-match Origin allowlist; missing, "null" and look-alikes refused.
    if (checks.origin && !checkOrigin(req.headers.origin).ok) return deny('origin');
    if (path !== WS_PATH) {
      if (deps.passThrough?.(req)) return;
      return deny('path');
    }

    // The same session parser as the HTTP routes (the ws express-session pattern).
    const sreq = req as SessionRequest;
    sessionParser(sreq as never, {} as never, () => {
      if (socket.destroyed) return;
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
        deps.onAdmitted({ ws, user, sid, ip, expiresAt });
      });
    });
  };
}
