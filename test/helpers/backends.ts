// The backends the authorization suites run against: each opens the gap between an awaited
// check and the act that follows, which plain SQLite (no I/O) hides.
// - SQLite behind a wrapper that answers every store call 2–25 ms late (slow-store.ts);
// - a real PostgreSQL (one server per test file, a fresh database per suite).
import { after } from 'node:test';
import { freshDatabase, startPostgres, type PostgresService } from './services.ts';
import type { StartOptions } from './server.ts';
import { between, slowStore } from './slow-store.ts';

export type Backend = { name: string; options: () => Promise<StartOptions> };

let postgres: PostgresService | undefined;
let databases = 0;
after(async () => {
  await postgres?.destroy();
});

export const RACE_BACKENDS: Backend[] = [
  { name: 'SQLite, every store call answered 2–25 ms late', options: async () => ({ wrapStore: (store) => slowStore(store, between(2, 25)) }) },
  {
    name: 'PostgreSQL',
    options: async () => {
      postgres ??= await startPostgres();
      return { env: { DATABASE_URL: await freshDatabase(postgres, `suite_${process.pid}_${++databases}`) } };
    },
  },
];

/** Options for one suite on `backend`, with the suite's own env on top. */
export async function on(backend: Backend, env: Record<string, string>): Promise<StartOptions> {
  const options = await backend.options();
  return { ...options, env: { ...env, ...options.env } };
}
