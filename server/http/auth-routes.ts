// The account API: register, login, logout, me, password. Every body is checked at this
// trust boundary before anything else reads it.
import { Router, type Request, type Response } from 'express';
import { NAME_PATTERN, PASSWORD_MAX_LENGTH } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { limitKey, type AddressOf } from '../security/client-address.ts';
import type { LoginLimiter } from '../security/login-throttle.ts';
import { dummyPasswordHash, hashPassword, passwordPolicyError, verifyPassword, type HashLimiter } from '../security/passwords.ts';
import type { Revocations } from '../cluster/revocations.ts';
import type { ParleyStore } from '../store/store.ts';
import { sendBusy, sendError } from './errors.ts';
import { SESSION_COOKIE, SESSION_COOKIE_OPTIONS, sessionUser } from './session.ts';

export type AuthDeps = {
  config: Config;
  store: ParleyStore;
  throttle: LoginLimiter;
  /** Password hashing slots: logins and password changes in one queue, registrations in another. */
  hashing: { login: HashLimiter; register: HashLimiter };
  revocations: Revocations;
  log: AuditLog;
  addressOf: AddressOf;
};

/** Exactly these string fields, nothing else (no prototype keys, no extra data). */
function stringFields<K extends string>(body: unknown, keys: readonly K[]): Record<K, string> | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const own = Object.keys(body);
  if (own.length !== keys.length || !keys.every((k) => own.includes(k))) return undefined;
  const out = {} as Record<K, string>;
  for (const key of keys) {
    const value = (body as Record<string, unknown>)[key];
    // The cap stops a megabyte "password" from reaching the hash function.
    if (typeof value !== 'string' || value.length > PASSWORD_MAX_LENGTH * 4) return undefined;
    out[key] = value;
  }
  return out;
}

/**
 * What a failed login may log as the user: only something shaped like a username. People
 * type passwords into the username field; ASVS 16.2.5: no credentials in logs.
 */
function loggable(username: string): string {
  return NAME_PATTERN.test(username) ? username : '(not a username)';
}

/** Usernames are compared lowercase, so "Alice" and "alice" are one account. */
function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

function retryAfter(res: Response, ms: number): void {
  res.set('Retry-After', String(Math.max(1, Math.ceil(ms / 1000))));
  sendError(res, 429, 'too_many_attempts', 'Too many failed attempts. Wait a moment and try again.');
}

/** Through the store, not req.session: an expired session was already destroyed by now. */
function regenerate(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.sessionStore.regenerate(req, (error: unknown) => (error ? reject(error) : resolve())));
}

function save(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve())));
}

function destroy(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.destroy((error) => (error ? reject(error) : resolve())));
}

