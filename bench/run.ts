// `npm run bench` — Parley side by side with a bare `ws` broadcast server and socket.io,
// one after another, on the same Node, the same `ws` version and the same certificate.
//
//   npm run bench               full run (< 15 min): fan-out at 200 and 500 clients, memory to 10k
//   npm run bench -- --quick    development run (< 2 min): 200 clients, 1k idle connections
//   options: --only parley,bare   --scenarios storm,fanout,memory,sanitize,hostile   (default: all)
//            --clients 200,500 (fan-out room sizes; default 200 quick, 200,500 full)
//            --all-steps (keep stepping after a step is not held: CPU per delivery at every load)
//            --cpu-prof DIR (servers write V8 CPU profiles there, one per server start)
//
// Every server runs as its own child process and is restarted for each scenario; one
// load-generator process (bench/loadgen.ts) drives them. Parley runs as in production:
// `node server/main.ts`, every control at its default, SQLite in a temporary DATA_DIR.
// Output: a table on stdout; bench/results/bench[-quick][-partial].json and fanout-latency[…].svg.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../server/config.ts';
import { HASH_PARAMS } from '../server/security/passwords.ts';
import { loadCertificate } from '../server/tls.ts';
import { KINDS, LABEL, ratesFor, sleep, type Kind } from './lib.ts';
import { renderTable, renderSvg, type Results } from './report.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    scenarios: { type: 'string', default: 'storm,fanout,memory,sanitize,hostile' },
    'all-steps': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    clients: { type: 'string' },
  },
});
const quick = values.quick;
const scenarios = new Set(values.scenarios.split(','));
const kinds = values.only ? (values.only.split(',') as Kind[]).filter((k) => KINDS.includes(k)) : [...KINDS];

// Users: every fan-out client is its own user, so each stays inside WS_MESSAGES_PER_SECOND
// (10/s, burst 30) at the top rate of 8 msg/s. Idle memory uses users × WS_MAX_CONNECTIONS_PER_USER
// (8) sockets: 10k connections from 1250 users, not 10k users — 10k argon2id hashes at the default
// cost would take minutes on 2 cores. Every user is registered and logged in over the HTTP API with
// the default hash parameters; the login phase is scenario 2.
const PROFILE = quick
  ? {
      users: 200,
      storm: { durationMs: 1500, concurrency: 32 },
      fanout: {
        clients: [200],
        rates: { 200: [0.5, 1, 2, 4, 8], 500: [0.125, 0.25, 0.5, 1, 2] } as Record<number, number[]>,
        warmupMs: 500,
        measureMs: 2000,
        drainMs: 800,
      },
      memory: { steps: [1000], socketsPerUser: 8, settleMs: 1000 },
      sanitize: { count: 20_000, syncCount: 2000 },
      hostile: { observers: 20, everyMs: 500, measureMs: 5000 },
    }
  : {
      users: 1250,
      storm: { durationMs: 5000, concurrency: 32 },
      fanout: {
        clients: [200, 500],
        rates: { 200: [0.25, 0.5, 1, 2, 4, 8], 500: [0.0625, 0.125, 0.25, 0.5, 1, 2] } as Record<number, number[]>,
        warmupMs: 1000,
        measureMs: 5000,
        drainMs: 1500,
      },
      memory: { steps: [1000, 5000, 10_000], socketsPerUser: 8, settleMs: 2000 },
      sanitize: { count: 200_000, syncCount: 5000 },
      hostile: { observers: 50, everyMs: 500, measureMs: 10_000 },
    };

if (values.clients) {
  PROFILE.fanout.clients = values.clients.split(',').map(Number);
  PROFILE.users = Math.max(PROFILE.users, ...PROFILE.fanout.clients); // one user per fan-out client
}

