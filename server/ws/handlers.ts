// What each client frame does: one handler per frame type, in a table.
// Authorization is checked on every frame against the store, not remembered from the join
// (ASVS 8.2.x, OWASP WS cheat sheet: authorize each message), so a member removed from a
// room loses it at their very next frame. And no `await` separates a check from the act it
// allows (docs/decisions/015-authorize-before-act.md): a subscription receives nothing until
// the check confirms it, a message is inserted by a statement that checks membership itself,
// and a history page read after a check is checked again before it is sent.
import { LOBBY, type ClientFrame, type ErrorCode } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { RepeatLog } from '../security/repeat-log.ts';
import type { RenderMessage } from '../security/render-message.ts';
import { StoreUnavailableError, type ParleyStore } from '../store/store.ts';
import type { Connection } from './connection.ts';
import type { Fanout } from './fanout.ts';
import type { Registry } from './registry.ts';

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
  /** With several instances: tell the others that this user's rooms changed. */
  onMembershipChanged?: ((user: string) => void) | undefined;
};

type Refusal = { ok: false; code: ErrorCode; message: string };
type Access = { ok: true; owner: string | null } | Refusal;

const NO_SUCH_ROOM: Refusal = { ok: false, code: 'no_such_room', message: 'No such room.' };
const NOT_A_MEMBER: Refusal = { ok: false, code: 'forbidden', message: 'You are not a member of this room.' };

type Handler<T extends ClientFrame['type']> = (connection: Connection, frame: Extract<ClientFrame, { type: T }>) => Promise<void>;

export function createHandlers({ store, fanout, registry, renderMessage, log, logRepeated, historyPageSize, onMembershipChanged }: HandlerDeps) {
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

  /** Tell every socket of `user` its current room list; drop subscriptions (live or pending) it lost. */
  async function pushRooms(user: string): Promise<void> {
    const sockets = registry.ofUser(user);
    if (sockets.size === 0) return;
    const rooms = await store.roomsFor(user);
    const names = new Set(rooms.map((r) => r.name));
    for (const connection of sockets) {
      for (const room of fanout.roomsOf(connection)) if (!names.has(room)) fanout.drop(room, connection);
      connection.send({ type: 'rooms', user, rooms });
    }
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
        refuse(connection, NOT_A_MEMBER, room);
      }
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
      // Sanitized once, on the way in (off the event loop, within a budget, charged by cost:
      // security/render-message.ts): what is stored and broadcast is already safe HTML.
      const rendered = await renderMessage(connection.user, text);
      if (!rendered.ok) return connection.sendError(rendered.code, rendered.message, clientId);
      const { html } = rendered;
      const ts = Date.now();
      const posted = await store.addMessage({ room, user: connection.user, html, ts, clientId });
      if (!posted.ok) return refuse(connection, NOT_A_MEMBER, room, clientId);
      // Acknowledge only after the store committed the message. A retry of a stored clientId
      // gets the same id and is not broadcast again (the first one was).
      if (clientId !== undefined) connection.send({ type: 'ack', clientId, id: posted.id });
      if (!posted.duplicate) fanout.broadcast(room, { type: 'message', room, id: posted.id, user: connection.user, html, ts });
    },

    async create(connection, { room }) {
      if (room === LOBBY || !(await store.createRoom(room, connection.user, Date.now()))) {
        return connection.sendError('room_exists', 'A room with that name exists.');
      }
      await pushRooms(connection.user);
      onMembershipChanged?.(connection.user);
    },

    invite: (connection, frame) => manageMember(connection, frame),
    remove: (connection, frame) => manageMember(connection, frame),
  };

  async function manageMember(connection: Connection, frame: Extract<ClientFrame, { type: 'invite' | 'remove' }>): Promise<void> {
    const { user } = connection;
    const found = await store.findRoom(frame.room);
    if (!found) return connection.sendError('no_such_room', 'No such room.');
    // A room's owner never changes, so this check cannot go stale while we await below.
    if (!found.private || found.owner !== user) {
      logRepeated(`${connection.id}:manage`, 'ws_forbidden', { user, room: frame.room, ip: connection.ip, reason: frame.type });
      return connection.sendError('forbidden', 'Only the owner of a private room manages its members.');
    }
    if (frame.user === user) return connection.sendError('bad_frame', 'The owner cannot invite or remove themselves.');
    if (!(await store.findUser(frame.user))) return connection.sendError('no_such_user', 'No such user.');
    if (frame.type === 'invite') {
      await store.addMember(frame.room, frame.user, Date.now());
    } else {
      // Fail safe: this instance stops delivering the room to them before the removal commits,
      // so no message committed after the removal reaches them here; other instances drop
      // them when the membership notice arrives.
      for (const socket of registry.ofUser(frame.user)) fanout.drop(frame.room, socket);
      await store.removeMember(frame.room, frame.user);
    }
    await pushRooms(frame.user);
    await pushRooms(user);
    onMembershipChanged?.(frame.user);
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

  return { handle, pushRooms };
}
