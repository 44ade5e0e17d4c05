// REDIS_URL: what several instances must share live.
//   - sessions, through connect-redis (ids hashed, TTL per session from sessionExpiresAt);
//   - room fan-out, through one pub/sub channel (server/ws/cluster-fanout.ts);
//   - session revocations, through another (server/store/revocations.ts).
// Why Redis and how to run N instances: docs/scaling.md, docs/decisions/008-scale-out.md.
import crypto from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { createClient } from 'redis';
import type { ServerFrame } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { LoginLimiter } from '../security/login-throttle.ts';
import type { RoomBus } from '../ws/cluster-fanout.ts';
import type { RevocationNotice, RevocationTransport } from './revocations.ts';
import { sessionIdHash } from './session-id.ts';
import { credentialsCurrent, StoreUnavailableError, type CredentialVersionOf, type SessionExpiry } from './store.ts';

export type RedisClient = ReturnType<typeof redisClient>;
type Callback<T = unknown> = (error?: unknown, value?: T) => void;

const SESSION_PREFIX = 'parley:sess:';
const USER_SESSIONS_PREFIX = 'parley:user-sessions:';
const ROOMS_CHANNEL = 'parley:rooms';
const REVOCATIONS_CHANNEL = 'parley:revocations';
const MEMBERSHIP_CHANNEL = 'parley:membership';

/**
 * A client that fails fast while Redis is away (no offline queue: a request gets a 503 at
 * once instead of hanging), reconnects by itself with capped backoff, and logs each
 * outage and recovery once rather than every retry.
 */
export function redisClient(url: string, role: string, log: AuditLog) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 5000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000) },
  });
  let down = false;
  // Without an 'error' listener a lost connection would be an uncaught exception.
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log('backend_unavailable', { reason: `redis_${role}`, detail: error.message || error.name });
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log('backend_recovered', { reason: `redis_${role}` });
  });
  return client;
}

function unavailable(error: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError ? error : new StoreUnavailableError('redis', error);
}

/**
 * connect-redis with two additions: keys are SHA-256 hashes of the session id (as in
 * SQLite: a Redis dump or MONITOR does not hand out live sessions), and a per-user set of
 * those hashes, so a password change can end the user's other sessions. The TTL of each
 * key is the session's own deadline (sessionExpiresAt: idle or absolute, whichever is
 * first) in milliseconds, and a read re-checks that deadline too.
 */
export class RedisSessionStore extends RedisStore {
  readonly #redis: RedisClient;
  readonly #expiresAt: SessionExpiry;
  readonly #absoluteMs: number;
  readonly #versionOf: CredentialVersionOf;

  constructor(client: RedisClient, expiresAt: SessionExpiry, absoluteMs: number, versionOf: CredentialVersionOf) {
    super({
      client,
      prefix: SESSION_PREFIX,
      ttl: (data: SessionData) => Math.ceil((expiresAt(data) - Date.now()) / 1000),
    });
    this.#redis = client;
    this.#expiresAt = expiresAt;
    this.#absoluteMs = absoluteMs;
    this.#versionOf = versionOf;
  }

  override async get(sid: string, callback?: (error: unknown, data?: SessionData | null) => void): Promise<void> {
    try {
      const data = (await super.get(sessionIdHash(sid))) as SessionData | null;
      // ASVS 7.3.1/7.3.2 deadline and 7.4.3 credential version, on every read.
      const live = data && this.#expiresAt(data) > Date.now() && (await credentialsCurrent(data, this.#versionOf));
      callback?.(null, live ? data : null);
    } catch (error) {
      callback?.(unavailable(error));
    }
  }

