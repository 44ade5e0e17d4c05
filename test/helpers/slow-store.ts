// A test wrapper around the real store that makes calls slow, on purpose: SQLite answers
// without I/O and so hides the window between an `await`ed check and the act that follows;
// PostgreSQL and Redis open it. Each call reaches the real store at once (its read sees the
// state of that moment) and its answer arrives `latency(call)` ms later — a stale answer, as
// from a busy database. Calls are named by method (`findRoom`, `isMember`, …) and
// `sessions.get` for session reads.
import type { ParleyStore } from '../../server/store/store.ts';

export type Latency = (call: string) => number;

/** Every call answered between `minMs` and `maxMs` late, at random. */
export const between =
  (minMs: number, maxMs: number): Latency =>
  () =>
    minMs + Math.random() * (maxMs - minMs);

export function slowStore(store: ParleyStore, latency: Latency): ParleyStore {
  const delay = (call: string) => new Promise((resolve) => setTimeout(resolve, latency(call)));
  const sessions = new Proxy(store.sessions, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      // Methods run on the real store (its private fields), whatever `this` the caller has.
      if (prop !== 'get') return (value as (...a: unknown[]) => unknown).bind(target);
      return (sid: string, callback: (error: unknown, data?: unknown) => void) =>
        (value as (sid: string, cb: typeof callback) => void).call(target, sid, (error, data) => void delay('sessions.get').then(() => callback(error, data)));
    },
  });
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'sessions') return sessions;
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'close') return (value as () => Promise<void>).bind(target);
      return async (...args: unknown[]) => {
        const answer = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        await delay(String(prop));
        return answer;
      };
    },
  });
}
