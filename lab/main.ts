// `npm run lab [-- --disable origin,csrf] [--port 8443] [--attacker-port 9443] [--data-dir data/lab]`
// (PARLEY_UNSAFE_DISABLE=origin,csrf npm run lab does the same as --disable.)
// Starts Parley on loopback and the attacker's site next to it. See docs/workshop.md.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROLS, ConfigError, type Control } from '../server/config.ts';
import { labEnvironment } from './environment.ts';
import { startLab } from './lab.ts';
import { VICTIM } from './victim.ts';

const usage = `Usage: npm run lab -- [--disable ${CONTROLS.join(',')}] [--port 8443] [--attacker-port 9443] [--data-dir data/lab]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`--${name} must be a port number (got "${value}").`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      disable: { type: 'string', multiple: true },
      port: { type: 'string' },
      'attacker-port': { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

// --disable, or Parley's own PARLEY_UNSAFE_DISABLE from the environment: the same switch.
// Shared backends and deployment settings are dropped: the lab never joins the caller's cluster.
const { env, dropped } = labEnvironment({ ...process.env, PARLEY_UNSAFE_DISABLE: undefined });
if (dropped.length > 0) {
  process.stderr.write(
    `Lab: ignoring ${dropped.join(', ')} from your environment: the lab uses its own SQLite data directory on loopback, never shared backends.\n`,
  );
}
const disabled = [
  ...new Set(
    [...(values.disable ?? []), process.env['PARLEY_UNSAFE_DISABLE'] ?? '']
      .flatMap((list) => list.split(','))
      .map((s) => s.trim())
      .filter(Boolean),
  ),
];
for (const name of disabled) {
  if (!(CONTROLS as readonly string[]).includes(name)) fail(`Unknown control "${name}". Known: ${CONTROLS.join(', ')}.`);
}
const parleyPort = port(values.port, 8443, 'port');
const attackerPort = port(values['attacker-port'], 9443, 'attacker-port');
if (parleyPort === attackerPort) fail('--port and --attacker-port must differ.');
// Its own data directory: the lab's accounts and messages never mix with a real run's.
const dataDir = path.resolve(values['data-dir'] ?? 'data/lab');

let lab;
try {
  // Other Parley variables (limits, WS_MAX_CONNECTIONS_PER_USER…) pass through; the lab sets
  // PORT, HOST (loopback), APP_ORIGIN and DATA_DIR itself, and drops REDIS_URL, DATABASE_URL,
  // TRUST_PROXY and NODE_ENV=production (above).
  lab = await startLab({ dataDir, parleyPort, attackerPort, disabled: disabled as Control[], env, echoAuditLog: true });
} catch (error) {
  if (error instanceof ConfigError) fail(`Configuration error: ${error.message}`);
  if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') fail(`A port is in use: ${(error as Error).message}. Pick others with --port / --attacker-port.`);
  throw error;
}

process.stderr.write(
  [
    '',
    'Parley attack lab',
    `  Parley (the victim's app):  ${lab.parleyOrigin}`,
    `  Attacker site:              ${lab.attackerOrigin}/`,
    `  Sibling-origin attacker:    ${lab.siblingOrigin}/sibling.html`,
    `  Controls switched off:      ${disabled.length ? disabled.join(', ') : 'none (every attack should be blocked)'}`,
    '',
    `  Certificate: ${path.join(dataDir, 'localhost-cert.pem')} (for localhost and evil.localhost).`,
    '  Run `npm run cert` once to make it one your browsers trust (mkcert), or accept the browser warning',
    '  once for each of the three addresses above, or use a throwaway browser profile:',
    `    chromium --user-data-dir="$(mktemp -d)" --ignore-certificate-errors ${lab.parleyOrigin} ${lab.attackerOrigin}/`,
    '',
    `  1. In Parley, sign in as '${VICTIM.username}' with the password '${VICTIM.password}' (the lab gave them a`,
    `     private room, ${VICTIM.room}, with a note in it) and stay signed in.`,
    '  2. On the attacker site, run the attacks. Audit-log lines print below.',
    '  Ctrl+C stops both.',
    '',
  ].join('\n') + '\n',
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(1), 5000);
  force.unref();
  lab.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
