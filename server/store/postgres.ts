// DATABASE_URL: users, rooms, memberships and messages in PostgreSQL through `pg` (a Pool),
// with the schema of server/store/sqlite.ts. Sessions live here too unless REDIS_URL is
// set (then in Redis: server/store/redis.ts). Why: docs/decisions/008-scale-out.md.
import pg from 'pg';
import { LOBBY, type RoomInfo } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { SqlSessionStore, type SessionRows } from './sql-sessions.ts';
import { StoreUnavailableError, type HistoryPage, type NewMessage, type ParleyStore, type Posted, type Room, type User, type SessionExpiry } from './store.ts';

/**
 * Versioned migrations, applied in order at start and recorded in schema_migrations.
 * Append only: a released migration is never edited. `user` is quoted: it is a reserved
 * word in PostgreSQL, and the column names stay those of the SQLite schema.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     name TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE rooms (
     name TEXT PRIMARY KEY,
     owner TEXT REFERENCES users(name),
     private BOOLEAN NOT NULL,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE members (
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     added_at BIGINT NOT NULL,
     PRIMARY KEY (room, "user")
   );
   CREATE INDEX members_user ON members("user");
   CREATE TABLE messages (
     id BIGSERIAL PRIMARY KEY,
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     "user" TEXT NOT NULL,
     html TEXT NOT NULL,
     ts BIGINT NOT NULL
   );
   CREATE INDEX messages_room_id ON messages(room, id);
   CREATE TABLE sessions (
     sid_hash TEXT PRIMARY KEY,
     "user" TEXT,
     data TEXT NOT NULL,
     expires BIGINT NOT NULL
   );
   CREATE INDEX sessions_user ON sessions("user");
   CREATE INDEX sessions_expires ON sessions(expires);
   INSERT INTO rooms (name, owner, private, created_at) VALUES ('${LOBBY}', NULL, false, 0);`,
  // Sessions are bound to a credential version (a password change moves it on), and a
  // message remembers its sender's clientId so a retried send is stored once.
  `ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE messages ADD COLUMN client_id TEXT;
   CREATE UNIQUE INDEX messages_client_id ON messages("user", room, client_id) WHERE client_id IS NOT NULL;`,
];

/** pg_advisory_xact_lock key: "parley" in ASCII. Two instances starting together take turns. */
const MIGRATION_LOCK = 0x7061726c6579;

/**
 * Applies the missing migrations in one transaction under an advisory lock: a second
 * instance starting at the same moment waits, then finds them applied.
 */
export async function migrate(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: number }>('SELECT COALESCE(MAX(version), 0)::int AS version FROM schema_migrations');
    const current = rows[0]?.version ?? 0;
    for (let version = current; version < MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version]!);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version + 1]);
    }
    await client.query('COMMIT');
    return MIGRATIONS.length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);

/** Connection-level failures (server gone, restarting, refusing connections) as opposed to SQL errors. */
function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // SQLSTATE class 08 = connection exception; 57P01–57P03 = shutdown / cannot connect now; 53300 = too many connections.
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (CONNECTION_CODES.has(code)) return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|connection error|not queryable/i.test(message);
}

type Query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/** The sessions table in PostgreSQL; what the rows mean is in sql-sessions.ts. */
function postgresSessionRows(query: Query): SessionRows {
  return {
    async read(hash) {
      const { rows } = await query<{ data: string; expires: string }>('SELECT data, expires FROM sessions WHERE sid_hash = $1', [hash]);
      const row = rows[0];
      return row && { data: row.data, expires: Number(row.expires) };
    },
    async upsert(hash, user, data, expires) {
      await query(
        `INSERT INTO sessions (sid_hash, "user", data, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sid_hash) DO UPDATE SET "user" = excluded."user", data = excluded.data, expires = excluded.expires`,
        [hash, user, data, expires],
      );
    },
    async update(hash, data, expires) {
      await query('UPDATE sessions SET data = $1, expires = $2 WHERE sid_hash = $3', [data, expires, hash]);
    },
    async remove(hash) {
      await query('DELETE FROM sessions WHERE sid_hash = $1', [hash]);
    },
    async removeAllOf(user, keep) {
      const { rows } = await query<{ expires: string }>('DELETE FROM sessions WHERE "user" = $1 AND sid_hash <> $2 RETURNING expires', [user, keep ?? '']);
      return rows.map((row) => Number(row.expires));
    },
    async sweep(now) {
      await query('DELETE FROM sessions WHERE expires <= $1', [now]);
    },
  };
}

