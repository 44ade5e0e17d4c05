// Session revocations: the HTTP side announces that a session or a user's sessions ended
// (logout, expiry, password change); the WebSocket side closes the matching sockets. Local
// sockets hear it at once, through an in-memory emitter; the cluster bus carries the notice
// to every other instance (with REDIS_URL) — the subscribers do not change.
import { EventEmitter } from 'node:events';
import { sessionIdHash } from '../store/session-id.ts';
import type { ClusterBus, RevocationNotice } from './bus.ts';

export type { RevocationNotice };

export type Revocation = { kind: 'session'; sid: string; reason: 'logout' | 'expired' } | { kind: 'user'; user: string; reason: 'password_changed' };

export class Revocations {
  readonly #emitter = new EventEmitter();
  readonly #bus: ClusterBus;

  constructor(bus: ClusterBus) {
    this.#bus = bus;
    bus.onRevocation((notice) => this.#emitter.emit('revoked', notice));
  }

  /**
   * Whether a revocation published now reaches every instance. While it would not, a logout
   * or password change is refused (503) rather than half done (decision 013).
   */
  get up(): boolean {
    return this.#bus.up;
  }

  publish(revocation: Revocation): void {
    const notice: RevocationNotice =
      revocation.kind === 'session' ? { kind: 'session', sidHash: sessionIdHash(revocation.sid), reason: revocation.reason } : revocation;
    // Local sockets first, synchronously; then every other instance.
    this.#emitter.emit('revoked', notice);
    this.#bus.publishRevocation(notice);
  }

  subscribe(listener: (notice: RevocationNotice) => void): () => void {
    this.#emitter.on('revoked', listener);
    return () => this.#emitter.off('revoked', listener);
  }
}
