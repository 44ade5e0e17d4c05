// What each client frame does. Authorization is checked on every frame against the store,
// not remembered from the join (ASVS 8.2.x, OWASP WS cheat sheet: authorize each message),
// so a member removed from a room loses it at their very next frame.
import { HISTORY_PAGE_SIZE, LOBBY, type ClientFrame, type ErrorCode } from '../../shared/protocol.ts';
import type { AuditLog } from '../security/audit-log.ts';
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
  /** With several instances: tell the others that this user's rooms changed. */
  onMembershipChanged?: ((user: string) => void) | undefined;
};

type Access = { ok: true; owner: string | null } | { ok: false; code: ErrorCode; message: string };

export function createHandlers({ store, fanout, registry, renderMessage, log, onMembershipChanged }: HandlerDeps) {
  async function access(room: string, user: string): Promise<Access> {
    const found = await store.findRoom(room);
    if (!found) return { ok: false, code: 'no_such_room', message: 'No such room.' };
    if (found.private && !(await store.isMember(room, user))) {
      return { ok: false, code: 'forbidden', message: 'You are not a member of this room.' };
    }
    return { ok: true, owner: found.owner };
  }

  function refuse(connection: Connection, result: Access & { ok: false }, room: string, clientId?: string): void {
    if (result.code === 'forbidden') log('ws_forbidden', { user: connection.user, room, ip: connection.ip });
    connection.sendError(result.code, result.message, clientId);
  }

  /** Tell every socket of `user` its current room list; drop subscriptions it lost. */
  async function pushRooms(user: string): Promise<void> {
    const sockets = registry.ofUser(user);
    if (sockets.size === 0) return;
    const rooms = await store.roomsFor(user);
    const names = new Set(rooms.map((r) => r.name));
    for (const connection of sockets) {
      for (const room of connection.rooms) if (!names.has(room)) fanout.unsubscribe(room, connection);
      connection.send({ type: 'rooms', user, rooms });
    }
  }

  /** A backend outage is a "try again" for the client (and one log line), not an internal error. */
  async function handle(connection: Connection, frame: ClientFrame): Promise<void> {
    try {
      await dispatch(connection, frame);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      log('server_error', { user: connection.user, reason: 'store_unavailable', detail: error.message });
      const clientId = frame.type === 'send' ? frame.clientId : undefined;
      connection.sendError('server_busy', 'The server is busy. Try again in a moment.', clientId);
    }
  }

  async function dispatch(connection: Connection, frame: ClientFrame): Promise<void> {
    const { user } = connection;
    switch (frame.type) {
      case 'join': {
        // Subscribe before the check, undo on refusal: a removal that lands while the check
        // awaits the store then finds the subscription and drops it (no window to slip through).
        fanout.subscribe(frame.room, connection);
        const result = await access(frame.room, user);
        if (!result.ok) {
          fanout.unsubscribe(frame.room, connection);
          return refuse(connection, result, frame.room);
        }
        const page = await store.history(frame.room, HISTORY_PAGE_SIZE);
        connection.send({ type: 'history', room: frame.room, ...page });
        return;
      }
      case 'history': {
        const result = await access(frame.room, user);
        if (!result.ok) return refuse(connection, result, frame.room);
        const page = await store.history(frame.room, HISTORY_PAGE_SIZE, frame.before);
        connection.send({ type: 'history', room: frame.room, ...page });
        return;
      }
      case 'send': {
        // Sanitized once, on the way in: what is stored and broadcast is already safe HTML.
        // Before the access check, so the wait for a sanitizer worker does not widen the gap
        // between "may post here" and the write.
        const rendered = await renderMessage(user, frame.text);
        if (!rendered.ok) return connection.sendError(rendered.code, rendered.message, frame.clientId);
        const { html } = rendered;
        const result = await access(frame.room, user);
        if (!result.ok) return refuse(connection, result, frame.room, frame.clientId);
        const ts = Date.now();
        const id = await store.addMessage(frame.room, user, html, ts);
        // Acknowledge only after the store committed the message.
        if (frame.clientId !== undefined) connection.send({ type: 'ack', clientId: frame.clientId, id });
        fanout.broadcast(frame.room, { type: 'message', room: frame.room, id, user, html, ts });
        return;
      }
      case 'create': {
        if (frame.room === LOBBY || !(await store.createRoom(frame.room, user, Date.now()))) {
          return connection.sendError('room_exists', 'A room with that name exists.');
        }
        await pushRooms(user);
        onMembershipChanged?.(user);
        return;
      }
      case 'invite':
      case 'remove': {
        const found = await store.findRoom(frame.room);
        if (!found) return connection.sendError('no_such_room', 'No such room.');
        if (!found.private || found.owner !== user) {
          log('ws_forbidden', { user, room: frame.room, ip: connection.ip, reason: frame.type });
          return connection.sendError('forbidden', 'Only the owner of a private room manages its members.');
        }
        if (frame.user === user) return connection.sendError('bad_frame', 'The owner cannot invite or remove themselves.');
        if (!(await store.findUser(frame.user))) return connection.sendError('no_such_user', 'No such user.');
        if (frame.type === 'invite') await store.addMember(frame.room, frame.user, Date.now());
        else await store.removeMember(frame.room, frame.user);
        await pushRooms(frame.user);
        await pushRooms(user);
        onMembershipChanged?.(frame.user);
        return;
      }
    }
  }

  return { handle, pushRooms };
}
