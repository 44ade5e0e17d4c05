// DATABASE_URL: users, rooms, memberships and messages in PostgreSQL through `pg` (a Pool),
// with the schema of server/store/sqlite.ts. Sessions live here too unless REDIS_URL is
// set (then in Redis: server/store/redis.ts). Why: docs/decisions/008-scale-out.md.
import pg from 'pg';
import { LOBBY, type Invitation, type RoomInfo } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import { SqlSessionStore, type SessionRows } from './sql-sessions.ts';
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
} from './store.ts';

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
  // Rooms with consent: an invitation is pending until the invitee accepts it (then it becomes
  // a row of members) or declines it. Indexes for the caps: rooms per owner, invitations per invitee.
  `CREATE TABLE invitations (
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     inviter TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     invited_at BIGINT NOT NULL,
     PRIMARY KEY (room, "user")
   );
   CREATE INDEX invitations_user ON invitations("user", invited_at);
   CREATE INDEX rooms_owner ON rooms(owner);`,
  // A message is text (rendered to HTML when sent): its source is kept. NULL for messages stored before.
  `ALTER TABLE messages ADD COLUMN text TEXT;`,
  // A decline is remembered per (invitee, inviter): that inviter's invitations to the decliner are
  // refused for INVITATION_DECLINE_DAYS (decision 018, amendment). One row per pair, renewed by each decline.
  `CREATE TABLE invitation_declines (
     "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     inviter TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     declined_at BIGINT NOT NULL,
     PRIMARY KEY ("user", inviter)
   );`,
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
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
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

  async createRoom(name: string, owner: string, now: number, caps: RoomCaps): Promise<Created> {
    // One statement, so one transaction: the caps read, the room and its owner's membership.
    // (Under READ COMMITTED two creates of the same owner at the same instant can both pass
    // the count: a cap may be exceeded by the owner's concurrent frames, which the per-user
    // frame rate bounds.)
    const { rows } = await this.#query<{ created: boolean; owned: string; memberships: string }>(
      `WITH caps AS (
         SELECT (SELECT count(*) FROM rooms WHERE owner = $2) AS owned, (SELECT count(*) FROM members WHERE "user" = $2) AS memberships
       ), created AS (
         INSERT INTO rooms (name, owner, private, created_at) SELECT $1, $2, true, $3 FROM caps WHERE owned < $4 AND memberships < $5
         ON CONFLICT DO NOTHING RETURNING name
       ), member AS (
         INSERT INTO members (room, "user", added_at) SELECT name, $2, $3 FROM created ON CONFLICT DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM created) AS created, (SELECT owned FROM caps) AS owned, (SELECT memberships FROM caps) AS memberships`,
      [name, owner, now, caps.roomsPerOwner, caps.membershipsPerUser],
    );
    const row = rows[0];
    if (row?.created) return 'created';
    if (await this.findRoom(name)) return 'exists';
    if (Number(row?.owned) >= caps.roomsPerOwner) return 'too_many_rooms';
    if (Number(row?.memberships) >= caps.membershipsPerUser) return 'too_many_memberships';
    return 'exists';
  }

  async invite(room: string, from: string, user: string, now: number, caps: RoomCaps): Promise<Invited> {
    // Under the invitee's lock, so that invitations to one user (and their declines) take turns:
    // under READ COMMITTED two inserts at the same instant could otherwise both pass the counts,
    // or one pass the decline check while the decline commits (decision 015).
    return this.#locked('parley:invitee', user, async (query) => {
      // Authorization (owner of a private room), consent state (member, declined) and both caps,
      // in the insert itself. The total counts inviters, not invitations: an inviter who already
      // holds a slot adds to it up to their own cap; a new inviter needs a free slot.
      const inserted = await query(
        `INSERT INTO invitations (room, "user", inviter, invited_at)
         SELECT r.name, $3::text, $2::text, $4::bigint FROM rooms r
         WHERE r.name = $1::text AND r.private AND r.owner = $2::text
           AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room = r.name AND m."user" = $3::text)
           AND NOT EXISTS (SELECT 1 FROM invitation_declines d WHERE d."user" = $3::text AND d.inviter = $2::text AND d.declined_at > $4::bigint - $7::bigint)
           AND (SELECT count(*) FROM invitations i WHERE i."user" = $3::text AND i.inviter = $2::text) < $6
           AND (EXISTS (SELECT 1 FROM invitations i WHERE i."user" = $3::text AND i.inviter = $2::text)
                OR (SELECT count(DISTINCT i.inviter) FROM invitations i WHERE i."user" = $3::text) < $5)
         ON CONFLICT DO NOTHING`,
        [room, from, user, now, caps.pendingPerInvitee, caps.pendingPerInviter, caps.declineMs],
      );
      if (inserted.rowCount === 1) {
        // The decliner inviting the one they declined is their own way back: their decline ends.
        await query('DELETE FROM invitation_declines WHERE "user" = $1 AND inviter = $2', [from, user]);
        return 'invited';
      }
      // Nothing stored: say why (these reads only name the refusal; nothing is acted on them).
      const { rows } = await query<{ owns: boolean; member: boolean; invited: boolean; declined: boolean; mine: string }>(
        `SELECT EXISTS (SELECT 1 FROM rooms WHERE name = $1 AND private AND owner = $2) AS owns,
                EXISTS (SELECT 1 FROM members WHERE room = $1 AND "user" = $3) AS member,
                EXISTS (SELECT 1 FROM invitations WHERE room = $1 AND "user" = $3) AS invited,
                EXISTS (SELECT 1 FROM invitation_declines WHERE "user" = $3 AND inviter = $2 AND declined_at > $4::bigint - $5::bigint) AS declined,
                (SELECT count(*) FROM invitations WHERE "user" = $3 AND inviter = $2) AS mine`,
        [room, from, user, now, caps.declineMs],
      );
      const why = rows[0];
      if (!why?.owns) return 'forbidden';
      if (why.member) return 'already_member';
      if (why.invited) return 'already_invited';
      if (why.declined) return 'declined';
      if (Number(why.mine) >= caps.pendingPerInviter) return 'inviter_cap';
      return 'too_many_invitations';
    });
  }

  /**
   * A transaction that first takes the lock of one (room, user) pair. An owner's `remove` is
   * two deletes (the membership, else the invitation); without the lock an `accept` could
   * commit between them and leave a membership the owner had just cancelled.
   */
  async #pairLocked<T>(room: string, user: string, work: (query: Query) => Promise<T>): Promise<T> {
    return this.#locked('parley:pair', `${room}/${user}`, work);
  }

  /** A transaction that first takes the advisory lock of `key` in `space`. */
  async #locked<T>(space: string, key: string, work: (query: Query) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      this.#markDown(error);
      throw new StoreUnavailableError('postgres', error);
    }
    const query: Query = async (text, values) => {
      try {
        return await client.query(text, values);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        this.#markDown(error);
        throw new StoreUnavailableError('postgres', error);
      }
    };
    try {
      await query('BEGIN');
      await query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [space, key]);
      const result = await work(query);
      await query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async accept(room: string, user: string, now: number, caps: RoomCaps): Promise<Accepted> {
    return this.#pairLocked(room, user, (query) => this.#accept(query, room, user, now, caps));
  }

  async #accept(query: Query, room: string, user: string, now: number, caps: RoomCaps): Promise<Accepted> {
    // One statement: the invitation is deleted and the membership inserted together, only if
    // the invitation still exists (a concurrent decline, cancel or second accept finds it gone).
    const { rows } = await query<{ joined: boolean; invited: boolean }>(
      `WITH taken AS (
         DELETE FROM invitations i WHERE i.room = $1 AND i."user" = $2
           AND (SELECT count(*) FROM members m WHERE m."user" = $2) < $4
         RETURNING i.room
       ), joined AS (
         INSERT INTO members (room, "user", added_at) SELECT room, $2, $3 FROM taken ON CONFLICT DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM taken) AS joined,
              EXISTS (SELECT 1 FROM invitations WHERE room = $1 AND "user" = $2) AS invited`,
      [room, user, now, caps.membershipsPerUser],
    );
    if (rows[0]?.joined) return 'joined';
    return rows[0]?.invited ? 'too_many_memberships' : 'no_such_invitation';
  }

  async decline(room: string, user: string, now: number, caps: RoomCaps): Promise<string[]> {
    // Under the invitee's lock, like `invite`: an invitation of the same inviter racing the
    // decline is either withdrawn by it or refused by the record it leaves.
    return this.#locked('parley:invitee', user, async (query) => {
      const { rows } = await query<{ room: string }>(
        `WITH gone AS (
           DELETE FROM invitations i WHERE i."user" = $2
             AND i.inviter = (SELECT inviter FROM invitations WHERE room = $1 AND "user" = $2)
           RETURNING i.room, i.inviter
         ), remembered AS (
           INSERT INTO invitation_declines ("user", inviter, declined_at) SELECT DISTINCT $2, inviter, $3::bigint FROM gone
           ON CONFLICT ("user", inviter) DO UPDATE SET declined_at = excluded.declined_at
         )
         SELECT room FROM gone`,
        [room, user, now],
      );
      // Expired declines go (and this one at once if declines are not remembered).
      await query('DELETE FROM invitation_declines WHERE "user" = $1 AND declined_at <= $2', [user, now - caps.declineMs]);
      return rows.map((row) => row.room);
    });
  }

  async leave(room: string, user: string): Promise<boolean> {
    // The owner's membership is never deleted: the statement compares it itself.
    const result = await this.#query(
      `DELETE FROM members WHERE room = $1::text AND "user" = $2::text AND $2::text <> COALESCE((SELECT owner FROM rooms WHERE name = $1::text), '')`,
      [room, user],
    );
    return result.rowCount === 1;
  }

  async removeMember(room: string, user: string): Promise<Removed> {
    return this.#pairLocked(room, user, async (query) => {
      const left = await query(
        `DELETE FROM members WHERE room = $1::text AND "user" = $2::text AND $2::text <> COALESCE((SELECT owner FROM rooms WHERE name = $1::text), '')`,
        [room, user],
      );
      if (left.rowCount === 1) return 'member';
      const cancelled = await query('DELETE FROM invitations WHERE room = $1 AND "user" = $2', [room, user]);
      return cancelled.rowCount === 1 ? 'invitation' : 'none';
    });
  }

  async invitationsFor(user: string): Promise<Invitation[]> {
    const { rows } = await this.#query<{ room: string; inviter: string }>('SELECT room, inviter FROM invitations WHERE "user" = $1 ORDER BY invited_at, room', [
      user,
    ]);
    return rows.map((row) => ({ room: row.room, from: row.inviter }));
  }

  async membersOf(room: string): Promise<Members> {
    const { rows } = await this.#query<{ user: string; pending: boolean }>(
      `SELECT "user", false AS pending FROM members WHERE room = $1
       UNION ALL SELECT "user", true AS pending FROM invitations WHERE room = $1
       ORDER BY 1`,
      [room],
    );
    return { members: rows.filter((r) => !r.pending).map((r) => r.user), invited: rows.filter((r) => r.pending).map((r) => r.user) };
  }

  async findRoom(name: string): Promise<Room | undefined> {
    const { rows } = await this.#query<{ name: string; owner: string | null; private: boolean }>('SELECT name, owner, private FROM rooms WHERE name = $1', [
      name,
    ]);
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

  async addMessage({ room, user, text, html, ts, clientId }: NewMessage): Promise<Posted> {
    // One statement, so one snapshot: the sender may post at the moment of the insert (a
    // removal committed before it wins). Autocommit: when this resolves, the row is committed
    // (and the caller may ack). A retried clientId conflicts and inserts nothing.
    const { rows } = await this.#query<{ id: string }>(
      `INSERT INTO messages (room, "user", html, ts, client_id, text)
       SELECT r.name, $2::text, $3::text, $4::bigint, $5::text, $6::text FROM rooms r
       WHERE r.name = $1::text AND (NOT r.private OR EXISTS (SELECT 1 FROM members m WHERE m.room = r.name AND m."user" = $2::text))
       ON CONFLICT DO NOTHING RETURNING id`,
      [room, user, html, ts, clientId ?? null, text],
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
