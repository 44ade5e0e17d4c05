// The one storage interface the rest of the server sees. server/store/sqlite.ts is the
// default implementation (node:sqlite, one file under DATA_DIR); others (PostgreSQL,
// Redis sessions) implement the same shape. Every method is async so an implementation
// over the network fits without changing a caller.
import type { SessionData, Store as SessionStore } from 'express-session';
import type { ChatMessage, Invitation, RoomInfo } from '../../shared/protocol.ts';

// What a signed-in session holds. Declared here, the lowest layer that reads it (the session
// stores check the deadline and the credential version on every read); http/ and ws/ use it.
declare module 'express-session' {
  interface SessionData {
    user: string;
    createdAt: number;
    lastSeenAt: number;
    /** The user's credential version at login (see User). */
    credentialVersion: number;
  }
}

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

/**
 * `credentialVersion` goes up with every password change; a session remembers the version it
 * was created under and is valid only while the two agree (ASVS 7.4.3), so a login that
 * verified the old password a moment before the change cannot outlive it.
 */
export type User = { name: string; passwordHash: string; credentialVersion: number };
export type Room = { name: string; owner: string | null; private: boolean };
export type HistoryPage = { messages: ChatMessage[]; more: boolean };
/**
 * `text`: what the sender typed (well-formed), kept beside the `html` it rendered to, so a later
 * version can render it again; `clientId`: the sender's id for this message, so a retried send is stored once.
 */
export type NewMessage = { room: string; user: string; text: string; html: string; ts: number; clientId?: string | undefined };
/**
 * The verdict of addMessage: stored (or already stored under the same clientId), or refused
 * because the sender may not post in the room at the moment of the insert.
 */
export type Posted = { ok: true; id: number; duplicate: boolean } | { ok: false };

/** Caps on what one user may hold or put in front of another (ROOMS_PER_OWNER, …: config.ts). */
export type RoomCaps = {
  roomsPerOwner: number;
  membershipsPerUser: number;
  /** Distinct inviters whose invitations one user may hold pending (the backstop against many accounts). */
  pendingPerInvitee: number;
  /** Pending invitations one inviter may hold for one invitee. */
  pendingPerInviter: number;
  /** How long a decline refuses that inviter's invitations to the decliner, in ms (0: not remembered). */
  declineMs: number;
};
export type Created = 'created' | 'exists' | 'too_many_rooms' | 'too_many_memberships';
/**
 * `inviter_cap`: this inviter already holds `pendingPerInviter` invitations for this invitee;
 * `too_many_invitations`: the invitee holds invitations from `pendingPerInvitee` other inviters;
 * `declined`: the invitee declined this inviter less than `declineMs` ago.
 */
export type Invited = 'invited' | 'already_member' | 'already_invited' | 'declined' | 'inviter_cap' | 'too_many_invitations' | 'forbidden';
export type Accepted = 'joined' | 'no_such_invitation' | 'too_many_memberships';
/** The owner's `remove`: a member removed, a pending invitation cancelled, or neither existed. */
export type Removed = 'member' | 'invitation' | 'none';
export type Members = { members: string[]; invited: string[] };

/** When a session ends, from its data (policy: server/http/session.ts sessionExpiresAt). */
export type SessionExpiry = (data: SessionData) => number;

/** A user's current credential version; undefined when the user does not exist. */
export type CredentialVersionOf = (user: string) => Promise<number | undefined>;

/**
 * ASVS 7.4.3: a session is valid only under the credential version it was created with.
 * Every session read of every engine goes through this, so /api/*, the upgrade gate and the
 * live-socket re-checks all compare it. (Sessions from before versions existed count as 1.)
 */
export async function credentialsCurrent(data: SessionData, versionOf: CredentialVersionOf): Promise<boolean> {
  if (!data.user) return true; // not signed in: nothing to compare
  return (await versionOf(data.user)) === (data.credentialVersion ?? 1);
}

export interface ParleyStore {
  createUser(name: string, passwordHash: string, now: number): Promise<boolean>;
  findUser(name: string): Promise<User | undefined>;
  /** Sets the hash and moves the credential version on, in one statement; resolves the new version. */
  setPasswordHash(name: string, passwordHash: string): Promise<number>;

  /** Creates a private room with its owner as a member, if the owner's caps allow it (checked in the same transaction). */
  createRoom(name: string, owner: string, now: number, caps: RoomCaps): Promise<Created>;
  findRoom(name: string): Promise<Room | undefined>;
  /** The lobby plus every private room the user belongs to. */
  roomsFor(user: string): Promise<RoomInfo[]>;
  isMember(room: string, user: string): Promise<boolean>;
  /**
   * A pending invitation, never a membership: stored only if, in the same statement (or, on
   * PostgreSQL, under the invitee's lock), `from` owns the private room, `user` is neither a
   * member nor already invited, has not declined `from` within `caps.declineMs`, holds fewer
   * than `caps.pendingPerInviter` invitations from `from`, and — if `from` holds none yet —
   * holds invitations from fewer than `caps.pendingPerInvitee` inviters.
   */
  invite(room: string, from: string, user: string, now: number, caps: RoomCaps): Promise<Invited>;
  /** The invitation becomes a membership and is deleted, in one transaction, only if it still exists and the cap allows it. */
  accept(room: string, user: string, now: number, caps: RoomCaps): Promise<Accepted>;
  /**
   * Declines the invitation to `room`: in one transaction, deletes every pending invitation of
   * its inviter to `user` and remembers the decline (see `invite`). Returns the rooms whose
   * invitations were deleted, `room` among them; empty if there was no invitation to `room`.
   */
  decline(room: string, user: string, now: number, caps: RoomCaps): Promise<string[]>;
  /** Ends a membership, never the owner's (the statement checks it); false if nothing was deleted. */
  leave(room: string, user: string): Promise<boolean>;
  /** The owner's removal: the membership (never the owner's) or else the pending invitation. */
  removeMember(room: string, user: string): Promise<Removed>;
  /** Pending invitations of a user, oldest first. */
  invitationsFor(user: string): Promise<Invitation[]>;
  /** Members (owner included) and pending invitees of a room, by name. */
  membersOf(room: string): Promise<Members>;

  /**
   * Commits the message if, at that moment, the room exists and the sender may post there
   * (public, or a member): authorization and insert are one statement, so a member removed
   * while the message was on its way cannot post it. The caller acknowledges only after
   * this resolves.
   */
  addMessage(message: NewMessage): Promise<Posted>;
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

  /**
   * Readiness (GET /readyz): resolves when the backing database answers a trivial query,
   * rejects (StoreUnavailableError for an outage) when it does not. Reads nothing, writes nothing.
   */
  ping(): Promise<void>;

  close(): Promise<void>;
}