export function authRoutes(deps: AuthDeps): Router {
  const { config, store, throttle, hashing, revocations, log, addressOf } = deps;
  const router = Router();

  router.post('/register', async (req, res) => {
    const body = stringFields(req.body, ['username', 'password'] as const);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"username": "...", "password": "..."}.');
    const username = normalizeUsername(body.username);
    if (!NAME_PATTERN.test(username)) {
      return sendError(res, 400, 'bad_username', 'Usernames are 2–32 characters: a–z, 0–9, "_" or "-".');
    }
    const policy = passwordPolicyError(body.password, username);
    if (policy) return sendError(res, 400, 'weak_password', policy);
    const hash = await hashing.register.run(() => hashPassword(body.password));
    if (hash === undefined) return sendBusy(res);
    // Registration has to say when a name is taken; login never says whether one exists.
    if (!(await store.createUser(username, hash, Date.now()))) {
      log('register_refused', { user: username, reason: 'taken', ip: addressOf(req) });
      return sendError(res, 409, 'username_taken', 'That username is taken.');
    }
    log('register', { user: username, ip: addressOf(req) });
    res.status(201).json({ username });
  });

  router.post('/login', async (req, res) => {
    const body = stringFields(req.body, ['username', 'password'] as const);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"username": "...", "password": "..."}.');
    const username = normalizeUsername(body.username);
    const ip = addressOf(req);
    const wait = await throttle.retryAfter(username, limitKey(ip));
    if (wait > 0) {
      log('login_throttled', { user: loggable(username), ip });
      return retryAfter(res, wait);
    }
    const user = NAME_PATTERN.test(username) ? await store.findUser(username) : undefined;
    // Always run one hash verification, so timing does not tell whether the user exists.
    const ok = await hashing.login.run(async () => verifyPassword(body.password, user?.passwordHash ?? (await dummyPasswordHash())));
    if (ok === undefined) return sendBusy(res);
    if (!ok || !user) {
      await throttle.failed(username, limitKey(ip));
      log('login_failed', { user: loggable(username), ip });
      return sendError(res, 401, 'invalid_credentials', 'Wrong username or password.');
    }
    await throttle.succeeded(username);
    // ASVS 7.2.4: a new session id at login defeats session fixation. A session this browser
    // already had ends here, and so do its sockets.
    const previous = req.session?.user ? req.sessionID : undefined;
    await regenerate(req);
    if (previous) revocations.publish({ kind: 'session', sid: previous, reason: 'logout' });
    const now = Date.now();
    req.session.user = user.name;
    req.session.createdAt = now;
    req.session.lastSeenAt = now;
    await save(req);
    log('login', { user: user.name, ip });
    res.status(200).json({ username: user.name });
  });

  router.post('/logout', async (req, res) => {
    const user = req.session?.user;
    if (user) {
      // Decision 013: a logout the other instances cannot hear about is refused, not half done.
      if (!revocations.up) return sendBusy(res);
      const sid = req.sessionID;
      await destroy(req);
      // ASVS 7.4.1: logout ends the session everywhere it is used, live sockets included.
      revocations.publish({ kind: 'session', sid, reason: 'logout' });
      log('logout', { user, ip: addressOf(req) });
    }
    res.clearCookie(SESSION_COOKIE, SESSION_COOKIE_OPTIONS);
    res.set('Clear-Site-Data', '"cookies", "storage"');
    res.status(204).end();
  });

  router.get('/me', (req, res) => {
    const user = sessionUser(req, config.session);
    if (!user) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    res.json({ username: user });
  });

  router.post('/password', async (req, res) => {
    const user = sessionUser(req, config.session);
    if (!user) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    const body = stringFields(req.body, ['currentPassword', 'newPassword'] as const);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"currentPassword": "...", "newPassword": "..."}.');
    const ip = addressOf(req);
    const wait = await throttle.retryAfter(user, limitKey(ip));
    if (wait > 0) return retryAfter(res, wait);
    const stored = await store.findUser(user);
    if (!stored) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    const ok = await hashing.login.run(() => verifyPassword(body.currentPassword, stored.passwordHash));
    if (ok === undefined) return sendBusy(res);
    if (!ok) {
      await throttle.failed(user, limitKey(ip));
      log('password_change_failed', { user, ip });
      return sendError(res, 401, 'invalid_credentials', 'The current password is wrong.');
    }
    const policy = passwordPolicyError(body.newPassword, user);
    if (policy) return sendError(res, 400, 'weak_password', policy);
    const hash = await hashing.login.run(() => hashPassword(body.newPassword));
    if (hash === undefined) return sendBusy(res);
    // ASVS 7.4.3: a password change ends the user's other sessions and every live socket —
    // first, so a failure below cannot leave a changed password with the old sessions alive.
    // Refused (503) while the other instances could not hear the revocation (decision 013).
    if (!revocations.up) return sendBusy(res);
    await store.sessions.destroyAllOf(user, req.sessionID);
    revocations.publish({ kind: 'user', user, reason: 'password_changed' });
    await store.setPasswordHash(user, hash);
    log('password_changed', { user, ip });
    res.status(204).end();
  });

  return router;
}
