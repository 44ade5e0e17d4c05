// Default storage: one SQLite file under DATA_DIR through Node 24's built-in node:sqlite
// (no native build step). Why: docs/decisions/001-node-sqlite.md.
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { LOBBY, type RoomInfo } from '../../shared/protocol.ts';
import { SqlSessionStore, type SessionRows } from './sql-sessions.ts';
import type {
  Accepted,
  Created,
  HistoryPage,
  Invited,
  Members,
  NewMessage,
  ParleyStore,
  Posted,
  Removed,
  Room,
  RoomCaps,
  User,
  SessionExpiry,
} from './store.ts';
import type { Invitation } from '../../shared/protocol.ts';

/** Versioned migrations, applied in order at start; PRAGMA user_version records the last one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     name TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE rooms (
     name TEXT PRIMARY KEY,
     owner TEXT REFERENCES users(name),
     private INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE members (
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     added_at INTEGER NOT NULL,
     PRIMARY KEY (room, user)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX members_user ON members(user);
   CREATE TABLE messages (
     id INTEGER PRIMARY KEY,
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     user TEXT NOT NULL,
     html TEXT NOT NULL,
     ts INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX messages_room_id ON messages(room, id);
   CREATE TABLE sessions (
     sid_hash TEXT PRIMARY KEY,
     user TEXT,
     data TEXT NOT NULL,
     expires INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX sessions_user ON sessions(user);
   CREATE INDEX sessions_expires ON sessions(expires);
   INSERT INTO rooms (name, owner, private, created_at) VALUES ('${LOBBY}', NULL, 0, 0);`,
  // Sessions are bound to a credential version (a password change moves it on), and a
  // message remembers its sender's clientId so a retried send is stored once.
  `ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE messages ADD COLUMN client_id TEXT;
   CREATE UNIQUE INDEX messages_client_id ON messages(user, room, client_id) WHERE client_id IS NOT NULL;`,
  // Rooms with consent: an invitation is pending until the invitee accepts it (then it becomes
  // a row of members) or declines it. Indexes for the caps: rooms per owner, invitations per invitee.
  `CREATE TABLE invitations (
     room TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     inviter TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     invited_at INTEGER NOT NULL,
     PRIMARY KEY (room, user)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX invitations_user ON invitations(user, invited_at);
   CREATE INDEX rooms_owner ON rooms(owner);`,
  // A message is text (rendered to HTML when sent): its source is kept. NULL for messages stored before.
  `ALTER TABLE messages ADD COLUMN text TEXT;`,
  // A decline is remembered per (invitee, inviter): that inviter's invitations to the decliner are
  // refused for INVITATION_DECLINE_DAYS (decision 018, amendment). One row per pair, renewed by each decline.
  `CREATE TABLE invitation_declines (
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     inviter TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     declined_at INTEGER NOT NULL,
     PRIMARY KEY (user, inviter)
   ) STRICT, WITHOUT ROWID;`,
];

function migrate(db: DatabaseSync): void {
  const { user_version: current } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[version]!);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
}

/** The sessions table in SQLite; what the rows mean is in sql-sessions.ts. */
function sqliteSessionRows(db: DatabaseSync): SessionRows {
  const read = db.prepare('SELECT data, expires FROM sessions WHERE sid_hash = ?');
  const upsert = db.prepare(
    `INSERT INTO sessions (sid_hash, user, data, expires) VALUES (?, ?, ?, ?)
     ON CONFLICT (sid_hash) DO UPDATE SET user = excluded.user, data = excluded.data, expires = excluded.expires`,
  );
  const update = db.prepare('UPDATE sessions SET data = ?, expires = ? WHERE sid_hash = ?');
  const remove = db.prepare('DELETE FROM sessions WHERE sid_hash = ?');
  const removeAllOf = db.prepare('DELETE FROM sessions WHERE user = ? AND sid_hash <> ? RETURNING expires');
  const sweep = db.prepare('DELETE FROM sessions WHERE expires <= ?');
  return {
    read: async (hash) => read.get(hash) as { data: string; expires: number } | undefined,
    upsert: async (hash, user, data, expires) => void upsert.run(hash, user, data, expires),
    update: async (hash, data, expires) => void update.run(data, expires, hash),
    remove: async (hash) => void remove.run(hash),
    removeAllOf: async (user, keep) => (removeAllOf.all(user, keep ?? '') as Array<{ expires: number }>).map((row) => row.expires),
    sweep: async (now) => void sweep.run(now),
  };
}

