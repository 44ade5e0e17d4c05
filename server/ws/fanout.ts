// Room fan-out: who is listening to which room, and delivering one frame to all of them.
// Each message is serialized and framed once; every member's connection queues the same
// Buffer and writes it with whatever else it was sent this turn (connection.ts, and
// docs/decisions/009-fan-out-write-coalescing.md for the measurements and the why).
import type { ServerFrame } from '../../shared/protocol.ts';
import { textFrame, type Connection } from './connection.ts';

export class Fanout {
  readonly #rooms = new Map<string, Set<Connection>>();

  subscribe(room: string, connection: Connection): void {
    let set = this.#rooms.get(room);
    if (!set) this.#rooms.set(room, (set = new Set()));
    set.add(connection);
    connection.rooms.add(room);
  }

  unsubscribe(room: string, connection: Connection): void {
    connection.rooms.delete(room);
    const set = this.#rooms.get(room);
    if (!set) return;
    set.delete(connection);
    if (set.size === 0) this.#rooms.delete(room);
  }

  unsubscribeAll(connection: Connection): void {
    for (const room of [...connection.rooms]) this.unsubscribe(room, connection);
  }

  /** `json`: the frame already serialized by the caller (the cluster fan-out shares it with the bus). */
  broadcast(room: string, frame: ServerFrame, json?: string): void {
    const set = this.#rooms.get(room);
    if (!set || set.size === 0) return;
    const framed = textFrame(json ?? JSON.stringify(frame));
    for (const connection of set) connection.sendFrame(framed);
  }
}
