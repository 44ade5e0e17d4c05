// Registrations per client address (IPv6: per /64, through limitKey). Cheap accounts multiply
// every per-user limit, so one address may not mint them without bound; but a workshop of
// 300 behind one NAT registers at once, so the limit is a bucket (REGISTER_ADDRESS_BURST,
// default 300) that refills slowly (REGISTER_ADDRESS_PER_HOUR), not a short window.
// Per process, like the other TokenBuckets (docs/scaling.md).
import type { Config } from '../config.ts';
import { TokenBuckets } from './rate-limit.ts';

export class RegistrationLimit {
  readonly #buckets: TokenBuckets;
  readonly #refillMs: number;

  constructor(config: Config['register'], now: () => number = Date.now) {
    this.#buckets = new TokenBuckets(config.addressPerHour / 3600, config.addressBurst, now);
    this.#refillMs = 3_600_000 / config.addressPerHour;
  }

  /**
   * Takes one registration from `address`'s budget: 0 when it may go ahead, else the
   * milliseconds until one more is allowed (at most one refill interval: an empty bucket
   * holds between 0 and 1 tokens). Check and charge are one step, so parallel requests
   * cannot all pass a check made before any of them was counted.
   */
  take(address: string): number {
    return this.#buckets.take(address) ? 0 : this.#refillMs;
  }
}
