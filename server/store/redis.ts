// REDIS_URL: the Redis connections and what is *stored* there — sessions, through connect-redis
// (ids hashed, TTL per session from sessionExpiresAt). What instances *tell* each other over
// Redis (room messages, membership changes, revocations) is the cluster bus:
// server/cluster/redis-bus.ts. Why Redis and how to run N instances: docs/scaling.md,
// docs/decisions/008-scale-out.md.
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { createClient } from 'redis';
import type { AuditLog } from '../security/audit-log.ts';
import { sessionIdHash } from './session-id.ts';
import { credentialsCurrent, StoreUnavailableError, type CredentialVersionOf, type SessionExpiry } from './store.ts';

export type RedisClient = ReturnType<typeof redisClient>;
type Callback<T = unknown> = (error?: unknown, value?: T) => void;

const SESSION_PREFIX = 'parley:sess:';
const USER_SESSIONS_PREFIX = 'parley:user-sessions:';

/**
 * A client that fails fast while Redis is away (no offline queue: a request gets a 503 at
 * once instead of hanging), reconnects by itself with capped backoff, and logs each
 * outage and recovery once rather than every retry.
 *
 * A link can also die silently (a stalled proxy, a vanished host: no reset, no close), and
 * TCP alone would take minutes to notice. So the client is PINGed every `pingMs` (subscribed
 * connections answer PING too); no answer within 3 intervals counts as a lost connection:
 * it is dropped and re-established, and listeners get an 'error' as for any other loss
 * (the cluster bus closes its sockets on it: decision 013).
 */
export function redisClient(url: string, role: string, log: AuditLog, pingMs: number) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 5000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000) },
  });
  let waiting = false;
  const watchdog = setInterval(() => {
    if (!client.isOpen) return clearInterval(watchdog); // closed for good (shutdown)
    if (!client.isReady || waiting) return;
    waiting = true;
    const silent = setTimeout(() => {
      client.destroy(); // fails the pending PING; the subscriptions are kept for the reconnect
      client.emit('error', new Error(`no answer to PING within ${(3 * pingMs) / 1000} s`));
      client.connect().catch(() => {}); // retries with the reconnect strategy; errors are logged once via 'error'
    }, 3 * pingMs);
    client
      .ping()
      .catch(() => {})
      .finally(() => {
        clearTimeout(silent);
        waiting = false;
      });
  }, pingMs);
  watchdog.unref();
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
