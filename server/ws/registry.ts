// Who is connected: live connections by user and by session, and the per-user cap.
// The upgrade gate reserves a slot before the handshake so concurrent upgrades cannot
// race past the cap; revocations find every socket of a session or user here.
import { sessionIdHash } from '../store/session-id.ts';
import type { Connection } from './connection.ts';

export class Registry {
  readonly #byUser = new Map<string, Set<Connection>>();
  /** Keyed by the session id's hash: revocations name sessions by hash (server/cluster/revocations.ts). */
  readonly #bySidHash = new Map<string, Set<Connection>>();
  readonly #hashOf = new WeakMap<Connection, string>();
  readonly #pending = new Map<string, number>();

  /** Live plus reserved connections of a user. */
  count(user: string): number {
    return (this.#byUser.get(user)?.size ?? 0) + (this.#pending.get(user) ?? 0);
  }

  /** Holds a slot for a handshake in progress; call the returned function exactly once. */
  reserve(user: string): () => void {
    this.#pending.set(user, (this.#pending.get(user) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#pending.get(user) ?? 1) - 1;
      if (left > 0) this.#pending.set(user, left);
      else this.#pending.delete(user);
    };
  }

  add(connection: Connection): void {
    add(this.#byUser, connection.user, connection);
    const hash = sessionIdHash(connection.sid);
    this.#hashOf.set(connection, hash);
    add(this.#bySidHash, hash, connection);
  }

  remove(connection: Connection): void {
    remove(this.#byUser, connection.user, connection);
    remove(this.#bySidHash, this.#hashOf.get(connection) ?? sessionIdHash(connection.sid), connection);
  }

  ofUser(user: string): ReadonlySet<Connection> {
    return this.#byUser.get(user) ?? EMPTY;
  }

  ofSessionHash(sidHash: string): ReadonlySet<Connection> {
    return this.#bySidHash.get(sidHash) ?? EMPTY;
  }

  *all(): Iterable<Connection> {
    for (const set of this.#byUser.values()) yield* set;
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byUser.values()) n += set.size;
    return n;
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();

function add(map: Map<string, Set<Connection>>, key: string, connection: Connection): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(connection);
}

function remove(map: Map<string, Set<Connection>>, key: string, connection: Connection): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(connection);
  if (set.size === 0) map.delete(key);
}
