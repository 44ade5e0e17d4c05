// Room fan-out: who is listening to which room, and delivering one frame to all of them.
// Each message is serialized and framed once; every member's connection queues the same
// Buffer and writes it with whatever else it was sent this turn (connection.ts, and
// docs/decisions/009-fan-out-write-coalescing.md for the measurements and the why).
//
// Fanout is the one owner of room subscriptions. A subscription starts *pending*: it receives
// nothing until activate() confirms it after the membership check. A removal that lands
// while the check awaits the store drops the pending subscription (drop()), and activate()
// then refuses: no broadcast can reach a socket between "may it listen?" and "it listens"
// (ASVS 8.2.1; the race is described in docs/decisions/015-authorize-before-act.md).
import type { ServerFrame } from '../../shared/protocol.ts';
import { textFrame, type Connection } from './connection.ts';

/** Told when a subscription goes live or a live one ends (presence follows it: ws/presence.ts). */
export type LiveListener = (room: string, connection: Connection, live: boolean) => void;

export class Fanout {
  readonly #onLive: LiveListener | undefined;
  /** room → connections that receive its messages. */
  readonly #rooms = new Map<string, Set<Connection>>();
  /** connection → rooms it receives, and rooms it asked for that are still being checked. */
  readonly #active = new Map<Connection, Set<string>>();
  readonly #pending = new Map<Connection, Set<string>>();

  constructor(onLive?: LiveListener) {
    this.#onLive = onLive;
  }

  /** Start a subscription that receives nothing until activate(); call before the membership check. */
  reserve(room: string, connection: Connection): void {
    // A socket that closed while its frame waited (its onClose already dropped everything)
    // must not come back as a subscription nobody can drop: it would show its user online.
    if (!connection.isOpen || this.#active.get(connection)?.has(room)) return;
    add(this.#pending, connection, room);
  }

  /**
   * Turns a reserved subscription into a live one. False when it was dropped meanwhile (the
   * user lost the room, or the socket closed): the caller must not tell the client it joined.
   */
  activate(room: string, connection: Connection): boolean {
    if (this.#active.get(connection)?.has(room)) return true;
    if (!remove(this.#pending, connection, room) || !connection.isOpen) return false;
    add(this.#active, connection, room);
    add(this.#rooms, room, connection);
    this.#onLive?.(room, connection, true);
    return true;
  }

  /** Ends a subscription, live or pending. */
  drop(room: string, connection: Connection): void {
    remove(this.#pending, connection, room);
    if (remove(this.#active, connection, room)) {
      remove(this.#rooms, room, connection);
      this.#onLive?.(room, connection, false);
    }
  }

  dropAll(connection: Connection): void {
    for (const room of this.roomsOf(connection)) this.drop(room, connection);
  }

  /** Every room the connection receives or is waiting to receive. */
  roomsOf(connection: Connection): string[] {
    return [...(this.#active.get(connection) ?? []), ...(this.#pending.get(connection) ?? [])];
  }

  /** `json`: the frame already serialized by the caller (the cluster fan-out shares it with the bus). */
  broadcast(room: string, frame: ServerFrame, json?: string): void {
    const set = this.#rooms.get(room);
    if (!set || set.size === 0) return;
    const framed = textFrame(json ?? JSON.stringify(frame));
    for (const connection of set) connection.sendFrame(framed);
  }
}

function add<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

/** True if `value` was there. */
function remove<K, V>(map: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = map.get(key);
  if (!set?.delete(value)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}
