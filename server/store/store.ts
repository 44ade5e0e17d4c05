// The one storage interface the rest of the server sees. server/store/sqlite.ts is the
// default implementation (node:sqlite, one file under DATA_DIR); others (PostgreSQL,
// Redis sessions) implement the same shape. Every method is async so an implementation
// over the network fits without changing a caller.
import type { SessionData, Store as SessionStore } from 'express-session';
import type { ChatMessage, RoomInfo } from '../../shared/protocol.ts';

/**
 * A backend (PostgreSQL, Redis) cannot be reached right now. Callers turn it into a
 * "try again" answer (HTTP 503 / `server_busy` frame) instead of a 500, and the process
 * keeps running; the backend's client reconnects by itself.
 */
export class StoreUnavailableError extends Error {
  readonly backend: string;
  constructor(backend: string, cause?: unknown) {
    super(`${backend} is unavailable${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });
    this.name = 'StoreUnavailableError';
    this.backend = backend;
  }
}

export type User = { name: string; passwordHash: string };
export type Room = { name: string; owner: string | null; private: boolean };
export type HistoryPage = { messages: ChatMessage[]; more: boolean };

/** When a session ends, from its data (policy: server/http/session.ts sessionExpiresAt). */
export type SessionExpiry = (data: SessionData) => number;

export interface ParleyStore {
  createUser(name: string, passwordHash: string, now: number): Promise<boolean>;
  findUser(name: string): Promise<User | undefined>;
  setPasswordHash(name: string, passwordHash: string): Promise<void>;

  createRoom(name: string, owner: string, now: number): Promise<boolean>;
  findRoom(name: string): Promise<Room | undefined>;
  /** The lobby plus every private room the user belongs to. */
  roomsFor(user: string): Promise<RoomInfo[]>;
  isMember(room: string, user: string): Promise<boolean>;
  addMember(room: string, user: string, now: number): Promise<void>;
  removeMember(room: string, user: string): Promise<void>;

  /** Commits the message and returns its id; the caller acknowledges only after this resolves. */
  addMessage(room: string, user: string, html: string, ts: number): Promise<number>;
  /** Latest `limit` messages (oldest first), or those before message id `before`. */
  history(room: string, limit: number, before?: number): Promise<HistoryPage>;

  /** express-session store for this backend. */
  readonly sessions: SessionStore & {
    /** Ends every session of a user except `keepSid` (after a password change). Returns how many ended. */
    destroyAllOf(user: string, keepSid?: string): Promise<number>;
    /**
     * Records activity: writes `data` (with its new lastSeenAt) only if the session still
     * exists. Never an upsert, so a request or socket that read the session before a logout
     * or password change ended it cannot write it back to life.
     */
    extend(sid: string, data: SessionData): Promise<void>;
  };

  close(): Promise<void>;
}