  /**
   * connect-redis's set, with a millisecond TTL (its own is whole seconds) and the per-user
   * index written in the same MULTI, so the index never misses a live session.
   */
  override async set(sid: string, data: SessionData, callback?: Callback): Promise<void> {
    const hash = sessionIdHash(sid);
    const ttlMs = this.#expiresAt(data) - Date.now();
    try {
      if (ttlMs <= 0) {
        await super.destroy(hash);
      } else {
        const multi = this.#redis.multi().set(SESSION_PREFIX + hash, JSON.stringify(data), { expiration: { type: 'PX', value: ttlMs } });
        if (data.user) {
          // Every session of the user ends within SESSION_ABSOLUTE_SECONDS of its creation,
          // so the index may expire that long after its latest write.
          const key = USER_SESSIONS_PREFIX + data.user;
          multi.sAdd(key, hash).pExpire(key, this.#absoluteMs);
        }
        await multi.exec();
      }
      callback?.();
    } catch (error) {
      callback?.(unavailable(error));
    }
  }

  /** Disabled: express-session would touch with the session as read at the start of the request. */
  override async touch(_sid: string, _data: SessionData, callback?: Callback): Promise<void> {
    callback?.();
  }

  /** SET … XX: only a key that still exists is rewritten, so an ended session stays ended. */
  async extend(sid: string, data: SessionData): Promise<void> {
    const hash = sessionIdHash(sid);
    const ttlMs = this.#expiresAt(data) - Date.now();
    try {
      if (ttlMs <= 0) await super.destroy(hash);
      else await this.#redis.set(SESSION_PREFIX + hash, JSON.stringify(data), { expiration: { type: 'PX', value: ttlMs }, condition: 'XX' });
    } catch (error) {
      throw unavailable(error);
    }
  }

  override async destroy(sid: string, callback?: Callback): Promise<void> {
    try {
      await super.destroy(sessionIdHash(sid));
      callback?.();
    } catch (error) {
      callback?.(unavailable(error));
    }
  }

  /** Ends every session of `user` but `keepSid`; returns how many ended. */
  async destroyAllOf(user: string, keepSid?: string): Promise<number> {
    const key = USER_SESSIONS_PREFIX + user;
    const keep = keepSid === undefined ? undefined : sessionIdHash(keepSid);
    try {
      const hashes = (await this.#redis.sMembers(key)).filter((hash) => hash !== keep);
      if (hashes.length === 0) return 0;
      const [ended] = (await this.#redis
        .multi()
        .del(hashes.map((hash) => SESSION_PREFIX + hash))
        .sRem(key, hashes)
        .exec()) as unknown as [number, number];
      return Number(ended);
    } catch (error) {
      throw unavailable(error);
    }
  }
}

type RoomEnvelope = { from: string; room: string; frame: ServerFrame };
type RevocationEnvelope = { from: string; notice: RevocationNotice };
type MembershipEnvelope = { from: string; user: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Only what this code publishes is delivered: a `message` frame with its exact field types. */
function parseRoomEnvelope(raw: string): RoomEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value['from'] !== 'string' || typeof value['room'] !== 'string') return undefined;
  const frame = value['frame'];
  if (!isObject(frame) || frame['type'] !== 'message' || frame['room'] !== value['room']) return undefined;
  if (typeof frame['id'] !== 'number' || typeof frame['user'] !== 'string' || typeof frame['html'] !== 'string' || typeof frame['ts'] !== 'number') {
    return undefined;
  }
  return value as RoomEnvelope;
}

function parseRevocationEnvelope(raw: string): RevocationEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value['from'] !== 'string' || !isObject(value['notice'])) return undefined;
  const notice = value['notice'];
  if (notice['kind'] === 'session' && typeof notice['sidHash'] === 'string' && (notice['reason'] === 'logout' || notice['reason'] === 'expired')) {
    return value as RevocationEnvelope;
  }
  if (notice['kind'] === 'user' && typeof notice['user'] === 'string' && notice['reason'] === 'password_changed') {
    return value as RevocationEnvelope;
  }
  return undefined;
}

function parseMembershipEnvelope(raw: string): MembershipEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value['from'] !== 'string' || typeof value['user'] !== 'string') return undefined;
  return value as MembershipEnvelope;
}

/**
 * Redis pub/sub between instances. Each instance has an id; it publishes with it and
 * ignores what comes back with it, so its own sockets get a message exactly once (they
 * already got it locally, without waiting for Redis).
 */
export class RedisBus {
  readonly instance = crypto.randomUUID();
  readonly #pub: RedisClient;
  readonly #sub: RedisClient;
  readonly #log: AuditLog;
  readonly #roomListeners: Array<(room: string, frame: ServerFrame) => void> = [];
  readonly #revocationListeners: Array<(notice: RevocationNotice) => void> = [];
  readonly #membershipListeners: Array<(user: string) => void> = [];

  constructor(pub: RedisClient, sub: RedisClient, log: AuditLog) {
    this.#pub = pub;
    this.#sub = sub;
    this.#log = log;
  }

