// What each client frame does: one handler per frame type, in a table.
// Authorization is checked on every frame against the store, not remembered from the join
// (ASVS 8.2.x, OWASP WS cheat sheet: authorize each message), so a member removed from a
// room loses it at their very next frame. And no `await` separates a check from the act it
// allows (docs/decisions/015-authorize-before-act.md): a subscription receives nothing until
// the check confirms it, a message is inserted by a statement that checks membership itself,
// and a history page read after a check is checked again before it is sent.
//
// Rooms with consent (docs/decisions/018-rooms-with-consent.md): `invite` stores a pending
// invitation, never a membership; `accept` turns it into one in the store's own transaction;
// the caps and the owner check are part of the statements that act. Room-list changes go out
// as per-socket deltas (room-lists.ts); presence and the join/leave/invite lines go through
// the Fanout to the room's live subscribers only, exactly like messages.
import { LOBBY, type ClientFrame, type ErrorCode, type RoomEvent } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { TokenBuckets } from '../security/rate-limit.ts';
import type { RepeatLog } from '../security/repeat-log.ts';
import type { RenderMessage } from '../security/render-message.ts';
import { StoreUnavailableError, type ParleyStore, type RoomCaps } from '../store/store.ts';
import type { Connection } from './connection.ts';
import type { Fanout } from './fanout.ts';
import type { Presence } from './presence.ts';
import type { Registry } from './registry.ts';
import type { RoomLists } from './room-lists.ts';

export type HandlerDeps = {
  store: ParleyStore;
  fanout: Fanout;
  registry: Registry;
  /** Sanitizes (in a worker, within bounds) and charges the sender by cost; or refuses. */
  renderMessage: RenderMessage;
  log: AuditLog;
  /** Refusals a socket repeats are logged once per window (security/repeat-log.ts). */
  logRepeated: RepeatLog;
  historyPageSize: number;
  /** Each socket's room list and invitations, told as changes. */
  roomLists: RoomLists;
  presence: Presence;
  caps: RoomCaps;
  /** Invitations per inviter (INVITATIONS_PER_HOUR), per instance like the message rate. */
  inviteBuckets: TokenBuckets;
  /** With several instances: tell the others that this user's rooms changed. */
  onMembershipChanged?: ((user: string) => void) | undefined;
};

type Refusal = { ok: false; code: ErrorCode; message: string };
type Access = { ok: true; owner: string | null } | Refusal;

const NO_SUCH_ROOM: Refusal = { ok: false, code: 'no_such_room', message: 'No such room.' };
const NOT_A_MEMBER: Refusal = { ok: false, code: 'forbidden', message: 'You are not a member of this room.' };

type Handler<T extends ClientFrame['type']> = (connection: Connection, frame: Extract<ClientFrame, { type: T }>) => Promise<void>;

const CREATE_REFUSALS = {
  exists: ['room_exists', 'A room with that name exists.'],
  too_many_rooms: ['too_many_rooms', 'You own as many rooms as allowed. Leave one to others or ask an administrator.'],
  too_many_memberships: ['too_many_memberships', 'You are in as many rooms as allowed. Leave one first.'],
} as const;

