// Rate-limit primitives. Kept in memory: these limits are per process (with REDIS_URL the
// login throttle is shared through Redis instead; docs/scaling.md lists which is which).
//
// Two shapes, on purpose:
// - TokenBuckets limit *use* per user (messages/s with a burst), where the user is known.
//   A frame takes one token; an expensive message is charged more (render-message.ts), so
//   the budget is one of cost, not of count.
// - FailureWindows count *failures* per client address (bad passwords, refused upgrades).
//   Workshops put hundreds of people behind one NAT address, so successful use from an
//   address is never counted against it.

type Bucket = { tokens: number; updated: number };

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;

  constructor(ratePerSecond: number, burst: number, now: () => number = Date.now) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#now = now;
  }

  /** Take `units` tokens for `key` if it holds them all; false (and nothing taken) otherwise. */
  take(key: string, units = 1): boolean {
    const bucket = this.#refill(key);
    const allowed = bucket.tokens >= units;
    if (allowed) bucket.tokens -= units;
    return allowed;
  }

  /**
   * Charge work already done (its cost is known only afterwards): the tokens are taken even
   * if the bucket goes below zero, down to one burst of debt, so `key`'s next frames are
   * refused until the debt is paid back at the refill rate. Verdict: whether `key` still
   * has a token left, i.e. may send its next frame now.
   */
  charge(key: string, units: number): boolean {
    const bucket = this.#refill(key);
    bucket.tokens = Math.max(-this.#burst, bucket.tokens - units);
    return bucket.tokens >= 1;
  }

  #refill(key: string): Bucket {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, updated: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.updated) * this.#ratePerMs);
    bucket.updated = now;
    this.#buckets.set(key, bucket);
    return bucket;
  }
}

type Window = { count: number; resetAt: number };

export class FailureWindows {
  readonly #windows = new Map<string, Window>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(limit: number, windowMs: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Milliseconds until `key` may try again; 0 when it is not blocked. */
  retryAfter(key: string): number {
    const window = this.#current(key);
    return window && window.count >= this.#limit ? window.resetAt - this.#now() : 0;
  }

  fail(key: string): void {
    const window = this.#current(key) ?? { count: 0, resetAt: this.#now() + this.#windowMs };
    window.count += 1;
    this.#windows.set(key, window);
    if (this.#windows.size > 100_000) this.#sweep();
  }

  #current(key: string): Window | undefined {
    const window = this.#windows.get(key);
    if (window && window.resetAt <= this.#now()) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, window] of this.#windows) if (window.resetAt <= now) this.#windows.delete(key);
  }
}
