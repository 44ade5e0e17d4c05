// Session revocation bus: the HTTP side announces that a session or a user's sessions
// ended (logout, password change); the WebSocket side closes the matching sockets.
// In one process this is an in-memory emitter; with several instances it is carried by
// Redis pub/sub (docs/scaling.md) — the subscribers do not change.
import { EventEmitter } from 'node:events';

export type Revocation =
  | { kind: 'session'; sid: string; reason: 'logout' | 'expired' }
  | { kind: 'user'; user: string; reason: 'password_changed' };

export class Revocations {
  readonly #emitter = new EventEmitter();

  publish(revocation: Revocation): void {
    this.#emitter.emit('revoked', revocation);
  }

  subscribe(listener: (revocation: Revocation) => void): () => void {
    this.#emitter.on('revoked', listener);
    return () => this.#emitter.off('revoked', listener);
  }
}
