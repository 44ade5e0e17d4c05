// Real services for the persistence and scale-out tests: redis-server and PostgreSQL from
// the Debian packages (scripts/ensure-system-deps.sh), and Parley itself as a child
// process, each on a free loopback port with its own temporary directory, stopped after.
// PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
import { freePort } from './server.ts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestServer } from './server.ts';
import { postgresBin } from './system-tools.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The Node running this test (npm test's, or PARLEY_TEST_NODE's): the system node may be older. */
const NODE = process.execPath;

export { freePort };

/** Polls `ready` (a rejection = not yet) until it says true; `fatal` ends the wait at once. */
async function waitFor(what: string, timeoutMs: number, ready: () => Promise<boolean>, fatal: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = fatal();
    if (failure) throw new Error(`${what}: ${failure}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

// ---- Redis -----------------------------------------------------------------------

export type RedisService = { url: string; port: number; dir: string; stop: () => Promise<void> };

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

/**
 * A throwaway redis-server on loopback. By default nothing is persisted. `persist` keeps an
 * append-only file (fsync on every write) in `dir`, so a restart on the same `port` and
 * `dir` comes back with the same data, as a production Redis with AOF would.
 */
export async function startRedis(options: { port?: number; dir?: string; persist?: boolean } = {}): Promise<RedisService> {
  const chosen = options.port ?? (await freePort());
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-redis-'));
  const persistence = options.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await waitFor(
      'redis-server',
      10_000,
      () => redisPing(chosen),
      () => (child.exitCode !== null ? `exited: ${stderr}` : undefined),
    );
  } catch (error) {
    child.kill('SIGKILL');
    if (!options.dir) fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    dir,
    /** Abrupt, as an outage is: SIGKILL. Keeps `dir` when it was given or persisted. */
    stop: async () => {
      child.kill('SIGKILL');
      await exited(child);
      if (!options.dir && !options.persist) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- PostgreSQL ------------------------------------------------------------------

export type PostgresService = {
  url: string;
  port: number;
  /** Fast shutdown (clients are disconnected); the data directory stays. */
  stop: () => Promise<void>;
  /** Start again on the same port and data directory. */
  start: () => Promise<void>;
  /** Stop and remove everything. */
  destroy: () => Promise<void>;
};

function pgBin(name: 'initdb' | 'postgres'): string {
  const file = postgresBin(name);
  if (!file) throw new Error(`PostgreSQL's ${name} not found under /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)`);
  return file;
}

const asRoot = process.getuid?.() === 0;

/** As root, run as the `postgres` system user (PostgreSQL refuses root). */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

export async function startPostgres(): Promise<PostgresService> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    fs.chownSync(dir, uid, gid);
  }
  const [initCmd, initArgs] = asPostgres(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--no-locale']);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = '';

  const start = async () => {
    const [cmd, args] = asPostgres(pgBin('postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      // A test database: speed over durability (PostgreSQL's durability is not under test here).
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'synchronous_commit=off',
    ]);
    const started = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    started.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child = started;
    await waitFor(
      'postgres',
      30_000,
      async () => {
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
        try {
          await client.connect();
          await client.query('SELECT 1');
          return true;
        } finally {
          await client.end().catch(() => {});
        }
      },
      () => (started.exitCode !== null ? `exited: ${log}` : undefined),
    );
  };

  const stop = async () => {
    if (!child) return;
    // Signal the postmaster itself (runuser's child), by the pid it wrote: SIGINT = fast shutdown.
    const pidFile = path.join(data, 'postmaster.pid');
    const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : undefined;
    if (pid) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    } else {
      child.kill('SIGINT');
    }
    await exited(child);
    child = undefined;
  };

  try {
    await start();
  } catch (error) {
    await stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    stop,
    start,
    destroy: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh, empty database on `postgres`, so test runs do not see each other's rows; resolves its URL. */
export async function freshDatabase(postgres: PostgresService, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return postgres.url.replace(/\/postgres$/, `/${name}`);
}

// ---- Parley as a child process ---------------------------------------------------

export type ParleyProcess = TestServer & {
  child: ChildProcess;
  /** Everything the process wrote (audit log on stdout, start-up and errors on stderr). */
  output: () => string;
  kill: (signal: NodeJS.Signals) => Promise<void>;
};

/**
 * `node server/main.ts` with the given environment, as an operator would run it. Resolves
 * once it listens. `port` and `dataDir` are chosen unless given (a restart passes both).
 */
export async function spawnParley(options: { env?: Record<string, string>; port?: number; dataDir?: string } = {}): Promise<ParleyProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-proc-'));
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    PORT: String(port),
    HOST: '127.0.0.1',
    APP_ORIGIN: `https://localhost:${port}`,
    DATA_DIR: dataDir,
    ...options.env,
  };
  const child = spawn(NODE, ['server/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(
      `parley on port ${port}`,
      30_000,
      async () => output.includes('Parley is listening'),
      () => (child.exitCode !== null || child.signalCode !== null ? `exited (${child.exitCode ?? child.signalCode}):\n${output}` : undefined),
    );
  } catch (error) {
    child.kill('SIGKILL');
    await exited(child);
    if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
  return {
    child,
    output: () => output,
    kill,
    // The TestServer shape, so the request/connect helpers of ./server.ts work unchanged.
    parley: undefined as never,
    port,
    origin: `https://localhost:${port}`,
    base: `https://127.0.0.1:${port}`,
    ca: fs.readFileSync(path.join(dataDir, 'localhost-cert.pem'), 'utf8'),
    dataDir,
    logs: [],
    close: async () => {
      await kill('SIGTERM');
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
