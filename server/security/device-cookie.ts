// OWASP Authentication Cheat Sheet, "Slow down online guessing attacks with device cookies":
// a browser that signed in successfully gets a signed cookie naming the account. A login
// attempt that presents a valid one for the account it names is not subject to the
// account's lock (server/security/login-throttle.ts), so an attacker who fails the owner's
// password cannot lock the owner out of the browsers they already use.
//
// Value: base64url(account) "." nonce "." issued-at (base 36 ms) "." HMAC-SHA256 over the
// three, with a key derived from SESSION_SECRET (derived-keys.ts). The cookie grants no
// access by itself: it only decides which throttle an attempt meets, and the password is
// still checked. Its failures are counted per nonce; a cookie that fails too often is
// treated like any unknown browser again.
import crypto from 'node:crypto';
import { parseCookie } from 'cookie';

/** ASVS 3.3.1–3.3.4: `__Host-` so a sibling subdomain can neither plant nor overwrite it. */
export const DEVICE_COOKIE = '__Host-parley.device';

export class DeviceCookies {
  readonly #key: Buffer;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** Secure, HttpOnly, SameSite=Strict, Path=/ (what `__Host-` requires), long-lived. For res.cookie(). */
  readonly options: { secure: true; httpOnly: true; sameSite: 'strict'; path: '/'; maxAge: number };

  constructor(key: Buffer, maxAgeMs: number, now: () => number = Date.now) {
    this.#key = key;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
    this.options = { secure: true, httpOnly: true, sameSite: 'strict', path: '/', maxAge: maxAgeMs };
  }

  /** A fresh cookie value for a browser that has just signed in as `account` (new nonce each time). */
  issue(account: string): string {
    const body = `${Buffer.from(account, 'utf8').toString('base64url')}.${crypto.randomBytes(16).toString('base64url')}.${this.#now().toString(36)}`;
    return `${body}.${this.#mac(body)}`;
  }

  /**
   * The device id (the cookie's nonce) when the Cookie header holds a device cookie that we
   * signed, that has not expired, and that names `account`; otherwise undefined — a forged,
   * stale or other account's cookie makes the attempt an untrusted one, nothing worse.
   */
  deviceFor(cookieHeader: string | undefined, account: string): string | undefined {
    if (!cookieHeader) return undefined;
    let value: string | undefined;
    try {
      value = parseCookie(cookieHeader)[DEVICE_COOKIE];
    } catch {
      return undefined;
    }
    const parts = value?.split('.');
    if (!parts || parts.length !== 4) return undefined;
    const [named, nonce, issued, mac] = parts as [string, string, string, string];
    const expected = Buffer.from(this.#mac(`${named}.${nonce}.${issued}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return undefined;
    const issuedAt = parseInt(issued, 36);
    if (!(issuedAt <= this.#now() && this.#now() - issuedAt < this.#maxAgeMs)) return undefined;
    return Buffer.from(named, 'base64url').toString('utf8') === account ? nonce : undefined;
  }

  #mac(body: string): string {
    return crypto.createHmac('sha256', this.#key).update(body).digest('base64url');
  }
}