export class SqliteStore implements ParleyStore {
  readonly sessions: SqlSessionStore;
  readonly #db: DatabaseSync;
  readonly #q: Record<string, StatementSync>;

  constructor(dataDir: string, sessionExpiresAt: SessionExpiry) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, 'parley.sqlite');
    this.#db = new DatabaseSync(file);
    fs.chmodSync(file, 0o600);
    // WAL: readers never block the writer. synchronous=NORMAL: a commit survives a process
    // crash (kill -9); only a power loss can drop the last transactions. foreign_keys is off
    // by default in SQLite, so turn it on for every connection.
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    migrate(this.#db);
    const db = this.#db;
    this.#q = {
      createUser: db.prepare('INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      findUser: db.prepare('SELECT name, password_hash, credential_version FROM users WHERE name = ?'),
      setPassword: db.prepare('UPDATE users SET password_hash = ?, credential_version = credential_version + 1 WHERE name = ? RETURNING credential_version'),
      createRoom: db.prepare('INSERT INTO rooms (name, owner, private, created_at) VALUES (?, ?, 1, ?) ON CONFLICT DO NOTHING'),
      findRoom: db.prepare('SELECT name, owner, private FROM rooms WHERE name = ?'),
      roomsFor: db.prepare(
        `SELECT r.name, r.owner, r.private FROM rooms r WHERE r.private = 0
         UNION ALL
         SELECT r.name, r.owner, r.private FROM rooms r JOIN members m ON m.room = r.name WHERE m.user = ?
         ORDER BY 3, 1`,
      ),
      isMember: db.prepare('SELECT 1 AS yes FROM members WHERE room = ? AND user = ?'),
      addMember: db.prepare('INSERT INTO members (room, user, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      ownedCount: db.prepare('SELECT count(*) AS n FROM rooms WHERE owner = ?'),
      memberCount: db.prepare('SELECT count(*) AS n FROM members WHERE user = ?'),
      roomExists: db.prepare('SELECT 1 AS yes FROM rooms WHERE name = ?'),
      // Authorization (owner of a private room), consent state (member, declined) and both caps,
      // in the insert itself. The total counts inviters, not invitations: an inviter who already
      // holds a slot adds to it up to their own cap; a new inviter needs a free slot.
      invite: db.prepare(
        `INSERT INTO invitations (room, user, inviter, invited_at)
         SELECT r.name, ?3, ?2, ?4 FROM rooms r
         WHERE r.name = ?1 AND r.private = 1 AND r.owner = ?2
           AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room = r.name AND m.user = ?3)
           AND NOT EXISTS (SELECT 1 FROM invitation_declines d WHERE d.user = ?3 AND d.inviter = ?2 AND d.declined_at > ?4 - ?7)
           AND (SELECT count(*) FROM invitations i WHERE i.user = ?3 AND i.inviter = ?2) < ?6
           AND (EXISTS (SELECT 1 FROM invitations i WHERE i.user = ?3 AND i.inviter = ?2)
                OR (SELECT count(DISTINCT i.inviter) FROM invitations i WHERE i.user = ?3) < ?5)
         ON CONFLICT DO NOTHING`,
      ),
      // Only names a refused invite (nothing is acted on it).
      whyNotInvited: db.prepare(
        `SELECT EXISTS (SELECT 1 FROM rooms WHERE name = ?1 AND private = 1 AND owner = ?2) AS owns,
                EXISTS (SELECT 1 FROM members WHERE room = ?1 AND user = ?3) AS member,
                EXISTS (SELECT 1 FROM invitations WHERE room = ?1 AND user = ?3) AS invited,
                EXISTS (SELECT 1 FROM invitation_declines WHERE user = ?3 AND inviter = ?2 AND declined_at > ?4 - ?5) AS declined,
                (SELECT count(*) FROM invitations WHERE user = ?3 AND inviter = ?2) AS mine`,
      ),
      // The decliner inviting the one they declined is their own way back: their decline ends.
      forgiveDecline: db.prepare('DELETE FROM invitation_declines WHERE user = ? AND inviter = ?'),
      inviterOf: db.prepare('SELECT inviter FROM invitations WHERE room = ? AND user = ?'),
      withdrawInvitations: db.prepare('DELETE FROM invitations WHERE user = ? AND inviter = ? RETURNING room'),
      rememberDecline: db.prepare(
        `INSERT INTO invitation_declines (user, inviter, declined_at) VALUES (?, ?, ?)
         ON CONFLICT (user, inviter) DO UPDATE SET declined_at = excluded.declined_at`,
      ),
      forgetDeclines: db.prepare('DELETE FROM invitation_declines WHERE user = ? AND declined_at <= ?'),
      invitationExists: db.prepare('SELECT 1 AS yes FROM invitations WHERE room = ? AND user = ?'),
      acceptInsert: db.prepare(
        `INSERT INTO members (room, user, added_at)
         SELECT i.room, i.user, ?3 FROM invitations i
         WHERE i.room = ?1 AND i.user = ?2 AND (SELECT count(*) FROM members m WHERE m.user = ?2) < ?4
         ON CONFLICT DO NOTHING`,
      ),
      deleteInvitation: db.prepare('DELETE FROM invitations WHERE room = ? AND user = ?'),
      // The owner's membership is never deleted: the statement compares it itself.
      leave: db.prepare("DELETE FROM members WHERE room = ?1 AND user = ?2 AND ?2 <> COALESCE((SELECT owner FROM rooms WHERE name = ?1), '')"),
      invitationsFor: db.prepare('SELECT room, inviter FROM invitations WHERE user = ? ORDER BY invited_at, room'),
      membersOf: db.prepare('SELECT user FROM members WHERE room = ? ORDER BY user'),
      invitedTo: db.prepare('SELECT user FROM invitations WHERE room = ? ORDER BY user'),
      // Authorization and insert in one statement: the sender may post at the moment of the insert.
      addMessage: db.prepare(
        `INSERT INTO messages (room, user, html, ts, client_id, text)
         SELECT r.name, ?2, ?3, ?4, ?5, ?6 FROM rooms r
         WHERE r.name = ?1 AND (r.private = 0 OR EXISTS (SELECT 1 FROM members m WHERE m.room = r.name AND m.user = ?2))
         ON CONFLICT DO NOTHING RETURNING id`,
      ),
      byClientId: db.prepare('SELECT id FROM messages WHERE user = ? AND room = ? AND client_id = ?'),
      latest: db.prepare('SELECT id, user, html, ts FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?'),
      before: db.prepare('SELECT id, user, html, ts FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?'),
      ping: db.prepare('SELECT 1'),
    };
    this.sessions = new SqlSessionStore(sqliteSessionRows(db), sessionExpiresAt, async (user) => (await this.findUser(user))?.credentialVersion);
  }

  async createUser(name: string, passwordHash: string, now: number): Promise<boolean> {
    return this.#q['createUser']!.run(name, passwordHash, now).changes === 1;
  }

  async findUser(name: string): Promise<User | undefined> {
    const row = this.#q['findUser']!.get(name) as { name: string; password_hash: string; credential_version: number } | undefined;
    return row && { name: row.name, passwordHash: row.password_hash, credentialVersion: row.credential_version };
  }

  async setPasswordHash(name: string, passwordHash: string): Promise<number> {
    const row = this.#q['setPassword']!.get(passwordHash, name) as { credential_version: number } | undefined;
    if (!row) throw new Error('setPasswordHash: no such user');
    return row.credential_version;
  }

  /** One write transaction (SQLite has one writer): the caps read and the insert see the same state. */
  #transaction<T>(work: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  #count(query: string, value: string): number {
    return Number((this.#q[query]!.get(value) as { n: number }).n);
  }

  async createRoom(name: string, owner: string, now: number, caps: RoomCaps): Promise<Created> {
    return this.#transaction(() => {
      if (this.#q['roomExists']!.get(name)) return 'exists';
      if (this.#count('ownedCount', owner) >= caps.roomsPerOwner) return 'too_many_rooms';
      if (this.#count('memberCount', owner) >= caps.membershipsPerUser) return 'too_many_memberships';
      if (this.#q['createRoom']!.run(name, owner, now).changes !== 1) return 'exists';
      this.#q['addMember']!.run(name, owner, now);
      return 'created';
    });
  }

  async invite(room: string, from: string, user: string, now: number, caps: RoomCaps): Promise<Invited> {
    return this.#transaction(() => {
      const args = [room, from, user, now, caps.pendingPerInvitee, caps.pendingPerInviter, caps.declineMs] as const;
      if (this.#q['invite']!.run(...args).changes === 1) {
        this.#q['forgiveDecline']!.run(from, user);
        return 'invited';
      }
      // Nothing stored: say why (these reads only name the refusal; nothing is acted on them).
      const why = this.#q['whyNotInvited']!.get(room, from, user, now, caps.declineMs) as {
        owns: number;
        member: number;
        invited: number;
        declined: number;
        mine: number;
      };
      if (!why.owns) return 'forbidden';
      if (why.member) return 'already_member';
      if (why.invited) return 'already_invited';
      if (why.declined) return 'declined';
      if (Number(why.mine) >= caps.pendingPerInviter) return 'inviter_cap';
      return 'too_many_invitations';
    });
  }

  async accept(room: string, user: string, now: number, caps: RoomCaps): Promise<Accepted> {
    return this.#transaction(() => {
      if (this.#q['acceptInsert']!.run(room, user, now, caps.membershipsPerUser).changes === 1) {
        this.#q['deleteInvitation']!.run(room, user);
        return 'joined';
      }
      return this.#q['invitationExists']!.get(room, user) ? 'too_many_memberships' : 'no_such_invitation';
    });
  }

  async decline(room: string, user: string, now: number, caps: RoomCaps): Promise<string[]> {
    return this.#transaction(() => {
      const row = this.#q['inviterOf']!.get(room, user) as { inviter: string } | undefined;
      if (!row) return [];
      const rooms = (this.#q['withdrawInvitations']!.all(user, row.inviter) as Array<{ room: string }>).map((r) => r.room);
      this.#q['rememberDecline']!.run(user, row.inviter, now);
      this.#q['forgetDeclines']!.run(user, now - caps.declineMs); // expired ones (and this one if declines are not remembered)
      return rooms;
    });
  }

  async leave(room: string, user: string): Promise<boolean> {
    return this.#q['leave']!.run(room, user).changes === 1;
  }

  async removeMember(room: string, user: string): Promise<Removed> {
    if (this.#q['leave']!.run(room, user).changes === 1) return 'member';
    return this.#q['deleteInvitation']!.run(room, user).changes === 1 ? 'invitation' : 'none';
  }

  async invitationsFor(user: string): Promise<Invitation[]> {
    return (this.#q['invitationsFor']!.all(user) as Array<{ room: string; inviter: string }>).map((row) => ({ room: row.room, from: row.inviter }));
  }

  async membersOf(room: string): Promise<Members> {
    return {
      members: (this.#q['membersOf']!.all(room) as Array<{ user: string }>).map((row) => row.user),
      invited: (this.#q['invitedTo']!.all(room) as Array<{ user: string }>).map((row) => row.user),
    };
  }

  async findRoom(name: string): Promise<Room | undefined> {
    const row = this.#q['findRoom']!.get(name) as { name: string; owner: string | null; private: number } | undefined;
    return row && { name: row.name, owner: row.owner, private: row.private === 1 };
  }

  async roomsFor(user: string): Promise<RoomInfo[]> {
    const rows = this.#q['roomsFor']!.all(user) as Array<{ name: string; owner: string | null; private: number }>;
    return rows.map((row) => ({ name: row.name, owner: row.owner, private: row.private === 1 }));
  }

  async isMember(room: string, user: string): Promise<boolean> {
    return this.#q['isMember']!.get(room, user) !== undefined;
  }

  async addMessage({ room, user, text, html, ts, clientId }: NewMessage): Promise<Posted> {
    const row = this.#q['addMessage']!.get(room, user, html, ts, clientId ?? null, text) as { id: number } | undefined;
    if (row) return { ok: true, id: Number(row.id), duplicate: false };
    // Nothing inserted: either this clientId was stored before (a retry), or the sender may not post.
    const earlier = clientId === undefined ? undefined : (this.#q['byClientId']!.get(user, room, clientId) as { id: number } | undefined);
    return earlier ? { ok: true, id: Number(earlier.id), duplicate: true } : { ok: false };
  }

  async history(room: string, limit: number, before?: number): Promise<HistoryPage> {
    const rows = (before === undefined ? this.#q['latest']!.all(room, limit + 1) : this.#q['before']!.all(room, before, limit + 1)) as Array<{
      id: number;
      user: string;
      html: string;
      ts: number;
    }>;
    const more = rows.length > limit;
    const messages = rows
      .slice(0, limit)
      .reverse()
      .map((r) => ({ id: r.id, user: r.user, html: r.html, ts: r.ts }));
    return { messages, more };
  }

  /** A local file: it answers unless it was closed (which throws here). */
  async ping(): Promise<void> {
    this.#q['ping']!.get();
  }

  async close(): Promise<void> {
    this.sessions.close();
    if (this.#db.isOpen) this.#db.close();
  }
}
