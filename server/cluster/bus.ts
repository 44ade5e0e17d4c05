// What instances tell each other, as the WebSocket and HTTP layers see it: new room messages,
// membership changes (a user's room list changed) and session revocations. The ws layer
// publishes here and subscribes here; which transport carries it is chosen in
// server/backends.ts: LocalBus for one instance, RedisBus (server/cluster/redis-bus.ts) for N.
//
// The contract that makes a lost message safe (docs/decisions/013-bus-loss.md): `up` says
// whether what is published now reaches every instance and this instance hears theirs; when
// it stops hearing them, `onLost` fires once, and the caller closes every socket that relied
// on it (1013), so clients reconnect, re-authorize and catch up from history.
import type { MessageFrame, RoomEventFrame } from '../../shared/protocol.ts';

export type { MessageFrame, RoomEventFrame };
/** What goes to a room's subscribers on every instance: a chat message, or a join/leave/invite line. */
export type RoomFrame = MessageFrame | RoomEventFrame;

/**
 * Who is online in `room` on the sending instance (every user with a socket joined to it
 * there). `delta`: the users whose first socket came (`online`) or last socket went
 * (`offline`) within one coalescing window; `set`: the whole set, re-sent every
 * PRESENCE_REFRESH_SECONDS, so a lost delta is repaired and an instance that died stops counting.
 */
export type PresenceNotice = { kind: 'set'; room: string; users: string[] } | { kind: 'delta'; room: string; online: string[]; offline: string[] };

/** A session is named by its hash, so no raw session id ever leaves the process. */
export type RevocationNotice = { kind: 'session'; sidHash: string; reason: 'logout' | 'expired' } | { kind: 'user'; user: string; reason: 'password_changed' };

export interface ClusterBus {
  /** True while a message published now reaches every instance and theirs reach this one. */
  readonly up: boolean;
  /** `json`: `frame` already serialized for the local fan-out, so it is not serialized twice. */
  publishMessage(frame: RoomFrame, json?: string): void;
  /** A user's room list changed (create, invite, remove): every instance re-reads it for their sockets. */
  publishMembership(user: string): void;
  publishRevocation(notice: RevocationNotice): void;
  publishPresence(notice: PresenceNotice): void;
  /** What *other* instances published; an instance never hears its own messages back. */
  onMessage(deliver: (frame: RoomFrame) => void): void;
  /** `from`: the sending instance, so its notices replace its earlier ones. */
  onPresence(deliver: (from: string, notice: PresenceNotice) => void): void;
  onMembership(deliver: (user: string) => void): void;
  onRevocation(deliver: (notice: RevocationNotice) => void): void;
  /** This instance stopped hearing the others: anything they published since may be gone. */
  onLost(listener: () => void): void;
}

/** One instance: nobody else to tell. Always up, never lost; the local paths deliver everything. */
export class LocalBus implements ClusterBus {
  readonly up = true;
  publishMessage(): void {}
  publishMembership(): void {}
  publishRevocation(): void {}
  publishPresence(): void {}
  onMessage(): void {}
  onPresence(): void {}
  onMembership(): void {}
  onRevocation(): void {}
  onLost(): void {}
}
