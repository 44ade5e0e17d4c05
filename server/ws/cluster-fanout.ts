// Cross-instance fan-out: a layer over the local Fanout. A message broadcast here goes to
// this instance's sockets at once (the local path is unchanged) and onto the room bus;
// a message another instance put on the bus is handed to the local Fanout. The bus never
// hands an instance its own messages back, so nobody receives a message twice.
import type { ServerFrame } from '../../shared/protocol.ts';
import { Fanout } from './fanout.ts';

/** Carries room frames between instances (Redis pub/sub: server/store/redis.ts). */
export type RoomBus = {
  publish: (room: string, frame: ServerFrame) => void;
  /** Frames published by *other* instances. */
  subscribe: (deliver: (room: string, frame: ServerFrame) => void) => void;
  /**
   * A user's room list changed (invite, remove): every instance re-reads it for that
   * user's sockets, so a member removed on instance A stops receiving the room on B too.
   */
  publishMembership: (user: string) => void;
  subscribeMembership: (deliver: (user: string) => void) => void;
};

export class ClusterFanout extends Fanout {
  readonly #bus: RoomBus;

  constructor(bus: RoomBus) {
    super();
    this.#bus = bus;
    bus.subscribe((room, frame) => this.#deliverLocally(room, frame));
  }

  override broadcast(room: string, frame: ServerFrame): void {
    super.broadcast(room, frame);
    this.#bus.publish(room, frame);
  }

  #deliverLocally(room: string, frame: ServerFrame): void {
    super.broadcast(room, frame);
  }
}
