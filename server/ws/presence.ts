// Presence: who is online in a room — every user with a socket *joined* to it (a live
// subscription in the Fanout), on this instance or another. Presence is data about a room,
// so it is scoped exactly like the room's messages: the changes go out through the Fanout
// to the room's live subscribers only (authorized at join, dropped on removal), and the
// whole set is sent only to a socket whose join was authorized. A non-member learns nothing.
//
// Across instances (docs/decisions/018-rooms-with-consent.md): each instance publishes, per
// room, the set of its own users online there — whenever it changes, and again every
// PRESENCE_REFRESH_SECONDS. A set replaces that instance's previous one, so a lost notice is
// repaired by the next; a set not refreshed within 3 intervals expires (an instance that
// died stops counting); a lost bus clears every remote set (its sockets close anyway).
import type { ClusterBus } from '../cluster/bus.ts';
import type { Connection } from './connection.ts';

/** A user came online in a room or went offline from it (on every instance together). */
export type PresenceChange = (room: string, user: string, online: boolean) => void;

type Remote = { users: Set<string>; seenAt: number };

export class Presence {
  /** room → user → live subscriptions of that user here. */
  readonly #local = new Map<string, Map<string, number>>();
  /** instance → room → that instance's users online there. */
  readonly #remote = new Map<string, Map<string, Remote>>();
  readonly #bus: ClusterBus;
  readonly #changed: PresenceChange;
  readonly #refreshMs: number;
  readonly #timer: NodeJS.Timeout;

  constructor(bus: ClusterBus, refreshMs: number, changed: PresenceChange) {
    this.#bus = bus;
    this.#changed = changed;
    this.#refreshMs = refreshMs;
    bus.onPresence((from, notice) => this.#remoteSet(from, notice.room, new Set(notice.users)));
    bus.onLost(() => {
      for (const [from, rooms] of [...this.#remote]) for (const room of [...rooms.keys()]) this.#remoteSet(from, room, new Set());
    });
    this.#timer = setInterval(() => this.#refresh(), refreshMs);
    this.#timer.unref();
  }

  /** The Fanout's live-subscription listener. */
  readonly live = (room: string, connection: Connection, live: boolean): void => {
    const users = this.#local.get(room) ?? new Map<string, number>();
    const before = this.isOnline(room, connection.user);
    const count = (users.get(connection.user) ?? 0) + (live ? 1 : -1);
    if (count > 0) users.set(connection.user, count);
    else users.delete(connection.user);
    if (users.size > 0) this.#local.set(room, users);
    else this.#local.delete(room);
    // This instance's set for the room changed only when the user's first socket came or last went.
    if (count === (live ? 1 : 0)) this.#bus.publishPresence({ room, users: [...users.keys()] });
    if (this.isOnline(room, connection.user) !== before) this.#changed(room, connection.user, live);
  };

  isOnline(room: string, user: string): boolean {
    if ((this.#local.get(room)?.get(user) ?? 0) > 0) return true;
    for (const rooms of this.#remote.values()) if (rooms.get(room)?.users.has(user)) return true;
    return false;
  }

  /** Everyone online in the room, on any instance, sorted. Only for a socket authorized to the room. */
  online(room: string): string[] {
    const users = new Set(this.#local.get(room)?.keys() ?? []);
    for (const rooms of this.#remote.values()) for (const user of rooms.get(room)?.users ?? []) users.add(user);
    return [...users].sort();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #remoteSet(from: string, room: string, users: Set<string>): void {
    const rooms = this.#remote.get(from) ?? new Map<string, Remote>();
    const old = rooms.get(room)?.users ?? new Set<string>();
    const affected = new Set([...old, ...users]);
    const before = new Map([...affected].map((user) => [user, this.isOnline(room, user)]));
    if (users.size > 0) rooms.set(room, { users, seenAt: Date.now() });
    else rooms.delete(room);
    if (rooms.size > 0) this.#remote.set(from, rooms);
    else this.#remote.delete(from);
    for (const user of affected) {
      const now = this.isOnline(room, user);
      if (now !== before.get(user)) this.#changed(room, user, now);
    }
  }

  /** Re-announce our sets; forget remote sets not heard of for 3 intervals. */
  #refresh(): void {
    for (const [room, users] of this.#local) this.#bus.publishPresence({ room, users: [...users.keys()] });
    const stale = Date.now() - 3 * this.#refreshMs;
    for (const [from, rooms] of [...this.#remote]) {
      for (const [room, remote] of [...rooms]) if (remote.seenAt < stale) this.#remoteSet(from, room, new Set());
    }
  }
}
