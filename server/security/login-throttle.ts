// ASVS 6.3.1, OWASP Authentication Cheat Sheet: throttle password guessing.
// - Per account: after a few free failures, each further failure doubles a lockout
//   (1 s, 2 s, 4 s … up to LOGIN_ACCOUNT_MAX_BACKOFF_SECONDS). Tracked by the submitted
//   name whether or not the account exists, so the throttle reveals nothing about existence.
// - Per client address: failures only, in a window. A workshop of 300 behind one NAT
//   that logs in correctly is never limited; one address spraying passwords is.
import type { Config } from '../config.ts';
import { FailureWindows } from './rate-limit.ts';

type AccountState = { failures: number; lockedUntil: number };

/**
 * What the account routes need from a throttle. This in-memory one answers at once; the
 * Redis one (server/store/redis.ts, with REDIS_URL) shares the counts across instances.
 */
export type LoginLimiter = {
  retryAfter: (username: string, address: string) => number | Promise<number>;
  failed: (username: string, address: string) => void | Promise<void>;
  succeeded: (username: string) => void | Promise<void>;
};

export class LoginThrottle implements LoginLimiter {
  readonly #accounts = new Map<string, AccountState>();
  readonly #addresses: FailureWindows;
  readonly #config: Config['login'];
  readonly #now: () => number;

  constructor(config: Config['login'], now: () => number = Date.now) {
    this.#config = config;
    this.#addresses = new FailureWindows(config.addressFailures, config.addressWindowMs, now);
    this.#now = now;
  }

  /** Milliseconds the caller must wait before this attempt may be checked; 0 to go ahead. */
  retryAfter(username: string, address: string): number {
    const account = this.#accounts.get(username);
    const accountWait = account ? Math.max(0, account.lockedUntil - this.#now()) : 0;
    return Math.max(accountWait, this.#addresses.retryAfter(address));
  }

  failed(username: string, address: string): void {
    this.#addresses.fail(address);
    const account = this.#accounts.get(username) ?? { failures: 0, lockedUntil: 0 };
    account.failures += 1;
    const over = account.failures - this.#config.accountFreeFailures;
    if (over >= 0) {
      const backoff = Math.min(this.#config.accountMaxBackoffMs, 1000 * 2 ** Math.min(over, 30));
      account.lockedUntil = this.#now() + backoff;
    }
    this.#accounts.set(username, account);
    if (this.#accounts.size > 100_000) this.#sweep();
  }

  succeeded(username: string): void {
    this.#accounts.delete(username);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [name, state] of this.#accounts) if (state.lockedUntil + this.#config.accountMaxBackoffMs < now) this.#accounts.delete(name);
  }
}
