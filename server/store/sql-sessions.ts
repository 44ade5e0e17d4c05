// The express-session store of the two SQL engines (SQLite, PostgreSQL), written once: what a
// session row means is the same in both, only the SQL differs (each engine supplies SessionRows).
// - ASVS 7.2.x: the id is stored only as its SHA-256 (session-id.ts), never as sent.
// - ASVS 7.3.1/7.3.2: the deadline is checked on every read; expired rows are swept.
// - ASVS 7.4.3: a session created under an older credential version (before a password
//   change) reads as no session.
// - Activity is recorded update-only (extend), so a request that read a session before a
//   logout or password change ended it cannot write it back to life.
import session, { type SessionData } from 'express-session';
import { sessionIdHash } from './session-id.ts';
import { credentialsCurrent, type CredentialVersionOf, type SessionExpiry } from './store.ts';

/** One engine's SQL for the sessions table, keyed by the hash of the session id. */
export type SessionRows = {
  read(sidHash: string): Promise<{ data: string; expires: number } | undefined>;
  upsert(sidHash: string, user: string | null, data: string, expires: number): Promise<void>;
  /** Updates the row only if it still exists; never inserts. */
  update(sidHash: string, data: string, expires: number): Promise<void>;
  remove(sidHash: string): Promise<void>;
  /** Deletes every row of `user` except `keepHash` (if any); resolves the deleted rows' deadlines. */
  removeAllOf(user: string, keepHash: string | undefined): Promise<number[]>;
  /** Deletes the rows whose deadline has passed. */
  sweep(now: number): Promise<void>;
};

type Callback<T = void> = (error?: unknown, value?: T) => void;

const SWEEP_EVERY_MS = 60_000;

export class SqlSessionStore extends session.Store {
  readonly #rows: SessionRows;
  readonly #expiresAt: SessionExpiry;
  readonly #versionOf: CredentialVersionOf;
  readonly #timer: NodeJS.Timeout;

  constructor(rows: SessionRows, expiresAt: SessionExpiry, versionOf: CredentialVersionOf) {
    super();
    this.#rows = rows;
    this.#expiresAt = expiresAt;
    this.#versionOf = versionOf;
    // A failed sweep (busy database, outage) changes nothing: expired rows are refused on read.
    this.#timer = setInterval(() => void rows.sweep(Date.now()).catch(() => {}), SWEEP_EVERY_MS);
    this.#timer.unref();
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.#call(callback, async () => {
      const hash = sessionIdHash(sid);
      const row = await this.#rows.read(hash);
      if (!row) return null;
      if (row.expires <= Date.now()) {
        await this.#rows.remove(hash);
        return null;
      }
      const data = JSON.parse(row.data) as SessionData;
      return (await credentialsCurrent(data, this.#versionOf)) ? data : null;
    });
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    this.#call(callback, () => this.#rows.upsert(sessionIdHash(sid), data.user ?? null, JSON.stringify(data), this.#expiresAt(data)));
  }

  // No touch(): express-session would call it with the session as read at the start of the
  // request. Activity goes through extend(), which only updates a row that still exists.
  async extend(sid: string, data: SessionData): Promise<void> {
    await this.#rows.update(sessionIdHash(sid), JSON.stringify(data), this.#expiresAt(data));
  }

  override destroy(sid: string, callback?: Callback): void {
    this.#call(callback, () => this.#rows.remove(sessionIdHash(sid)));
  }

  /** Ends every session of `user` but `keepSid`; returns how many live ones ended. */
  async destroyAllOf(user: string, keepSid?: string): Promise<number> {
    const deadlines = await this.#rows.removeAllOf(user, keepSid === undefined ? undefined : sessionIdHash(keepSid));
    const now = Date.now();
    return deadlines.filter((expires) => expires > now).length; // expired ones were over already
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #call<T>(callback: Callback<T> | undefined, fn: () => Promise<T>): void {
    fn().then(
      (value) => callback?.(undefined, value),
      (error: unknown) => callback?.(error),
    );
  }
}