const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = path.join(ROOT, 'bench', 'results');
const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0)} s`;
const note = (text: string): void => void process.stderr.write(`[${elapsed()}] ${text}\n`);

// ---- environment ------------------------------------------------------------------------

// Each child raises its soft open-files limit to the hard one (sh's ulimit), so 10k sockets
// fit in one process wherever the hard limit allows; below that the big steps are skipped.
const nofile = Number(String(execFileSync('sh', ['-c', 'ulimit -Hn'])).trim()) || Infinity;
const maxConnections = Math.max(...PROFILE.memory.steps);
if (nofile < maxConnections + 1000) {
  note(
    `the hard open-files limit is ${nofile}: the memory scenario needs ${maxConnections} sockets per process; skipping larger steps (raise it: ulimit -n 65536)`,
  );
  PROFILE.memory.steps = PROFILE.memory.steps.filter((n) => n + 1000 <= nofile);
}
/** [command, args] that run `node <args>` with the soft open-files limit raised to the hard limit. */
function nodeWithFiles(args: string[]): [string, string[]] {
  return ['sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args]];
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
const port = await freePort();
const origin = `https://localhost:${port}`;
// One certificate for all three servers: Parley's own generated one (ECDSA P-256).
const certificate = await loadCertificate(loadConfig({ DATA_DIR: dataDir }, []));
const certFile = path.join(dataDir, 'localhost-cert.pem');
const keyFile = path.join(dataDir, 'localhost-key.pem');

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

// ---- servers ------------------------------------------------------------------------------

type Running = { kind: Kind; pid: number; stop: () => Promise<void> };

const ENTRY: Record<Kind, string> = {
  parley: 'server/main.ts',
  bare: 'bench/peers/bare-ws.ts',
  socketio: 'bench/peers/socketio.ts',
};

async function startServer(kind: Kind): Promise<Running> {
  const log = fs.openSync(path.join(dataDir, `${kind}.log`), 'a');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    TLS_CERT_FILE: certFile,
    TLS_KEY_FILE: keyFile,
    ...(kind === 'parley' ? { APP_ORIGIN: origin, DATA_DIR: dataDir } : {}),
  };
  const profile = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['cpu-prof'])] : [];
  const [command, args] = nodeWithFiles([...profile, ENTRY[kind]]);
  const child: ChildProcess = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', log, log] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = performance.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} exited at start; see ${path.join(dataDir, `${kind}.log`)}`);
    if (await tlsReady()) break;
    if (performance.now() > deadline) throw new Error(`${kind} did not start`);
    await sleep(100);
  }
  return {
    kind,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
      await exited;
      clearTimeout(timer);
      fs.closeSync(log);
      await sleep(300);
    },
  };
}

function tlsReady(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: certificate.cert, servername: 'localhost' });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// ---- load generator -------------------------------------------------------------------------

const loadgen = spawn(...nodeWithFiles([path.join(ROOT, 'bench', 'loadgen.ts')]), { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
let nextId = 0;
const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
loadgen.on('message', (message: { id?: number; result?: unknown; error?: string; progress?: string }) => {
  if (message.progress) return note(message.progress);
  const waiter = pending.get(message.id!);
  if (!waiter) return;
  pending.delete(message.id!);
  if (message.error) waiter.reject(new Error(message.error));
  else waiter.resolve(message.result);
});
loadgen.on('exit', (code) => {
  for (const waiter of pending.values()) waiter.reject(new Error(`load generator exited (${code})`));
});

function command<T>(cmd: string, server: Running, extra: Record<string, unknown>): Promise<T> {
  const id = nextId++;
  const target = { kind: server.kind, port, pid: server.pid, ca: certificate.cert, origin };
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    loadgen.send({ id, cmd, target, ...extra });
  });
}

