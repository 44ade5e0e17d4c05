// REDIS_URL: the Redis connections and what is *stored* there — sessions (ids hashed, TTL per
// session from sessionExpiresAt). What instances *tell* each other over
// Redis (room messages, membership changes, revocations) is the cluster bus:
// server/cluster/redis-bus.ts. Why Redis and how to run N instances: docs/scaling.md,
// docs/decisions/008-scale-out.md.
// @redis/client, not `redis`: the latter only adds the RedisBloom/JSON/Search/TimeSeries
// command modules, which Parley never sends.
import { createClient } from '@redis/client';
import session, { type SessionData } from 'express-session';
import type { AuditLog } from '../security/audit-log.ts';
import { sessionIdHash } from './session-id.ts';
import { credentialsCurrent, StoreUnavailableError, type CredentialVersionOf, type SessionExpiry } from './store.ts';

export type RedisClient = ReturnType<typeof redisClient>;
type Callback<T = void> = (error?: unknown, value?: T) => void;

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
 * The express-session store on Redis. One key per session, `parley:sess:` + SHA-256 of the
 * session id (as in SQLite: a Redis dump or MONITOR does not hand out live sessions), holding
 * the session as JSON; and a per-user set of those hashes, so a password change can end the
 * user's other sessions. The TTL of each key is the session's own deadline (sessionExpiresAt:
 * idle or absolute, whichever is first) in milliseconds, and a read re-checks that deadline
 * too. (The key layout and JSON are those connect-redis read and wrote, which this store
 * replaced: sessions written before the change stay readable.)
 *
 * No touch(): express-session would call it with the session as read at the start of the
 * request. Activity goes through extend(), which only rewrites a key that still exists.
 */
export class RedisSessionStore extends session.Store {
  readonly #redis: RedisClient;
  readonly #expiresAt: SessionExpiry;
  readonly #absoluteMs: number;
  readonly #versionOf: CredentialVersionOf;

  constructor(client: RedisClient, expiresAt: SessionExpiry, absoluteMs: number, versionOf: CredentialVersionOf) {
    super();
    this.#redis = client;
    this.#expiresAt = expiresAt;
    this.#absoluteMs = absoluteMs;
    this.#versionOf = versionOf;
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.#call(callback, async () => {
      const json = await this.#redis.get(SESSION_PREFIX + sessionIdHash(sid));
      if (!json) return null;
      const data = JSON.parse(json) as SessionData;
      // ASVS 7.3.1/7.3.2 deadline and 7.4.3 credential version, on every read.
      return this.#expiresAt(data) > Date.now() && (await credentialsCurrent(data, this.#versionOf)) ? data : null;
    });
  }

  /** With the per-user index written in the same MULTI, so the index never misses a live session. */
  override set(sid: string, data: SessionData, callback?: Callback): void {
    this.#call(callback, async () => {
      const hash = sessionIdHash(sid);
      const ttlMs = this.#expiresAt(data) - Date.now();
      if (ttlMs <= 0) {
        await this.#redis.del(SESSION_PREFIX + hash);
        return;
      }
      const multi = this.#redis.multi().set(SESSION_PREFIX + hash, JSON.stringify(data), { expiration: { type: 'PX', value: ttlMs } });
      if (data.user) {
        // Every session of the user ends within SESSION_ABSOLUTE_SECONDS of its creation,
        // so the index may expire that long after its latest write.
        const key = USER_SESSIONS_PREFIX + data.user;
        multi.sAdd(key, hash).pExpire(key, this.#absoluteMs);
      }
      await multi.exec();
    });
  }

  /** SET … XX: only a key that still exists is rewritten, so an ended session stays ended. */
  async extend(sid: string, data: SessionData): Promise<void> {
    const key = SESSION_PREFIX + sessionIdHash(sid);
    const ttlMs = this.#expiresAt(data) - Date.now();
    try {
      if (ttlMs <= 0) await this.#redis.del(key);
      else await this.#redis.set(key, JSON.stringify(data), { expiration: { type: 'PX', value: ttlMs }, condition: 'XX' });
    } catch (error) {
      throw unavailable(error);
    }
  }

  override destroy(sid: string, callback?: Callback): void {
    this.#call(callback, async () => {
      await this.#redis.del(SESSION_PREFIX + sessionIdHash(sid));
    });
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

  /** Redis errors reach express-session as StoreUnavailableError (a 503, not a 500). */
  #call<T>(callback: Callback<T> | undefined, fn: () => Promise<T>): void {
    fn().then(
      (value) => callback?.(undefined, value),
      (error: unknown) => callback?.(unavailable(error)),
    );
  }
}
