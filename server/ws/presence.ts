// Presence: who is online in a room — every user with a socket *joined* to it (a live
// subscription in the Fanout), on this instance or another. Presence is data about a room,
// so it is scoped exactly like the room's messages: the changes go out through the Fanout
// to the room's live subscribers only (authorized at join, dropped on removal), and the
// whole set is sent only to a socket whose join was authorized. A non-member learns nothing.
//
// Cost (docs/decisions/018-rooms-with-consent.md): when a crowd comes at once — every client
// of an instance reconnecting after a bus loss — one frame per user to every subscriber, and
// the whole set on the bus per user, would be quadratic in the room's size. So changes are
// coalesced per room over PRESENCE_COALESCE_SECONDS: the first change opens a window; when it
// closes, each subscriber gets one frame with what changed (a user who came and went within
// it is not mentioned), and the bus gets one delta.
//
// Across instances: each instance publishes, per room, the changes to its own users online
// there (deltas), and its whole set every PRESENCE_REFRESH_SECONDS. A set replaces that
// instance's previous one, so a lost delta is repaired by the next set; a set not refreshed
// within 3 intervals expires (an instance that died stops counting); a lost bus clears every
// remote set (its sockets close anyway). A recorded notice replayed later is dropped by the
// bus (sequence number and age, server/cluster/redis-bus.ts).
import type { PresenceChangeFrame, PresenceDeltaFrame } from '../../shared/protocol.ts';
import type { ClusterBus, PresenceNotice } from '../cluster/bus.ts';
import type { Connection } from './connection.ts';

/** Delivers one coalesced change of a room's presence to the room's live subscribers. */
export type PresenceBroadcast = (room: string, frame: PresenceChangeFrame | PresenceDeltaFrame) => void;

export type PresenceOptions = { refreshMs: number; coalesceMs: number };

type Remote = { users: Set<string>; seenAt: number };
/** room → user → the state as last told (before the window opened). */
type Before = Map<string, Map<string, boolean>>;

export class Presence {
  /** room → user → live subscriptions of that user here. */
  readonly #local = new Map<string, Map<string, number>>();
  /** instance → room → that instance's users online there. */
  readonly #remote = new Map<string, Map<string, Remote>>();
  readonly #bus: ClusterBus;
  readonly #broadcast: PresenceBroadcast;
  readonly #options: PresenceOptions;
  readonly #timer: NodeJS.Timeout;
  /** For the open window: each touched user's online-anywhere state as the room's subscribers were last told it. */
  #told: Before = new Map();
  /** For the open window: each touched user's online-here state as the bus was last told it. */
  #announced: Before = new Map();
  /** Cancels the open window's flush; undefined while no window is open. */
  #window: (() => void) | undefined;

