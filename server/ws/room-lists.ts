// Each socket's room list and pending invitations, sent whole once (on connect: `rooms` and
// `invitations`), then only as changes: `room_added` / `room_removed` / `invitation_added` /
// `invitation_removed`, computed per socket against what that socket was last told. A change
// anywhere (here, or on another instance: the membership notice names the user) makes every
// socket of that user re-read the store and receive the difference — so a lost notice is
// repaired by the next read, and a burst of invitations costs the invitee one small frame
// each, never the whole list again (docs/decisions/018-rooms-with-consent.md).
import type { Invitation, RoomInfo } from '../../shared/protocol.ts';
import type { ParleyStore } from '../store/store.ts';
import type { Connection } from './connection.ts';
import type { Fanout } from './fanout.ts';
import type { Registry } from './registry.ts';

type Told = { rooms: Map<string, string>; invitations: Map<string, string> };

const roomKey = (room: RoomInfo): string => JSON.stringify(room);
const invitationKey = (invitation: Invitation): string => invitation.from;

export class RoomLists {
  readonly #store: ParleyStore;
  readonly #registry: Registry;
  readonly #fanout: Fanout;
  readonly #told = new WeakMap<Connection, Told>();
  /** Reads started per user: a read overtaken by a later one is not applied (it may be older). */
  readonly #generation = new Map<string, number>();

  constructor(store: ParleyStore, registry: Registry, fanout: Fanout) {
    this.#store = store;
    this.#registry = registry;
    this.#fanout = fanout;
  }

  /** A new socket: the whole list and the pending invitations, once. */
  async greet(connection: Connection): Promise<void> {
    const started = this.#generation.get(connection.user) ?? 0;
    const [rooms, invitations] = await Promise.all([this.#store.roomsFor(connection.user), this.#store.invitationsFor(connection.user)]);
    this.#told.set(connection, {
      rooms: new Map(rooms.map((r) => [r.name, roomKey(r)])),
      invitations: new Map(invitations.map((i) => [i.room, invitationKey(i)])),
    });
    connection.send({ type: 'rooms', user: connection.user, rooms });
    connection.send({ type: 'invitations', invitations });
    // A change committed while we read may be missing from what we sent: tell the difference.
    if ((this.#generation.get(connection.user) ?? 0) !== started) await this.push(connection.user);
  }

  /**
   * The user's rooms or invitations changed: every socket of theirs here gets the difference,
   * and loses its subscriptions (live or pending) to rooms it no longer has.
   */
  async push(user: string): Promise<void> {
    if (this.#registry.ofUser(user).size === 0) {
      this.#generation.delete(user); // nobody here to tell: forget the user
      return;
    }
    const started = this.#next(user);
    const [rooms, invitations] = await Promise.all([this.#store.roomsFor(user), this.#store.invitationsFor(user)]);
    if (this.#generation.get(user) !== started) return; // a later read is under way and will be applied instead
    const names = new Set(rooms.map((r) => r.name));
    for (const connection of this.#registry.ofUser(user)) {
      for (const room of this.#fanout.roomsOf(connection)) if (!names.has(room)) this.#fanout.drop(room, connection);
      const told = this.#told.get(connection);
      if (!told) continue; // not greeted yet: its greeting reads after this change
      for (const [name] of told.rooms) if (!names.has(name)) connection.send({ type: 'room_removed', room: name });
      for (const room of rooms) if (told.rooms.get(room.name) !== roomKey(room)) connection.send({ type: 'room_added', room });
      const pending = new Set(invitations.map((i) => i.room));
      for (const [room] of told.invitations) if (!pending.has(room)) connection.send({ type: 'invitation_removed', room });
      for (const invitation of invitations) {
        if (told.invitations.get(invitation.room) !== invitationKey(invitation)) connection.send({ type: 'invitation_added', invitation });
      }
      told.rooms = new Map(rooms.map((r) => [r.name, roomKey(r)]));
      told.invitations = new Map(invitations.map((i) => [i.room, invitationKey(i)]));
    }
    if (this.#registry.ofUser(user).size === 0) this.#generation.delete(user);
  }

  #next(user: string): number {
    const generation = (this.#generation.get(user) ?? 0) + 1;
    this.#generation.set(user, generation);
    return generation;
  }
}
