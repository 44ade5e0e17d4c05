// Session revocation bus: the HTTP side announces that a session or a user's sessions
// ended (logout, expiry, password change); the WebSocket side closes the matching sockets.
// In one process this is an in-memory emitter; with REDIS_URL a transport carries every
// notice to every other instance too (server/store/redis.ts) — the subscribers do not change.
import { EventEmitter } from 'node:events';
import { sessionIdHash } from './session-id.ts';

export type Revocation =
  | { kind: 'session'; sid: string; reason: 'logout' | 'expired' }
  | { kind: 'user'; user: string; reason: 'password_changed' };

/** What subscribers receive: a session is named by its hash, so no raw id ever leaves the process. */
export type RevocationNotice =
  | { kind: 'session'; sidHash: string; reason: 'logout' | 'expired' }
  | { kind: 'user'; user: string; reason: 'password_changed' };

/** Carries notices to the other instances; delivers theirs (never this instance's own) back. */
export type RevocationTransport = {
  publish: (notice: RevocationNotice) => void;
  subscribe: (deliver: (notice: RevocationNotice) => void) => void;
};

export class Revocations {
  readonly #emitter = new EventEmitter();
  readonly #transport: RevocationTransport | undefined;

  constructor(transport?: RevocationTransport) {
    this.#transport = transport;
    transport?.subscribe((notice) => this.#emitter.emit('revoked', notice));
  }

  publish(revocation: Revocation): void {
    const notice: RevocationNotice =
      revocation.kind === 'session' ? { kind: 'session', sidHash: sessionIdHash(revocation.sid), reason: revocation.reason } : revocation;
    // Local sockets first, synchronously; then every other instance.
    this.#emitter.emit('revoked', notice);
    this.#transport?.publish(notice);
  }

  subscribe(listener: (notice: RevocationNotice) => void): () => void {
    this.#emitter.on('revoked', listener);
    return () => this.#emitter.off('revoked', listener);
  }
}
