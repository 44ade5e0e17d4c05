// The one place that picks the storage, the cluster bus and the login throttle from the
// config; the rest of the server sees a ParleyStore, a ClusterBus, Revocations and a
// LoginGuard, and never which engine is behind them. It sits above both store/ and
// cluster/, so neither has to know the other.
//
//   nothing set          → SQLite (data + sessions), LocalBus: one instance.
//   DATABASE_URL         → PostgreSQL (data + sessions), LocalBus.
//   REDIS_URL            → sessions and the bus in Redis; data in SQLite (one machine) or
//   REDIS_URL + DATABASE_URL → PostgreSQL: N instances (docs/scaling.md).
import type { Invitation, RoomInfo } from '../shared/protocol.ts';
import { LocalBus, type ClusterBus } from './cluster/bus.ts';
import { deriveBusKey } from './cluster/envelope.ts';
import { RedisBus } from './cluster/redis-bus.ts';
import { Revocations } from './cluster/revocations.ts';
import type { Config } from './config.ts';
import type { AuditLog } from './security/audit-log.ts';
import { LoginThrottle, type LoginGuard } from './security/login-throttle.ts';
import { RedisLoginThrottle } from './security/redis-login-throttle.ts';
import { PostgresStore } from './store/postgres.ts';
import { redisClient, RedisSessionStore, type RedisClient } from './store/redis.ts';
import { SqliteStore } from './store/sqlite.ts';
import {
  StoreUnavailableError,
  type Accepted,
  type Created,
  type HistoryPage,
  type Invited,
  type Members,
  type NewMessage,
  type ParleyStore,
  type Posted,
  type Removed,
  type Room,
  type RoomCaps,
  type User,
  type SessionExpiry,
} from './store/store.ts';

export type Backend = {
  store: ParleyStore;
  /** What instances tell each other; a LocalBus (always up) for one instance. */
  bus: ClusterBus;
  revocations: Revocations;
  /** Login throttling: in memory, or shared by every instance through Redis. */
  loginThrottle: LoginGuard;
};

/**
 * Redis or PostgreSQL could not be reached (or refused us) at start. main.ts prints the
 * message — which names the variable and never the URL, which may hold a password — and exits.
 */
export class BackendStartError extends Error {
  readonly variable: 'REDIS_URL' | 'DATABASE_URL';
  constructor(variable: 'REDIS_URL' | 'DATABASE_URL', message: string, cause?: unknown) {
    super(`${variable}: ${message}`, { cause });
    this.name = 'BackendStartError';
    this.variable = variable;
  }
}

/** A driver's error message, with the URL (and so any password in it) cut out. */
function redacted(error: unknown, url: string): string {
  const text = error instanceof Error ? error.message || error.name : 'unknown error';
  return text.split(url).join('<url>').slice(0, 200);
}

