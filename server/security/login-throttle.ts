// ASVS 6.3.1, OWASP Authentication Cheat Sheet: throttle password guessing without handing
// an attacker a lever against the account's owner (docs/decisions/012-login-lockout-device-cookies.md).
//
// An attempt is *trusted* when the browser presents a valid device cookie for the account
// (server/security/device-cookie.ts) that has not failed LOGIN_DEVICE_FAILURES times in its
// window. A trusted attempt meets only that per-cookie count: the owner's known browsers
// get in however hard someone else fails the password.
// Every other attempt is *untrusted* and meets three limits:
// - per (account, client address): after LOGIN_ACCOUNT_FREE_FAILURES free failures each
//   further one doubles a lock (1 s, 2 s, 4 s … up to LOGIN_ACCOUNT_MAX_BACKOFF_SECONDS),
//   forgotten after a quiet period of twice that maximum. Keyed by the submitted name
//   whether or not the account exists, so the throttle reveals nothing about existence;
//   keyed by address too, so a guesser locks only their own address out of the account.
// - per client address: failures only, in a window (LOGIN_ADDRESS_*). A workshop of 300
//   behind one NAT that logs in correctly is never limited; one address spraying is.
// - per account, from all untrusted browsers together, in a window
//   (LOGIN_ACCOUNT_UNTRUSTED_*): a backstop against guessing spread over many addresses.
//   It can lock the owner out of *new* browsers, never out of known ones.
//
// Check and charge are one step for what one browser can burst (attempt()): an allowed
// attempt counts against its (account, address) or its device cookie *before* the ~50 ms
// password check, and a right password clears it; counted after, a burst of parallel
// guesses would all pass the check first. The address and account windows count only
// failures, after the check (settle()): charged in advance, a NAT's burst of correct
// logins in flight at once would lock it out.
import type { Config } from '../config.ts';
import { FailureWindows } from './rate-limit.ts';

/** One login attempt as the throttle sees it. */
export type LoginAttempt = {
  /** The submitted name, normalized, whether or not such an account exists. */
  account: string;
  /** limitKey() of the client address. */
  address: string;
  /** The nonce of a valid device cookie naming `account`, when the browser sent one. */
  device?: string | undefined;
};

/** waitMs > 0: refused, retry after that long (nothing was charged). trusted: met the device-cookie count only. */
export type LoginVerdict = { waitMs: number; trusted: boolean };

/**
 * What the account routes need from a throttle. This in-memory one answers at once; the
 * Redis one (server/security/redis-login-throttle.ts, with REDIS_URL) shares the counts
 * across instances and behaves the same (test/login-throttle-conformance.test.ts).
 */
export type LoginGuard = {
  /** Check, and when allowed count the attempt against its (account, address) or device cookie, in one step. */
  attempt: (attempt: LoginAttempt) => LoginVerdict | Promise<LoginVerdict>;
  /**
   * After the password check of an allowed attempt. Right: forget this (account, address)'s
   * failures. Wrong: count it against the address and the account windows too (untrusted).
   */
  settle: (attempt: LoginAttempt, verdict: LoginVerdict, passwordOk: boolean) => void | Promise<void>;
  /** Untrusted check only, for re-entering the password of a signed-in account: ms to wait, 0 to go ahead. */
  retryAfter: (account: string, address: string) => number | Promise<number>;
  /** Charge an untrusted failure (after retryAfter said 0 and the password was wrong). */
  failed: (account: string, address: string) => void | Promise<void>;
};

/** The doubling lock after the free failures: 1 s, 2 s, 4 s … capped. */
function backoffMs(failures: number, config: Config['login']): number {
  const over = failures - config.accountFreeFailures;
  return over < 0 ? 0 : Math.min(config.accountMaxBackoffMs, 1000 * 2 ** Math.min(over, 30));
}

/** How long an (account, address)'s failure count is kept after its last failure. */
export const forgetAfterMs = (config: Config['login']): number => 2 * config.accountMaxBackoffMs;

type PairState = { failures: number; lockedUntil: number; lastFailure: number };

export class LoginThrottle implements LoginGuard {
  readonly #pairs = new Map<string, PairState>();
  readonly #addresses: FailureWindows;
  readonly #accounts: FailureWindows;
  readonly #devices: FailureWindows;
  readonly #config: Config['login'];
  readonly #now: () => number;

  constructor(config: Config['login'], now: () => number = Date.now) {
    this.#config = config;
    this.#addresses = new FailureWindows(config.addressFailures, config.addressWindowMs, now);
    this.#accounts = new FailureWindows(config.accountUntrustedFailures, config.accountUntrustedWindowMs, now);
    this.#devices = new FailureWindows(config.deviceFailures, config.deviceWindowMs, now);
    this.#now = now;
  }

  attempt({ account, address, device }: LoginAttempt): LoginVerdict {
    if (device !== undefined && this.#devices.retryAfter(device) === 0) {
      this.#devices.fail(device);
      return { waitMs: 0, trusted: true };
    }
    const waitMs = this.retryAfter(account, address);
    if (waitMs === 0) this.#chargePair(account, address);
    return { waitMs, trusted: false };
  }

  settle({ account, address }: LoginAttempt, verdict: LoginVerdict, passwordOk: boolean): void {
    // A trusted success needs nothing: the browser gets a new cookie (a new nonce, a fresh count).
    if (verdict.waitMs > 0 || verdict.trusted) return;
    if (passwordOk) {
      this.#pairs.delete(pairKey(account, address));
      return;
    }
    this.#addresses.fail(address);
    this.#accounts.fail(account);
  }

  retryAfter(account: string, address: string): number {
    const pair = this.#pair(account, address);
    const pairWait = pair ? Math.max(0, pair.lockedUntil - this.#now()) : 0;
    return Math.max(pairWait, this.#addresses.retryAfter(address), this.#accounts.retryAfter(account));
  }

  failed(account: string, address: string): void {
    this.#addresses.fail(address);
    this.#accounts.fail(account);
    this.#chargePair(account, address);
  }

  #chargePair(account: string, address: string): void {
    const now = this.#now();
    const pair = this.#pair(account, address) ?? { failures: 0, lockedUntil: 0, lastFailure: now };
    pair.failures += 1;
    pair.lastFailure = now;
    const backoff = backoffMs(pair.failures, this.#config);
    if (backoff > 0) pair.lockedUntil = now + backoff;
    this.#pairs.set(pairKey(account, address), pair);
    if (this.#pairs.size > 100_000) this.#sweep();
  }

  /** The pair's state, unless its quiet period has passed (then it is forgotten). */
  #pair(account: string, address: string): PairState | undefined {
    const key = pairKey(account, address);
    const pair = this.#pairs.get(key);
    if (pair && this.#forgotten(pair, this.#now())) {
      this.#pairs.delete(key);
      return undefined;
    }
    return pair;
  }

  #forgotten(pair: PairState, now: number): boolean {
    return pair.lockedUntil <= now && now - pair.lastFailure >= forgetAfterMs(this.#config);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, pair] of this.#pairs) if (this.#forgotten(pair, now)) this.#pairs.delete(key);
  }
}

/** One key per (account, address); JSON keeps "a\nb" + "c" apart from "a" + "b\nc". */
export function pairKey(account: string, address: string): string {
  return JSON.stringify([account, address]);
}