  /** Subscribes; node-redis re-subscribes by itself after a reconnect. */
  async start(): Promise<void> {
    await this.#sub.subscribe(ROOMS_CHANNEL, (raw) => {
      const envelope = parseRoomEnvelope(raw);
      if (!envelope) return this.#log('server_error', { reason: 'bus_bad_message', detail: ROOMS_CHANNEL });
      if (envelope.from === this.instance) return;
      for (const deliver of this.#roomListeners) deliver(envelope.room, envelope.frame);
    });
    await this.#sub.subscribe(REVOCATIONS_CHANNEL, (raw) => {
      const envelope = parseRevocationEnvelope(raw);
      if (!envelope) return this.#log('server_error', { reason: 'bus_bad_message', detail: REVOCATIONS_CHANNEL });
      if (envelope.from === this.instance) return;
      for (const deliver of this.#revocationListeners) deliver(envelope.notice);
    });
    await this.#sub.subscribe(MEMBERSHIP_CHANNEL, (raw) => {
      const envelope = parseMembershipEnvelope(raw);
      if (!envelope) return this.#log('server_error', { reason: 'bus_bad_message', detail: MEMBERSHIP_CHANNEL });
      if (envelope.from === this.instance) return;
      for (const deliver of this.#membershipListeners) deliver(envelope.user);
    });
  }

  /** Both connections ready: a message sent now reaches every instance. */
  get up(): boolean {
    return this.#pub.isReady && this.#sub.isReady;
  }

  readonly rooms: RoomBus = {
    publish: (room, frame) => this.#publish(ROOMS_CHANNEL, { from: this.instance, room, frame } satisfies RoomEnvelope),
    subscribe: (deliver) => void this.#roomListeners.push(deliver),
    publishMembership: (user) => this.#publish(MEMBERSHIP_CHANNEL, { from: this.instance, user } satisfies MembershipEnvelope),
    subscribeMembership: (deliver) => void this.#membershipListeners.push(deliver),
  };

  readonly revocations: RevocationTransport = {
    publish: (notice) => this.#publish(REVOCATIONS_CHANNEL, { from: this.instance, notice } satisfies RevocationEnvelope),
    subscribe: (deliver) => void this.#revocationListeners.push(deliver),
  };

  #publish(channel: string, envelope: RoomEnvelope | RevocationEnvelope | MembershipEnvelope): void {
    this.#pub.publish(channel, JSON.stringify(envelope)).catch((error: unknown) => {
      // Local delivery already happened; the other instances miss this one (their clients
      // see it in history). The outage itself is logged once by redisClient().
      this.#log('server_error', { reason: 'bus_publish_failed', detail: `${channel}: ${error instanceof Error ? error.message : 'unknown'}` });
    });
  }
}

/** One failed login, atomically: account count (+ lock with doubling backoff) and address window. */
const FAILED_LOGIN_SCRIPT = `
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local over = failures - tonumber(ARGV[1])
if over >= 0 then
  local backoff = math.min(tonumber(ARGV[2]), 1000 * 2 ^ math.min(over, 30))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(backoff))
end
local count = redis.call('INCR', KEYS[3])
if count == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
return failures`;

/**
 * The login throttle of server/security/login-throttle.ts, shared by every instance: the
 * same rules (free failures per account, then a doubling lock; failures per address in a
 * window), kept in Redis so that spreading guesses over N instances buys nothing
 * (ASVS 6.3.1). Locks and windows are Redis TTLs, so instance clocks do not matter. An
 * account's failure count is forgotten after a quiet period of twice the longest backoff.
 * While Redis is away it throws StoreUnavailableError: login answers 503, it does not
 * fall back to no throttling.
 */
export class RedisLoginThrottle implements LoginLimiter {
  readonly #redis: RedisClient;
  readonly #config: Config['login'];

  constructor(client: RedisClient, config: Config['login']) {
    this.#redis = client;
    this.#config = config;
  }

  async retryAfter(username: string, address: string): Promise<number> {
    try {
      const [lockTtl, count, windowTtl] = (await this.#redis
        .multi()
        .pTTL(lockKey(username))
        .get(addressKey(address))
        .pTTL(addressKey(address))
        .exec()) as unknown as [number, string | null, number];
      const accountWait = Math.max(0, Number(lockTtl));
      const addressWait = Number(count ?? 0) >= this.#config.addressFailures ? Math.max(0, Number(windowTtl)) : 0;
      return Math.max(accountWait, addressWait);
    } catch (error) {
      throw unavailable(error);
    }
  }

  async failed(username: string, address: string): Promise<void> {
    try {
      await this.#redis.eval(FAILED_LOGIN_SCRIPT, {
        keys: [failuresKey(username), lockKey(username), addressKey(address)],
        arguments: [
          String(this.#config.accountFreeFailures),
          String(this.#config.accountMaxBackoffMs),
          String(this.#config.accountMaxBackoffMs * 2),
          String(this.#config.addressWindowMs),
        ],
      });
    } catch (error) {
      throw unavailable(error);
    }
  }

  async succeeded(username: string): Promise<void> {
    try {
      await this.#redis.del([failuresKey(username), lockKey(username)]);
    } catch (error) {
      throw unavailable(error);
    }
  }
}

// Submitted names and addresses are hashed into keys: fixed length, and no client-chosen
// bytes in the key space.
const keyPart = (value: string) => crypto.createHash('sha256').update(value).digest('base64url');
const failuresKey = (username: string) => `parley:login:failures:${keyPart(username)}`;
const lockKey = (username: string) => `parley:login:lock:${keyPart(username)}`;
const addressKey = (address: string) => `parley:login:address:${keyPart(address)}`;
