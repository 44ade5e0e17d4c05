// Cross-instance fan-out: a layer over the local Fanout. A message broadcast here goes to
// this instance's sockets at once (the local path is unchanged) and onto the cluster bus
// (server/cluster/bus.ts), serialized once for both; a message another instance put on the
// bus — already validated and rebuilt from checked fields by the bus — is handed to the
// local Fanout. The bus never hands an instance its own messages back, so nobody receives a
// message twice.
import type { ServerFrame } from '../../shared/protocol.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import { Fanout, type LiveListener } from './fanout.ts';

export class ClusterFanout extends Fanout {
  readonly #bus: ClusterBus;

  constructor(bus: ClusterBus, onLive?: LiveListener) {
    super(onLive);
    this.#bus = bus;
    bus.onMessage((frame) => super.broadcast(frame.room, frame));
  }

  override broadcast(room: string, frame: ServerFrame): void {
    // Chat messages and room event lines reach every instance; anything else is local.
    if (frame.type !== 'message' && frame.type !== 'room_event') return super.broadcast(room, frame);
    const json = JSON.stringify(frame);
    super.broadcast(room, frame, json);
    this.#bus.publishMessage(frame, json);
  }
}