export function createHandlers(deps: HandlerDeps) {
  const { store, fanout, registry, renderMessage, log, logRepeated, historyPageSize, roomLists, presence, caps, inviteBuckets, onMembershipChanged } = deps;
  async function access(room: string, user: string): Promise<Access> {
    const found = await store.findRoom(room);
    if (!found) return NO_SUCH_ROOM;
    if (found.private && !(await store.isMember(room, user))) return NOT_A_MEMBER;
    return { ok: true, owner: found.owner };
  }

  function refuse(connection: Connection, result: Refusal, room: string, clientId?: string): void {
    if (result.code === 'forbidden') {
      logRepeated(`${connection.id}:forbidden`, 'ws_forbidden', { user: connection.user, room, ip: connection.ip, reason: 'not_a_member' });
    }
    connection.sendError(result.code, result.message, clientId);
  }

  /** The user's rooms or invitations changed: their sockets here get the difference, the other instances are told. */
  async function changed(user: string): Promise<void> {
    onMembershipChanged?.(user);
    await roomLists.push(user);
  }

  /** A line in the room for its live subscribers (on every instance), authorized like a message. */
  function event(room: string, kind: RoomEvent, user: string, by?: string): void {
    fanout.broadcast(room, { type: 'room_event', room, event: kind, user, ...(by !== undefined ? { by } : {}), ts: Date.now() });
  }

  /** Fail safe: this instance stops delivering the room to them before the store forgets them. */
  function unsubscribe(room: string, user: string): void {
    for (const socket of registry.ofUser(user)) fanout.drop(room, socket);
  }

  /** Sends a history page only if the reader may still read the room once it is read. */
  async function sendHistory(connection: Connection, room: string, before?: number): Promise<boolean> {
    const page = await store.history(room, historyPageSize, before);
    // Re-check after the read: a removal that committed meanwhile may precede messages in the page.
    const still = await access(room, connection.user);
    if (!still.ok) return false;
    connection.send({ type: 'history', room, ...page });
    return true;
  }

  const handlers: { [T in ClientFrame['type']]: Handler<T> } = {
    async join(connection, { room }) {
      // Reserved first, so a removal landing during the check drops it; live only once confirmed.
      fanout.reserve(room, connection);
      const result = await access(room, connection.user);
      if (!result.ok || !fanout.activate(room, connection)) {
        fanout.drop(room, connection);
        return refuse(connection, result.ok ? NOT_A_MEMBER : result, room);
      }
      if (!(await sendHistory(connection, room))) {
        fanout.drop(room, connection);
        return refuse(connection, NOT_A_MEMBER, room);
      }
      // Presence goes only to a socket whose join was authorized (and is still live).
      if (fanout.roomsOf(connection).includes(room)) connection.send({ type: 'presence', room, online: presence.online(room) });
    },

    async history(connection, { room, before }) {
      const result = await access(room, connection.user);
      if (!result.ok) return refuse(connection, result, room);
      if (!(await sendHistory(connection, room, before))) refuse(connection, NOT_A_MEMBER, room);
    },

    async send(connection, { room, text, clientId }) {
      // A cheap early answer (unknown room, not a member) before the sanitizer's cost. The wait
      // for a sanitizer worker that follows opens no gap: the insert below checks membership
      // again, in the same statement that stores the message (decision 015).
      const result = await access(room, connection.user);
      if (!result.ok) return refuse(connection, result, room, clientId);
      // Encoded and sanitized once, on the way in (off the event loop, within a budget, charged by
      // cost: security/render-message.ts): what is stored and broadcast is already safe HTML.
      const rendered = await renderMessage({ user: connection.user, address: connection.ip }, text);
      if (!rendered.ok) return connection.sendError(rendered.code, rendered.message, clientId);
      const { html } = rendered;
      const ts = Date.now();
      const posted = await store.addMessage({ room, user: connection.user, text: rendered.text, html, ts, clientId });
      if (!posted.ok) return refuse(connection, NOT_A_MEMBER, room, clientId);
      // Acknowledge only after the store committed the message. A retry of a stored clientId
      // gets the same id and is not broadcast again (the first one was).
      if (clientId !== undefined) connection.send({ type: 'ack', clientId, id: posted.id });
      if (!posted.duplicate) fanout.broadcast(room, { type: 'message', room, id: posted.id, user: connection.user, html, ts });
    },

    async create(connection, { room }) {
      const created = room === LOBBY ? 'exists' : await store.createRoom(room, connection.user, Date.now(), caps);
      if (created !== 'created') return connection.sendError(CREATE_REFUSALS[created][0], CREATE_REFUSALS[created][1]);
      await changed(connection.user);
    },

    async invite(connection, frame) {
      const owner = await ownerOnly(connection, frame);
      if (!owner) return;
      if (frame.user === connection.user) return connection.sendError('bad_frame', 'The owner cannot invite themselves.');
      // Charged per attempt, before any work: a stranger's invitations are bounded per hour.
      if (!inviteBuckets.take(connection.user)) {
        logRepeated(`${connection.id}:invite_rate`, 'ws_rate_limited', { user: connection.user, ip: connection.ip, reason: 'invitations' });
        return connection.sendError('invite_rate_limited', 'You have sent as many invitations as allowed for now. Try again later.');
      }
      if (!(await store.findUser(frame.user))) return connection.sendError('no_such_user', 'No such user.');
      // Owner, consent state (member, declined) and the caps are checked again in the insert itself.
      const invited = await store.invite(frame.room, connection.user, frame.user, Date.now(), caps);
      switch (invited) {
        case 'invited':
          event(frame.room, 'invited', frame.user, connection.user);
          return changed(frame.user);
        case 'already_member':
          return connection.sendError('already_member', `${frame.user} is already a member of ${frame.room}.`);
        case 'already_invited':
          return connection.sendError('already_invited', `${frame.user} already has a pending invitation to ${frame.room}.`);
        // The inviter learns their own state, and that the invitee declined them (the 'declined' line
        // and the member list told them already); nothing about who else invited the invitee.
        case 'declined':
          return connection.sendError('invitation_declined', `${frame.user} declined your invitation; you cannot invite them again for now.`);
        case 'inviter_cap':
          return connection.sendError('too_many_invitations', `You have as many pending invitations to ${frame.user} as allowed. Wait until they answer.`);
        case 'too_many_invitations':
          return connection.sendError('too_many_invitations', `${frame.user} has as many pending invitations as allowed.`);
        case 'forbidden':
          return connection.sendError('forbidden', 'Only the owner of a private room manages its members.');
      }
    },

    async remove(connection, frame) {
      const owner = await ownerOnly(connection, frame);
      if (!owner) return;
      if (frame.user === connection.user) return connection.sendError('owner_cannot_leave', 'The owner cannot remove themselves.');
      // Fail safe: this instance stops delivering the room to them before the removal commits,
      // so no message committed after the removal reaches them here; other instances drop
      // them when the membership notice arrives.
      unsubscribe(frame.room, frame.user);
      const removed = await store.removeMember(frame.room, frame.user);
      // And once more now that it has committed: a join of theirs that passed its membership read
      // while the removal waited (on PostgreSQL, for the pair's lock) fails its activate() now.
      unsubscribe(frame.room, frame.user);
      if (removed === 'none') return connection.sendError('no_such_user', `${frame.user} is neither a member of ${frame.room} nor invited.`);
      event(frame.room, removed === 'member' ? 'removed' : 'uninvited', frame.user, connection.user);
      await changed(frame.user);
    },

    async accept(connection, { room }) {
      // The membership is made from the invitation row, which is deleted in the same transaction.
      const accepted = await store.accept(room, connection.user, Date.now(), caps);
      if (accepted === 'no_such_invitation') return connection.sendError('no_such_invitation', 'You have no pending invitation to that room.');
      if (accepted === 'too_many_memberships') return connection.sendError(CREATE_REFUSALS.too_many_memberships[0], CREATE_REFUSALS.too_many_memberships[1]);
      event(room, 'joined', connection.user);
      await changed(connection.user);
    },

    async decline(connection, { room }) {
      // "Not from you": the inviter's other pending invitations to this user go too, and the
      // store refuses their next ones for INVITATION_DECLINE_DAYS (decision 018, amendment).
      const withdrawn = await store.decline(room, connection.user, Date.now(), caps);
      if (withdrawn.length === 0) return connection.sendError('no_such_invitation', 'You have no pending invitation to that room.');
      for (const gone of withdrawn) event(gone, 'declined', connection.user);
      await changed(connection.user);
    },

    async leave(connection, { room }) {
      const found = await store.findRoom(room);
      if (!found) return connection.sendError('no_such_room', 'No such room.');
      if (!found.private) return connection.sendError('forbidden', 'Everyone signed in is in a public room; it cannot be left.');
      // A room's owner never changes; the store's delete compares it again anyway.
      if (found.owner === connection.user) return connection.sendError('owner_cannot_leave', 'The owner cannot leave their own room.');
      unsubscribe(room, connection.user);
      const left = await store.leave(room, connection.user);
      unsubscribe(room, connection.user); // a join of another of their sockets that raced the leave
      if (!left) {
        await roomLists.push(connection.user); // resubscribing is the client's move; its list is made right
        return refuse(connection, NOT_A_MEMBER, room);
      }
      event(room, 'left', connection.user);
      await changed(connection.user);
    },

    async members(connection, { room }) {
      const result = await access(room, connection.user);
      if (!result.ok) return refuse(connection, result, room);
      const found = await store.findRoom(room);
      const list = found?.private ? await store.membersOf(room) : { members: [], invited: [] };
      // Re-check after the read, like a history page: a removal meanwhile sends nothing.
      const still = await access(room, connection.user);
      if (!still.ok) return refuse(connection, still, room);
      const isOwner = found?.owner === connection.user;
      connection.send({ type: 'members', room, owner: found?.owner ?? null, members: list.members, ...(isOwner ? { invited: list.invited } : {}) });
    },
  };

  /** Only the owner of a private room manages its members; a room's owner never changes, so this cannot go stale. */
  async function ownerOnly(connection: Connection, frame: { type: string; room: string }): Promise<boolean> {
    const found = await store.findRoom(frame.room);
    if (!found) {
      connection.sendError('no_such_room', 'No such room.');
      return false;
    }
    if (!found.private || found.owner !== connection.user) {
      logRepeated(`${connection.id}:manage`, 'ws_forbidden', { user: connection.user, room: frame.room, ip: connection.ip, reason: frame.type });
      connection.sendError('forbidden', 'Only the owner of a private room manages its members.');
      return false;
    }
    return true;
  }

  /** A backend outage is a "try again" for the client (and one log line), not an internal error. */
  async function handle(connection: Connection, frame: ClientFrame): Promise<void> {
    try {
      await (handlers[frame.type] as Handler<ClientFrame['type']>)(connection, frame);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      log('server_error', { user: connection.user, reason: 'store_unavailable', detail: error.message });
      const clientId = frame.type === 'send' ? frame.clientId : undefined;
      connection.sendError('server_busy', 'The server is busy. Try again in a moment.', clientId);
    }
  }

  return { handle };
}