  constructor(bus: ClusterBus, options: PresenceOptions, broadcast: PresenceBroadcast) {
    this.#bus = bus;
    this.#broadcast = broadcast;
    this.#options = options;
    bus.onPresence((from, notice) => this.#remoteNotice(from, notice));
    bus.onLost(() => {
      for (const [from, rooms] of [...this.#remote]) for (const room of [...rooms.keys()]) this.#remoteSet(from, room, new Set());
    });
    this.#timer = setInterval(() => this.#refresh(), options.refreshMs);
    this.#timer.unref();
  }

  /** The Fanout's live-subscription listener. */
  readonly live = (room: string, connection: Connection, live: boolean): void => {
    const user = connection.user;
    this.#touch(room, user, true);
    const users = this.#local.get(room) ?? new Map<string, number>();
    const count = (users.get(user) ?? 0) + (live ? 1 : -1);
    if (count > 0) users.set(user, count);
    else users.delete(user);
    if (users.size > 0) this.#local.set(room, users);
    else this.#local.delete(room);
  };

  isOnline(room: string, user: string): boolean {
    if (this.#isLocal(room, user)) return true;
    for (const rooms of this.#remote.values()) if (rooms.get(room)?.users.has(user)) return true;
    return false;
  }

  /** Everyone online in the room, on any instance, sorted. Only for a socket authorized to the room. */
  online(room: string): string[] {
    const users = new Set(this.#local.get(room)?.keys() ?? []);
    for (const rooms of this.#remote.values()) for (const user of rooms.get(room)?.users ?? []) users.add(user);
    return [...users].sort();
  }

  /** Shutting down: what changed in the open window (the last sockets going offline) is told now, then nothing more. */
  close(): void {
    clearInterval(this.#timer);
    if (this.#window === undefined) return;
    this.#window();
    this.#flush();
  }

  #isLocal(room: string, user: string): boolean {
    return (this.#local.get(room)?.get(user) ?? 0) > 0;
  }

  /** Call before changing a user's state in a room: remembers what was last told, and opens the window. */
  #touch(room: string, user: string, local: boolean): void {
    remember(this.#told, room, user, () => this.isOnline(room, user));
    if (local) remember(this.#announced, room, user, () => this.#isLocal(room, user));
    if (this.#window !== undefined) return;
    if (this.#options.coalesceMs > 0) {
      const timer = setTimeout(() => this.#flush(), this.#options.coalesceMs);
      this.#window = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => this.#flush());
      this.#window = () => clearImmediate(immediate);
    }
  }

  /** The window closes: one delta on the bus and one frame per subscriber, per room, for what really changed. */
  #flush(): void {
    const announced = this.#announced;
    const told = this.#told;
    this.#window = undefined;
    this.#announced = new Map();
    this.#told = new Map();
    for (const [room, users] of announced) {
      const [online, offline] = changed(users, (user) => this.#isLocal(room, user));
      if (online.length + offline.length > 0) this.#bus.publishPresence({ kind: 'delta', room, online, offline });
    }
    for (const [room, users] of told) {
      const [online, offline] = changed(users, (user) => this.isOnline(room, user));
      if (online.length + offline.length === 1) {
        const user = (online[0] ?? offline[0])!;
        this.#broadcast(room, { type: 'presence_change', room, user, online: online.length === 1 });
      } else if (online.length + offline.length > 1) {
        this.#broadcast(room, { type: 'presence_delta', room, online, offline });
      }
    }
  }

  #remoteNotice(from: string, notice: PresenceNotice): void {
    if (notice.kind === 'set') return this.#remoteSet(from, notice.room, new Set(notice.users));
    const remote = this.#remote.get(from)?.get(notice.room);
    const users = new Set(remote?.users);
    for (const user of notice.online) users.add(user);
    for (const user of notice.offline) users.delete(user);
    this.#remoteSet(from, notice.room, users);
  }

  #remoteSet(from: string, room: string, users: Set<string>): void {
    const rooms = this.#remote.get(from) ?? new Map<string, Remote>();
    const old = rooms.get(room)?.users ?? new Set<string>();
    for (const user of old) if (!users.has(user)) this.#touch(room, user, false);
    for (const user of users) if (!old.has(user)) this.#touch(room, user, false);
    if (users.size > 0) rooms.set(room, { users, seenAt: Date.now() });
    else rooms.delete(room);
    if (rooms.size > 0) this.#remote.set(from, rooms);
    else this.#remote.delete(from);
  }

  /** Re-announce our sets; forget remote sets not heard of for 3 intervals. */
  #refresh(): void {
    for (const [room, users] of this.#local) this.#bus.publishPresence({ kind: 'set', room, users: [...users.keys()] });
    const stale = Date.now() - 3 * this.#options.refreshMs;
    for (const [from, rooms] of [...this.#remote]) {
      for (const [room, remote] of [...rooms]) if (remote.seenAt < stale) this.#remoteSet(from, room, new Set());
    }
  }
}

function remember(before: Before, room: string, user: string, state: () => boolean): void {
  let users = before.get(room);
  if (!users) before.set(room, (users = new Map()));
  if (!users.has(user)) users.set(user, state());
}

/** The users whose state now differs from before: [came online, went offline]. */
function changed(before: Map<string, boolean>, now: (user: string) => boolean): [string[], string[]] {
  const online: string[] = [];
  const offline: string[] = [];
  for (const [user, was] of before) {
    const is = now(user);
    if (is && !was) online.push(user);
    else if (!is && was) offline.push(user);
  }
  return [online, offline];
}