export class PostgresStore implements ParleyStore {
  readonly sessions: SqlSessionStore;
  readonly #pool: pg.Pool;
  readonly #log: AuditLog;
  #down = false;

  private constructor(pool: pg.Pool, log: AuditLog, sessionExpiresAt: SessionExpiry) {
    this.#pool = pool;
    this.#log = log;
    this.sessions = new SqlSessionStore(postgresSessionRows(this.#query), sessionExpiresAt, async (user) => (await this.findUser(user))?.credentialVersion);
  }

  /** Connects, applies migrations (waiting for the database for up to `waitMs`), and returns the store. */
  static async open(url: string, sessionExpiresAt: SessionExpiry, log: AuditLog, waitMs = 30_000, poolSize = 10): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize, // DATABASE_POOL_SIZE
      // Fail fast while the database is away: a request gets a 503, it does not hang.
      connectionTimeoutMillis: 3000,
      // A stalled database must not hang handlers (and their sockets' queues) without end.
      query_timeout: 10_000,
      idleTimeoutMillis: 30_000,
    });
    const store = new PostgresStore(pool, log, sessionExpiresAt);
    // An idle client whose server went away emits 'error' on the pool; unhandled, it would crash the process.
    pool.on('error', (error) => store.#markDown(error));
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        await migrate(pool);
        break;
      } catch (error) {
        if (!isUnavailable(error) || Date.now() > deadline) {
          await pool.end().catch(() => {});
          throw error;
        }
        store.#markDown(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    store.#markUp();
    return store;
  }

