// The account API: register, login, logout, me, password. Every body is checked at this
// trust boundary before anything else reads it.
import { Router, type Request, type Response } from 'express';
import type * as v from 'valibot';
import { check, Credentials, NAME_PATTERN, PasswordChange } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { limitKey, type AddressOf } from '../security/client-address.ts';
import { DEVICE_COOKIE, type DeviceCookies } from '../security/device-cookie.ts';
import type { Pseudonym } from '../security/log-pseudonym.ts';
import type { LoginGuard } from '../security/login-throttle.ts';
import { dummyPasswordHash, hashPassword, passwordPolicyError, verifyPassword, type HashLimiter } from '../security/passwords.ts';
import type { RegistrationLimit } from '../security/registration-limit.ts';
import type { Revocations } from '../cluster/revocations.ts';
import type { ParleyStore } from '../store/store.ts';
import { sendBusy, sendError } from './errors.ts';
import { SESSION_COOKIE, SESSION_COOKIE_OPTIONS, sessionUser } from './session.ts';

export type AuthDeps = {
  config: Config;
  store: ParleyStore;
  throttle: LoginGuard;
  /** Password hashing slots: logins and password changes in one queue, registrations in another. */
  hashing: { login: HashLimiter; register: HashLimiter };
  revocations: Revocations;
  log: AuditLog;
  addressOf: AddressOf;
  /** Signed "this browser signed in here before" cookies: such a browser is not subject to the account lock. */
  deviceCookies: DeviceCookies;
  /** Registrations per client address. */
  registrations: RegistrationLimit;
  /** What a failed login logs for a name that is no account. */
  pseudonym: Pseudonym;
};

/** A body checked against its schema (shared/protocol.ts): exactly its fields, nothing else. */
function bodyOf<S extends typeof Credentials | typeof PasswordChange>(schema: S, body: unknown): v.InferOutput<S> | undefined {
  const result = check(schema, body);
  return result.ok ? result.value : undefined;
}

/** Usernames are compared lowercase, so "Alice" and "alice" are one account. */
function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

