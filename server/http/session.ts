// Sessions: express-session with a hardened cookie and server-side idle + absolute timeouts.
// The same parser runs on HTTP requests and on WebSocket upgrade requests (the ws
// express-session example's pattern), so both see one session.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import session, { type Session, type SessionData } from 'express-session';
import type { Config } from '../config.ts';
import type { ParleyStore } from '../store/store.ts';

/**
 * ASVS 3.3.1–3.3.4: the `__Host-` prefix makes the browser insist on Secure, Path=/ and no
 * Domain, so a sibling subdomain cannot plant or overwrite it; HttpOnly keeps it from
 * scripts; SameSite=Strict keeps it off cross-site requests, including WebSocket handshakes.
 */
export const SESSION_COOKIE = '__Host-parley.sid';
/**
 * ASVS 3.3.1–3.3.4: Secure, HttpOnly, SameSite=Strict, Path=/ (what the __Host- prefix
 * requires). Logout clears the cookie with the same attributes, or the browser keeps it.
 */
export const SESSION_COOKIE_OPTIONS = { secure: true, httpOnly: true, sameSite: 'strict', path: '/' } as const;

/** ASVS 7.3.1/7.3.2: the session ends at whichever comes first, idle or absolute timeout. */
export function sessionExpiresAt(data: Pick<SessionData, 'createdAt' | 'lastSeenAt'>, config: Config['session']): number {
  const created = data.createdAt ?? Date.now();
  const lastSeen = data.lastSeenAt ?? created;
  return Math.min(created + config.absoluteMs, lastSeen + config.idleMs);
}

/** SESSION_SECRET, else a 256-bit secret generated once into DATA_DIR (mode 0600). */
export function loadSessionSecret(config: Config): string {
  if (config.sessionSecret) return config.sessionSecret;
  const file = path.join(config.dataDir, 'session-secret');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secret = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}

export type SessionParser = RequestHandler;

export function createSessionParser(config: Config, store: ParleyStore, secret: string): SessionParser {
  return session({
    name: SESSION_COOKIE,
    secret,
    store: store.sessions,
    resave: false,
    saveUninitialized: false, // no cookie until login: nothing for an attacker to fixate
    rolling: false,
    unset: 'destroy',
    proxy: config.trustProxy !== false,
    // No maxAge: a browser-session cookie. Lifetime is enforced on the server (below), not
    // by trusting the browser to drop an expired cookie.
    cookie: { ...SESSION_COOKIE_OPTIONS },
  });
}

export type SessionRequest = IncomingMessage & { session?: Session & Partial<SessionData>; sessionID?: string };

/** The signed-in user of a parsed, unexpired session; undefined otherwise. */
export function sessionUser(req: SessionRequest, config: Config['session'], now = Date.now()): string | undefined {
  const s = req.session;
  if (!s?.user || s.createdAt === undefined || s.lastSeenAt === undefined) return undefined;
  return sessionExpiresAt(s as SessionData, config) > now ? s.user : undefined;
}

/**
 * Enforces the timeouts on every API request: an expired session is destroyed (and its
 * sockets closed through the revocation bus by the caller's onExpired). A state-changing
 * request marks a live session as seen (store.extend), which moves its idle deadline; a
 * read (GET /api/me, the session probe) writes nothing, so a tab that polls it — one refused
 * by the connection cap, say — cannot keep a session alive forever (ASVS 7.3.1), and a
 * flood of probes costs one read each. Chat activity arrives over the WebSocket, which
 * records it itself (ws/connection.ts).
 */
export function enforceSessionLifetime(
  config: Config['session'],
  store: ParleyStore['sessions'],
  onExpired: (sid: string, user: string) => void,
): RequestHandler {
  return (req, _res, next) => {
    const s = req.session;
    if (!s?.user) return next();
    const now = Date.now();
    if (sessionUser(req, config, now) === undefined) {
      const { user } = s;
      const sid = req.sessionID;
      s.destroy(() => {
        onExpired(sid, user);
        next();
      });
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    // Not `s.lastSeenAt = now`: that would make express-session save (upsert) the session as
    // read at the start of this request, and a logout racing this request would be undone.
    store.extend(req.sessionID, { ...(s as SessionData), lastSeenAt: now }).then(() => next(), next);
  };
}