  #markDown(error: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.#log('backend_unavailable', { reason: 'postgres', detail: error instanceof Error ? error.message || error.name : 'unknown' });
  }

  #markUp(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log('backend_recovered', { reason: 'postgres' });
  }

  /** Every query goes through here: a lost database becomes StoreUnavailableError (→ 503 / server_busy). */
  readonly #query: Query = async (text, values) => {
    try {
      const result = await this.#pool.query(text, values);
      this.#markUp();
      return result;
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      this.#markDown(error);
      throw new StoreUnavailableError('postgres', error);
    }
  };

  async createUser(name: string, passwordHash: string, now: number): Promise<boolean> {
    const result = await this.#query('INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      name,
      passwordHash,
      now,
    ]);
    return result.rowCount === 1;
  }

  async findUser(name: string): Promise<User | undefined> {
    const { rows } = await this.#query<{ name: string; password_hash: string; credential_version: number }>(
      'SELECT name, password_hash, credential_version FROM users WHERE name = $1',
      [name],
    );
    const row = rows[0];
    return row && { name: row.name, passwordHash: row.password_hash, credentialVersion: row.credential_version };
  }

  async setPasswordHash(name: string, passwordHash: string): Promise<number> {
    const { rows } = await this.#query<{ credential_version: number }>(
      'UPDATE users SET password_hash = $1, credential_version = credential_version + 1 WHERE name = $2 RETURNING credential_version',
      [passwordHash, name],
    );
    if (!rows[0]) throw new Error('setPasswordHash: no such user');
    return rows[0].credential_version;
  }

  async createRoom(name: string, owner: string, now: number): Promise<boolean> {
    // One statement, so one transaction: the room and its owner's membership, or neither.
    const { rows } = await this.#query<{ created: boolean }>(
      `WITH created AS (
         INSERT INTO rooms (name, owner, private, created_at) VALUES ($1, $2, true, $3) ON CONFLICT DO NOTHING RETURNING name
       ), member AS (
         INSERT INTO members (room, "user", added_at) SELECT name, $2, $3 FROM created ON CONFLICT DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM created) AS created`,
      [name, owner, now],
    );
    return rows[0]?.created === true;
  }

  async findRoom(name: string): Promise<Room | undefined> {
    const { rows } = await this.#query<{ name: string; owner: string | null; private: boolean }>(
      'SELECT name, owner, private FROM rooms WHERE name = $1',
      [name],
    );
    const row = rows[0];
    return row && { name: row.name, owner: row.owner, private: row.private };
  }

  async roomsFor(user: string): Promise<RoomInfo[]> {
    const { rows } = await this.#query<{ name: string; owner: string | null; private: boolean }>(
      `SELECT r.name, r.owner, r.private FROM rooms r WHERE NOT r.private
       UNION ALL
       SELECT r.name, r.owner, r.private FROM rooms r JOIN members m ON m.room = r.name WHERE m."user" = $1
       ORDER BY 3, 1`,
      [user],
    );
    return rows.map((row) => ({ name: row.name, owner: row.owner, private: row.private }));
  }

  async isMember(room: string, user: string): Promise<boolean> {
    const { rows } = await this.#query('SELECT 1 FROM members WHERE room = $1 AND "user" = $2', [room, user]);
    return rows.length > 0;
  }

  async addMember(room: string, user: string, now: number): Promise<void> {
    await this.#query('INSERT INTO members (room, "user", added_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [room, user, now]);
  }

  async removeMember(room: string, user: string): Promise<void> {
    await this.#query('DELETE FROM members WHERE room = $1 AND "user" = $2', [room, user]);
  }

  async addMessage({ room, user, html, ts, clientId }: NewMessage): Promise<Posted> {
    // One statement, so one snapshot: the sender may post at the moment of the insert (a
    // removal committed before it wins). Autocommit: when this resolves, the row is committed
    // (and the caller may ack). A retried clientId conflicts and inserts nothing.
    const { rows } = await this.#query<{ id: string }>(
      `INSERT INTO messages (room, "user", html, ts, client_id)
       SELECT r.name, $2::text, $3::text, $4::bigint, $5::text FROM rooms r
       WHERE r.name = $1::text AND (NOT r.private OR EXISTS (SELECT 1 FROM members m WHERE m.room = r.name AND m."user" = $2::text))
       ON CONFLICT DO NOTHING RETURNING id`,
      [room, user, html, ts, clientId ?? null],
    );
    if (rows[0]) return { ok: true, id: Number(rows[0].id), duplicate: false };
    if (clientId === undefined) return { ok: false };
    const earlier = await this.#query<{ id: string }>('SELECT id FROM messages WHERE "user" = $1 AND room = $2 AND client_id = $3', [user, room, clientId]);
    return earlier.rows[0] ? { ok: true, id: Number(earlier.rows[0].id), duplicate: true } : { ok: false };
  }

  async history(room: string, limit: number, before?: number): Promise<HistoryPage> {
    const { rows } = await (before === undefined
      ? this.#query<{ id: string; user: string; html: string; ts: string }>(
          'SELECT id, "user", html, ts FROM messages WHERE room = $1 ORDER BY id DESC LIMIT $2',
          [room, limit + 1],
        )
      : this.#query<{ id: string; user: string; html: string; ts: string }>(
          'SELECT id, "user", html, ts FROM messages WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
          [room, before, limit + 1],
        ));
    const more = rows.length > limit;
    const messages = rows
      .slice(0, limit)
      .reverse()
      .map((r) => ({ id: Number(r.id), user: r.user, html: r.html, ts: Number(r.ts) }));
    return { messages, more };
  }

  /** Through the pool like every query: an outage becomes StoreUnavailableError (and is logged once). */
  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async close(): Promise<void> {
    this.sessions.close();
    await this.#pool.end();
  }
}
