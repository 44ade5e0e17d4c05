// The one place that picks the storage, the inter-instance bus and the login throttle from
// the config; the rest of the server sees a ParleyStore, a Revocations bus, (with Redis) a
// RoomBus and a LoginLimiter, and never which engine is behind them.
//
//   nothing set          → SQLite (data + sessions), in-process buses: one instance.
//   DATABASE_URL         → PostgreSQL (data + sessions), in-process buses.
//   REDIS_URL            → sessions and buses in Redis; data in SQLite (one machine) or
//   REDIS_URL + DATABASE_URL → PostgreSQL: N instances (docs/scaling.md).
import type { SessionData } from 'express-session';
import type { RoomInfo } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { LoginThrottle, type LoginLimiter } from '../security/login-throttle.ts';
import type { RoomBus } from '../ws/cluster-fanout.ts';
import { PostgresStore } from './postgres.ts';
import { RedisBus, redisClient, RedisLoginThrottle, RedisSessionStore, type RedisClient } from './redis.ts';
import { Revocations } from './revocations.ts';
import { SqliteStore } from './sqlite.ts';
import { StoreUnavailableError, type HistoryPage, type NewMessage, type ParleyStore, type Posted, type Room, type User, type SessionExpiry } from './store.ts';

export type Backend = {
  store: ParleyStore;
  revocations: Revocations;
  /** Set with REDIS_URL: room messages to and from the other instances. */
  bus: RoomBus | undefined;
  /** Login throttling: in memory, or shared by every instance through Redis. */
  loginThrottle: LoginLimiter;
};


/** How long a starting instance waits for Redis and PostgreSQL before giving up. */
const START_WAIT_MS = 30_000;

export async function openBackend(config: Config, log: AuditLog, sessionExpiresAt: SessionExpiry): Promise<Backend> {
  const data: ParleyStore = config.databaseUrl
    ? await PostgresStore.open(config.databaseUrl, sessionExpiresAt, log, START_WAIT_MS, config.databasePoolSize)
    : new SqliteStore(config.dataDir, sessionExpiresAt);
  if (!config.redisUrl) return { store: data, revocations: new Revocations(), bus: undefined, loginThrottle: new LoginThrottle(config.login) };

  // A subscribed connection can only listen, so publishing and sessions use a second one.
  const main = redisClient(config.redisUrl, 'main', log);
  const sub = redisClient(config.redisUrl, 'subscriber', log);
  try {
    // At start, wait for Redis like for PostgreSQL: retrying, for up to START_WAIT_MS.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`REDIS_URL: Redis not reachable within ${START_WAIT_MS / 1000} s`)), START_WAIT_MS);
    });
    await Promise.race([Promise.all([main.connect(), sub.connect()]), timeout]).finally(() => clearTimeout(timer));
    const bus = new RedisBus(main, sub, log);
    await bus.start();
    const sessions = new RedisSessionStore(main, sessionExpiresAt, config.session.absoluteMs, async (user) => (await data.findUser(user))?.credentialVersion);
    return {
      store: new SharedStore(data, sessions, bus, [main, sub]),
      revocations: new Revocations(bus.revocations),
      bus: bus.rooms,
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
 * The data store with Redis sessions. One rule of its own: while the bus is down a
 * message is refused (`server_busy`) rather than committed and shown only to this
 * instance's half of the room — the sender retries, nobody sees a split conversation.
 */
class SharedStore implements ParleyStore {
  readonly sessions: RedisSessionStore;
  readonly #data: ParleyStore;
  readonly #bus: RedisBus;
  readonly #clients: RedisClient[];

  constructor(data: ParleyStore, sessions: RedisSessionStore, bus: RedisBus, clients: RedisClient[]) {
    this.#data = data;
    this.sessions = sessions;
    this.#bus = bus;
    this.#clients = clients;
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
  createRoom(name: string, owner: string, now: number): Promise<boolean> {
    return this.#data.createRoom(name, owner, now);
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
  addMember(room: string, user: string, now: number): Promise<void> {
    return this.#data.addMember(room, user, now);
  }
  removeMember(room: string, user: string): Promise<void> {
    return this.#data.removeMember(room, user);
  }
  async addMessage(message: NewMessage): Promise<Posted> {
    if (!this.#bus.up) throw new StoreUnavailableError('redis');
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