/** The message names the reason only; the wait is Retry-After's, which the client words once ("Try again in 5 seconds."). */
function retryAfter(res: Response, ms: number, error = 'too_many_attempts', message = 'Too many failed attempts.'): void {
  res.set('Retry-After', String(Math.max(1, Math.ceil(ms / 1000))));
  sendError(res, 429, error, message);
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
  const { config, store, throttle, hashing, revocations, log, addressOf, deviceCookies, registrations, pseudonym } = deps;
  const router = Router();

  router.post('/register', async (req, res) => {
    const body = bodyOf(Credentials, req.body);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"username": "...", "password": "..."}.');
    const username = normalizeUsername(body.username);
    if (!NAME_PATTERN.test(username)) {
      return sendError(res, 400, 'bad_username', 'Usernames are 2–32 characters: a–z, 0–9, "_" or "-".');
    }
    const policy = passwordPolicyError(body.password, username);
    if (policy) return sendError(res, 400, 'weak_password', policy);
    // Cheap accounts multiply every per-user limit: a budget per address (IPv6: per /64),
    // taken before the hash so parallel requests cannot all pass first. No name logged:
    // the account does not exist, and people type passphrases into the username field.
    const wait = registrations.take(limitKey(addressOf(req)));
    if (wait > 0) {
      log('register_refused', { reason: 'rate_limited', ip: addressOf(req) });
      return retryAfter(res, wait, 'too_many_registrations', 'Too many new accounts from your network.');
    }
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
    const body = bodyOf(Credentials, req.body);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"username": "...", "password": "..."}.');
    const username = normalizeUsername(body.username);
    const ip = addressOf(req);
    const user = NAME_PATTERN.test(username) ? await store.findUser(username) : undefined;
    // ASVS 16.2.5: the typed name reaches the log only when it names an account; people
    // type passphrases into the username field.
    const who = user ? user.name : pseudonym(username);
    // A browser that signed in as this account before is not subject to the account lock
    // (OWASP device cookies); every other attempt meets the (account, address), address and
    // account limits. attempt() counts it against the device or (account, address) at once,
    // so parallel guesses cannot all pass before one is counted; settle() finishes the count.
    const attempt = { account: username, address: limitKey(ip), device: deviceCookies.deviceFor(req.headers.cookie, username) };
    const verdict = await throttle.attempt(attempt);
    if (verdict.waitMs > 0) {
      log('login_throttled', { user: who, ip });
      return retryAfter(res, verdict.waitMs);
    }
    // Always run one hash verification, so timing does not tell whether the user exists.
    const ok = await hashing.login.run(async () => verifyPassword(body.password, user?.passwordHash ?? (await dummyPasswordHash())));
    if (ok === undefined) return sendBusy(res);
    await throttle.settle(attempt, verdict, ok && user !== undefined);
    if (!ok || !user) {
      log('login_failed', { user: who, ip, ...(verdict.trusted ? { reason: 'known_device' } : {}) });
      return sendError(res, 401, 'invalid_credentials', 'Wrong username or password.');
    }
    // ASVS 7.2.4: a new session id at login defeats session fixation. A session this browser
    // already had ends here, and so do its sockets.
    const previous = req.session?.user ? req.sessionID : undefined;
    await regenerate(req);
    if (previous) revocations.publish({ kind: 'session', sid: previous, reason: 'logout' });
    const now = Date.now();
    req.session.user = user.name;
    req.session.createdAt = now;
    req.session.lastSeenAt = now;
    // ASVS 7.4.3: bound to the password it was verified against (read with the hash above).
    req.session.credentialVersion = user.credentialVersion;
    await save(req);
    // A fresh nonce on every login (OWASP): this browser is now a known one for this account.
    res.cookie(DEVICE_COOKIE, deviceCookies.issue(user.name), deviceCookies.options);
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
    // The cookie is cleared by name. Not Clear-Site-Data "cookies": it applies to the whole
    // registrable domain and would sign the user out of every sibling app on it.
    res.clearCookie(SESSION_COOKIE, SESSION_COOKIE_OPTIONS);
    res.set('Clear-Site-Data', '"cache", "storage"');
    res.status(204).end();
  });

  router.post('/password', async (req, res) => {
    const user = sessionUser(req, config.session);
    if (!user) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    const body = bodyOf(PasswordChange, req.body);
    if (!body) return sendError(res, 400, 'bad_request', 'Send {"currentPassword": "...", "newPassword": "..."}.');
    const ip = addressOf(req);
    // Re-entering the current password is a password guess like a login: the same throttle,
    // checked and charged in one step before the hash (parallel guesses cannot all pass).
    const attempt = { account: user, address: limitKey(ip), device: deviceCookies.deviceFor(req.headers.cookie, user) };
    const verdict = await throttle.attempt(attempt);
    if (verdict.waitMs > 0) return retryAfter(res, verdict.waitMs);
    const stored = await store.findUser(user);
    if (!stored) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    const ok = await hashing.login.run(() => verifyPassword(body.currentPassword, stored.passwordHash));
    if (ok === undefined) return sendBusy(res);
    await throttle.settle(attempt, verdict, ok);
    if (!ok) {
      log('password_change_failed', { user, ip });
      return sendError(res, 401, 'invalid_credentials', 'The current password is wrong.');
    }
    const policy = passwordPolicyError(body.newPassword, user);
    if (policy) return sendError(res, 400, 'weak_password', policy);
    const hash = await hashing.login.run(() => hashPassword(body.newPassword));
    if (hash === undefined) return sendBusy(res);
    // Refused (503) while the other instances could not hear the revocation (decision 013).
    if (!revocations.up) return sendBusy(res);
    // ASVS 7.4.3: the new hash and a new credential version in one statement. From here on
    // every session created under the old version reads as ended — the other tabs and
    // devices, and a login that verified the old password a moment ago and saves its session
    // only now. (If anything below fails, this browser is signed out too: fail closed.)
    const credentialVersion = await store.setPasswordHash(user, hash);
    // This browser stays signed in, under a fresh session id bound to the new version.
    const { createdAt } = req.session;
    await regenerate(req);
    req.session.user = user;
    req.session.createdAt = createdAt ?? Date.now(); // the absolute timeout still counts from login
    req.session.lastSeenAt = Date.now();
    req.session.credentialVersion = credentialVersion;
    await save(req);
    // The other sessions' rows go, and every live socket of the user closes.
    await store.sessions.destroyAllOf(user, req.sessionID);
    revocations.publish({ kind: 'user', user, reason: 'password_changed' });
    log('password_changed', { user, ip });
    res.status(204).end();
  });

  // A session probe: answered from the session as read, nothing written (see session.ts).
  router.get('/me', (req, res) => {
    const user = sessionUser(req, config.session);
    if (!user) return sendError(res, 401, 'unauthenticated', 'Not signed in.');
    res.json({ username: user });
  });

  return router;
}