/** Rejects with BackendStartError once `ms` have passed; the promise is not cancelled, the process exits. */
async function within<T>(promise: Promise<T>, ms: number, variable: 'REDIS_URL' | 'DATABASE_URL', what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackendStartError(variable, `${what} not reachable within ${ms / 1000} s (BACKEND_START_WAIT_SECONDS).`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * `sessionSecret`: the one every instance shares (the caller loads it: server/http/session.ts).
 * The bus key is derived from it here (cluster/envelope.ts deriveBusKey); it authenticates
 * every bus envelope and is never stored in Redis.
 */
export async function openBackend(config: Config, log: AuditLog, sessionExpiresAt: SessionExpiry, sessionSecret: string): Promise<Backend> {
  const wait = config.backends.startWaitMs;
  let data: ParleyStore;
  if (config.databaseUrl) {
    const url = config.databaseUrl;
    data = await within(PostgresStore.open(url, sessionExpiresAt, log, wait, config.databasePoolSize), wait, 'DATABASE_URL', 'PostgreSQL').catch(
      (error: unknown) => {
        throw error instanceof BackendStartError ? error : new BackendStartError('DATABASE_URL', `PostgreSQL: ${redacted(error, url)}`, error);
      },
    );
  } else {
    data = new SqliteStore(config.dataDir, sessionExpiresAt);
  }
  if (!config.redisUrl) {
    const bus = new LocalBus();
    return { store: data, bus, revocations: new Revocations(bus), loginThrottle: new LoginThrottle(config.login) };
  }

  // A subscribed connection can only listen, so publishing and sessions use a second one.
  const url = config.redisUrl;
  const main = redisClient(url, 'main', log, config.backends.redisPingMs);
  const sub = redisClient(url, 'subscriber', log, config.backends.redisPingMs);
  try {
    // At start, wait for Redis like for PostgreSQL: retrying, for up to BACKEND_START_WAIT_SECONDS.
    await within(Promise.all([main.connect(), sub.connect()]), wait, 'REDIS_URL', 'Redis').catch((error: unknown) => {
      throw error instanceof BackendStartError ? error : new BackendStartError('REDIS_URL', `Redis: ${redacted(error, url)}`, error);
    });
    const bus = new RedisBus(main, sub, deriveBusKey(sessionSecret), log, {
      outboxLimit: config.busOutboxLimit,
      badLogIntervalMs: config.logRepeatWindowMs,
      maxAgeMs: config.busMaxAgeMs,
    });
    await bus.start();
    const sessions = new RedisSessionStore(main, sessionExpiresAt, config.session.absoluteMs, async (user) => (await data.findUser(user))?.credentialVersion);
    return {
      store: new SharedStore(data, sessions, () => bus.up, [main, sub]),
      bus,
      revocations: new Revocations(bus),
      loginThrottle: new RedisLoginThrottle(main, config.login),
    };
  } catch (error) {
    for (const client of [main, sub]) {
      try {
        client.destroy();
      } catch {
        // never connected
      }
    }
    await data.close();
    throw error;
  }
}

/**
 * The data store with Redis sessions. One rule of its own: a change the other instances
 * must hear about (a message; a room created; an invitation made, accepted, declined or
 * cancelled; a member who left or was removed) is refused while
 * `announced()` says it could not be told to them — `server_busy`, nothing committed —
 * rather than committed and known to only part of the cluster (decision 013). The store
 * does not know what carries the announcement; it is handed the predicate.
 */
class SharedStore implements ParleyStore {
  readonly sessions: RedisSessionStore;
  readonly #data: ParleyStore;
  readonly #announced: () => boolean;
  readonly #clients: RedisClient[];

  constructor(data: ParleyStore, sessions: RedisSessionStore, announced: () => boolean, clients: RedisClient[]) {
    this.#data = data;
    this.sessions = sessions;
    this.#announced = announced;
    this.#clients = clients;
  }

  #mustAnnounce(): void {
    if (!this.#announced()) throw new StoreUnavailableError('redis');
  }

  createUser(name: string, passwordHash: string, now: number): Promise<boolean> {
    return this.#data.createUser(name, passwordHash, now);
  }
  findUser(name: string): Promise<User | undefined> {
    return this.#data.findUser(name);
  }
  setPasswordHash(name: string, passwordHash: string): Promise<number> {
    return this.#data.setPasswordHash(name, passwordHash);
  }
  async createRoom(name: string, owner: string, now: number, caps: RoomCaps): Promise<Created> {
    this.#mustAnnounce();
    return this.#data.createRoom(name, owner, now, caps);
  }
  findRoom(name: string): Promise<Room | undefined> {
    return this.#data.findRoom(name);
  }
  roomsFor(user: string): Promise<RoomInfo[]> {
    return this.#data.roomsFor(user);
  }
  isMember(room: string, user: string): Promise<boolean> {
    return this.#data.isMember(room, user);
  }
  async invite(room: string, from: string, user: string, now: number, caps: RoomCaps): Promise<Invited> {
    this.#mustAnnounce();
    return this.#data.invite(room, from, user, now, caps);
  }
  async accept(room: string, user: string, now: number, caps: RoomCaps): Promise<Accepted> {
    this.#mustAnnounce();
    return this.#data.accept(room, user, now, caps);
  }
  async decline(room: string, user: string, now: number, caps: RoomCaps): Promise<string[]> {
    this.#mustAnnounce();
    return this.#data.decline(room, user, now, caps);
  }
  async leave(room: string, user: string): Promise<boolean> {
    this.#mustAnnounce();
    return this.#data.leave(room, user);
  }
  async removeMember(room: string, user: string): Promise<Removed> {
    this.#mustAnnounce();
    return this.#data.removeMember(room, user);
  }
  invitationsFor(user: string): Promise<Invitation[]> {
    return this.#data.invitationsFor(user);
  }
  membersOf(room: string): Promise<Members> {
    return this.#data.membersOf(room);
  }
  async addMessage(message: NewMessage): Promise<Posted> {
    this.#mustAnnounce();
    return this.#data.addMessage(message);
  }
  history(room: string, limit: number, before?: number): Promise<HistoryPage> {
    return this.#data.history(room, limit, before);
  }
  ping(): Promise<void> {
    return this.#data.ping();
  }

  async close(): Promise<void> {
    for (const client of this.#clients) {
      try {
        if (client.isOpen) await client.close();
        else client.destroy();
      } catch {
        // already closed
      }
    }
    await this.#data.close();
  }
}
