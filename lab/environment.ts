// The environment the lab gives Parley. The lab runs with controls switched off, so it must
// never join what the caller's shell points at: an operator who exported the cluster's
// REDIS_URL / DATABASE_URL (as docs/scaling.md says to) would otherwise bring an anonymous,
// unsanitized lab socket into the real cluster. Those settings are dropped, not refused:
// the lab always runs on its own SQLite in its own DATA_DIR, on loopback.

/** Variables that point Parley at shared backends or describe a deployment. */
const DEPLOYMENT_VARIABLES = ['REDIS_URL', 'DATABASE_URL', 'TRUST_PROXY'] as const;

export type LabEnvironment = {
  env: Record<string, string>;
  /** The variables dropped (names only: a URL may hold a password). */
  dropped: string[];
};

export function labEnvironment(source: Readonly<Record<string, string | undefined>>): LabEnvironment {
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const deployment = (DEPLOYMENT_VARIABLES as readonly string[]).includes(name) || (name === 'NODE_ENV' && value === 'production');
    if (deployment) {
      if (value !== '') dropped.push(name);
      continue;
    }
    env[name] = value;
  }
  return { env, dropped };
}
