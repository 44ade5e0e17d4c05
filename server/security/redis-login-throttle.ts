// The login throttle of login-throttle.ts, shared by every instance through Redis: the same
// rules (trusted device cookies; per (account, address) doubling lock; per-address and
// per-account failure windows), so spreading guesses over N instances buys nothing
// (ASVS 6.3.1). test/login-throttle-conformance.test.ts runs the same cases against both.
//
// Each call is one Lua script, so check and charge are atomic across instances too. Locks
// and windows are Redis TTLs: instance clocks do not matter. While Redis is away it throws
// StoreUnavailableError: login answers 503, it never falls back to no throttling.
import crypto from 'node:crypto';
import type { Config } from '../config.ts';
import { StoreUnavailableError } from '../store/store.ts';
import { forgetAfterMs, pairKey, type LoginAttempt, type LoginGuard, type LoginVerdict } from './login-throttle.ts';

/** The one command this throttle needs, so it takes any node-redis client without knowing the store's wiring. */
export type RedisEval = { eval: (script: string, options: { keys: string[]; arguments: string[] }) => Promise<unknown> };

// KEYS: 1 device window, 2 pair failures, 3 pair lock, 4 address window, 5 account window.
// ARGV: 1 mode, 2 has device, 3–4 device limit and window, 5–6 address limit and window,
// 7–8 account limit and window, 9 free failures, 10 longest backoff, 11 quiet period.
// Returns {waitMs, trusted}. Modes: attempt (check; charge the device or the pair),
// right (forget the pair), wrong (charge the address and account windows), check (untrusted
// check only), charge (pair and windows at once).
const LOGIN_SCRIPT = `
local mode = ARGV[1]
local function count(key) return tonumber(redis.call('GET', key) or '0') end
local function bump(key, windowMs)
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, windowMs) end
end
local function windowWait(key, limit)
  if count(key) >= tonumber(limit) then return math.max(0, redis.call('PTTL', key)) end
  return 0
end
local function chargePair()
  local failures = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[11])
  local over = failures - tonumber(ARGV[9])
  if over >= 0 then
    local backoff = math.min(tonumber(ARGV[10]), 1000 * 2 ^ math.min(over, 30))
    redis.call('SET', KEYS[3], '1', 'PX', math.floor(backoff))
  end
end
local function chargeWindows()
  bump(KEYS[4], ARGV[6])
  bump(KEYS[5], ARGV[8])
end
if mode == 'right' then redis.call('DEL', KEYS[2], KEYS[3]) return {0, 0} end
if mode == 'wrong' then chargeWindows() return {0, 0} end
if mode == 'charge' then chargePair() chargeWindows() return {0, 0} end
if mode == 'attempt' and ARGV[2] == '1' and count(KEYS[1]) < tonumber(ARGV[3]) then
  bump(KEYS[1], ARGV[4])
  return {0, 1}
end
local wait = math.max(math.max(0, redis.call('PTTL', KEYS[3])), windowWait(KEYS[4], ARGV[5]), windowWait(KEYS[5], ARGV[7]))
if mode == 'attempt' and wait == 0 then chargePair() end
return {wait, 0}`;

type Mode = 'attempt' | 'right' | 'wrong' | 'check' | 'charge';

export class RedisLoginThrottle implements LoginGuard {
  readonly #redis: RedisEval;
  readonly #config: Config['login'];

  constructor(client: RedisEval, config: Config['login']) {
    this.#redis = client;
    this.#config = config;
  }

  async attempt(attempt: LoginAttempt): Promise<LoginVerdict> {
    return this.#run('attempt', attempt);
  }

  async settle(attempt: LoginAttempt, verdict: LoginVerdict, passwordOk: boolean): Promise<void> {
    // A trusted success needs nothing: the browser gets a new cookie (a new nonce, a fresh count).
    if (verdict.waitMs > 0 || verdict.trusted) return;
    await this.#run(passwordOk ? 'right' : 'wrong', attempt);
  }

  async retryAfter(account: string, address: string): Promise<number> {
    return (await this.#run('check', { account, address })).waitMs;
  }

  async failed(account: string, address: string): Promise<void> {
    await this.#run('charge', { account, address });
  }

  async #run(mode: Mode, { account, address, device }: LoginAttempt): Promise<LoginVerdict> {
    const c = this.#config;
    let reply: unknown;
    try {
      reply = await this.#redis.eval(LOGIN_SCRIPT, {
        keys: [
          `parley:login:device:${keyPart(device ?? '')}`,
          `parley:login:pair-failures:${keyPart(pairKey(account, address))}`,
          `parley:login:pair-lock:${keyPart(pairKey(account, address))}`,
          `parley:login:address:${keyPart(address)}`,
          `parley:login:account:${keyPart(account)}`,
        ],
        arguments: [
          mode,
          device === undefined ? '0' : '1',
          String(c.deviceFailures),
          String(c.deviceWindowMs),
          String(c.addressFailures),
          String(c.addressWindowMs),
          String(c.accountUntrustedFailures),
          String(c.accountUntrustedWindowMs),
          String(c.accountFreeFailures),
          String(c.accountMaxBackoffMs),
          String(forgetAfterMs(c)),
        ],
      });
    } catch (error) {
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError('redis', error);
    }
    const [waitMs, trusted] = reply as [number, number];
    return { waitMs: Number(waitMs), trusted: Number(trusted) === 1 };
  }
}

// Submitted names, addresses and nonces are hashed into keys: fixed length, and no
// client-chosen bytes in the key space.
const keyPart = (value: string) => crypto.createHash('sha256').update(value).digest('base64url');