async function withServer<T>(kind: Kind, run: (server: Running) => Promise<T>): Promise<T | { error: string }> {
  const server = await startServer(kind);
  try {
    return await run(server);
  } catch (error) {
    note(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
    return { error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await server.stop();
  }
}

// ---- run -------------------------------------------------------------------------------------

const results: Results = {
  date: new Date().toISOString(),
  quick,
  node: process.version,
  ws: JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/ws/package.json'), 'utf8')).version,
  socketio: JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/socket.io/package.json'), 'utf8')).version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? '',
  profile: PROFILE,
  hashParams: HASH_PARAMS,
  login: undefined,
  storm: {},
  fanout: {},
  memory: {},
  sanitize: undefined,
  hostile: undefined,
};

try {
  if (kinds.includes('parley')) {
    note(`Parley: registering and logging in ${PROFILE.users} users (argon2id m=${HASH_PARAMS.memory} KiB t=${HASH_PARAMS.passes}; default limits)`);
    results.login = (await withServer('parley', (server) => command('setup', server, { users: PROFILE.users, concurrency: 16 }))) as never;
    note(`  login: ${JSON.stringify(results.login)}`);
  }

  for (const kind of scenarios.has('storm') ? kinds : []) {
    note(`reconnect storm: ${LABEL[kind]}`);
    results.storm[kind] = (await withServer(kind, (server) => command('storm', server, { ...PROFILE.storm, users: PROFILE.users }))) as never;
    note(`  ${JSON.stringify(results.storm[kind])}`);
  }

  for (const clients of scenarios.has('fanout') ? PROFILE.fanout.clients : []) {
    for (const kind of kinds) {
      note(`fan-out: ${LABEL[kind]}, ${clients} clients`);
      const { warmupMs, measureMs, drainMs } = PROFILE.fanout;
      const rates = ratesFor(PROFILE.fanout, clients);
      (results.fanout[kind] ??= {})[clients] = (await withServer(kind, (server) =>
        command('fanout', server, { clients, rates, warmupMs, measureMs, drainMs, allSteps: values['all-steps'] }),
      )) as never;
    }
  }

  for (const kind of scenarios.has('memory') ? kinds : []) {
    note(`idle memory: ${LABEL[kind]}`);
    results.memory[kind] = (await withServer(kind, (server) => command('memory', server, PROFILE.memory))) as never;
  }

  if (scenarios.has('hostile') && kinds.includes('parley')) {
    // Parley only: neither peer has a sanitizer, so there is nothing to compare.
    note(`hostile sender: ${PROFILE.hostile.observers} observers, one account sending the costliest messages at its full allowed rate`);
    const limits = loadConfig({}, []).ws;
    results.hostile = (await withServer('parley', (server) =>
      command('hostile', server, { ...PROFILE.hostile, burst: limits.messageBurst, ratePerSec: limits.messagesPerSecond }),
    )) as never;
  }

  if (scenarios.has('sanitize')) {
    note(`sanitizer: ${PROFILE.sanitize.count} HTML and plain-text messages (bench/sanitize-heap.ts)`);
    results.sanitize = await runSanitize(PROFILE.sanitize.count, PROFILE.sanitize.syncCount);
  }
} finally {
  loadgen.send({ id: -1, cmd: 'exit' });
  fs.rmSync(dataDir, { recursive: true, force: true });
}

async function runSanitize(count: number, syncCount: number): Promise<Results['sanitize']> {
  const file = path.join(RESULTS, 'sanitize.json');
  // A quick run must not replace the committed 200k-message result.
  const previous = quick && fs.existsSync(file) ? fs.readFileSync(file) : undefined;
  const child = spawn(process.execPath, ['--expose-gc', 'bench/sanitize-heap.ts', '--count', String(count), '--sync-count', String(syncCount)], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) return undefined;
  const result = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (previous) fs.writeFileSync(file, previous);
  return result;
}

results.seconds = (performance.now() - started) / 1000;
fs.mkdirSync(RESULTS, { recursive: true });
// A run restricted with --only/--scenarios/--all-steps does not replace a complete run's files.
const partial = Boolean(values.only) || Boolean(values.clients) || scenarios.size < 5 || values['all-steps'];
const suffix = `${quick ? '-quick' : ''}${partial ? '-partial' : ''}`;
fs.writeFileSync(path.join(RESULTS, `bench${suffix}.json`), `${JSON.stringify(results, null, 2)}\n`);
fs.writeFileSync(path.join(RESULTS, `fanout-latency${suffix}.svg`), renderSvg(results));
console.log(renderTable(results));
console.log(`\nbench/results/bench${suffix}.json, bench/results/fanout-latency${suffix}.svg — ${results.seconds.toFixed(0)} s`);
