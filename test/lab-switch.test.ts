// The workshop switch (PARLEY_UNSAFE_DISABLE) never near a deployment:
//  - the address the server actually bound to is checked after listen, not the HOST string
//    (a "localhost" that resolves to 0.0.0.0 passes any string check);
//  - a disabled control is a JSON audit-log event at start, not only a console line;
//  - `npm run lab` never uses the caller's REDIS_URL / DATABASE_URL.
// (The refusals at config load, one per deployment setting, are in test/config.test.ts.)
// Run: npx node --test test/lab-switch.test.ts
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isLoopbackAddress, loadConfig } from '../server/config.ts';
import { startParley, UnsafeBindError } from '../server/parley.ts';
import { createAuditLog } from '../server/security/audit-log.ts';
import { freePort, register, startServer } from './helpers/server.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const temporary: string[] = [];
const children: ChildProcess[] = [];

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

/** Whether a TCP connection to host:port is accepted (within 2 s). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** An address of this machine that is not loopback: what "another machine" would connect to. */
function externalAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? []) if (!entry.internal && entry.family === 'IPv4') return entry.address;
  }
  return undefined;
}

type Run = { code: number | null; ready: boolean; stdout: string; stderr: string };

/** Waits for a child to exit, or for `ready` to match its output (then it is still running: code null). */
function outcome(child: ChildProcess, ready: RegExp, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const done = (code: number | null) => {
      clearTimeout(timer);
      resolve({ code, ready: ready.test(stdout + stderr), stdout, stderr });
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    const check = () => {
      if (ready.test(stdout + stderr)) done(null);
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      check();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      check();
    });
    child.on('exit', (code) => done(code));
  });
}

describe('isLoopbackAddress (what server.address() may report)', () => {
  test('127.0.0.0/8, ::1 and IPv4-mapped loopback are loopback', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
      assert.equal(isLoopbackAddress(address), true, address);
    }
  });

  test('the wildcards and interface addresses are not', () => {
    for (const address of ['0.0.0.0', '::', '::ffff:0.0.0.0', '192.0.2.2', 'fd00::2', '::ffff:10.0.0.1', '128.0.0.1', 'localhost', '']) {
      assert.equal(isLoopbackAddress(address), false, address);
    }
  });
});

describe('the lab switch is judged by the address actually bound', () => {
  test('a config whose HOST passed the string check but binds 0.0.0.0 is refused after listen, and nothing stays listening', async () => {
    const port = await freePort();
    const dataDir = tempDir('parley-bind-');
    // loadConfig accepts HOST=localhost; what "localhost" resolves to is only known at listen.
    // Here the resolution is given directly (as a misconfigured resolver would give it).
    // (Config is frozen once loaded: the test makes a copy that differs in `host` alone.)
    const config = {
      ...loadConfig({ PORT: String(port), HOST: 'localhost', DATA_DIR: dataDir, PARLEY_UNSAFE_DISABLE: 'origin,session' }, []),
      host: '0.0.0.0',
    };
    const logs: string[] = [];
    await assert.rejects(startParley(config, { log: createAuditLog((line) => logs.push(line)) }), (error: unknown) => {
      assert.ok(error instanceof UnsafeBindError, `expected UnsafeBindError, got ${String(error)}`);
      assert.match(error.message, /PARLEY_UNSAFE_DISABLE.*0\.0\.0\.0.*not a loopback address/);
      return true;
    });
    assert.equal(await accepts('127.0.0.1', port), false, 'the refused server still accepts connections');
    assert.ok(!logs.some((line) => line.includes('"server_started"')), 'a refused server must not report itself started');
  });

  test('without the switch the same bind is allowed (the check is for the lab switch only)', async () => {
    const port = await freePort();
    const config = { ...loadConfig({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: tempDir('parley-bind-') }, []), host: '0.0.0.0' };
    const parley = await startParley(config, { log: () => {} });
    try {
      assert.equal(await accepts('127.0.0.1', port), true);
    } finally {
      await parley.close();
    }
  });

  // The reported case, reproduced for real: `localhost` resolves to 0.0.0.0. /etc/hosts is
  // replaced only inside a private mount namespace (unshare), so the machine's is untouched.
  const unshareWorks = spawnSync('unshare', ['-rm', 'true']).status === 0;
  test(
    'HOST=localhost resolving to 0.0.0.0 (private /etc/hosts): `npm start` with the switch exits with one line, and no other machine can connect',
    { skip: unshareWorks ? false : 'unshare -rm (user + mount namespaces) is not available here' },
    async () => {
      const dir = tempDir('parley-hosts-');
      const hosts = path.join(dir, 'hosts');
      fs.writeFileSync(hosts, '0.0.0.0 localhost\n');
      const port = await freePort();
      const child = spawn(
        'unshare',
        ['-rm', 'sh', '-c', 'mount --bind "$1" /etc/hosts && getent hosts localhost >&2 && exec "$2" server/main.ts', 'sh', hosts, NODE],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            PORT: String(port),
            HOST: 'localhost',
            DATA_DIR: path.join(dir, 'data'),
            PARLEY_UNSAFE_DISABLE: 'origin,session',
            NODE_ENV: '',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(child);
      const run = await outcome(child, /Parley is listening/, 30_000);
      assert.match(run.stderr, /^0\.0\.0\.0\s+localhost/m, `the namespace did not resolve localhost to 0.0.0.0: ${run.stderr}`);
      if (run.code === null && run.ready) {
        // Still running: show what that means before failing.
        const external = externalAddress();
        const reachable = external ? await accepts(external, port) : 'no external interface to try';
        child.kill('SIGKILL');
        assert.fail(`Parley started with origin,session off although it is bound to every interface (reachable on ${external}: ${reachable}).\n${run.stderr}`);
      }
      assert.equal(run.code, 2, run.stderr);
      const lines = run.stderr
        .trim()
        .split('\n')
        .filter((line) => !/^0\.0\.0\.0\s+localhost/.test(line));
      assert.equal(lines.length, 1, `one line, no stack trace: ${run.stderr}`);
      assert.match(lines[0]!, /^Refusing to start: PARLEY_UNSAFE_DISABLE is on, but HOST "localhost" bound 0\.0\.0\.0:\d+, which is not a loopback address/);
    },
  );
});

describe('a disabled control is in the audit log', () => {
  test('starting with PARLEY_UNSAFE_DISABLE=origin,rate-limit writes unsafe_controls_disabled with the list', async () => {
    const server = await startServer({ env: { PARLEY_UNSAFE_DISABLE: 'origin,rate-limit' } });
    try {
      const events = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
      const event = events.find((record) => record['event'] === 'unsafe_controls_disabled');
      assert.ok(event, `no unsafe_controls_disabled event in ${JSON.stringify(events.map((e) => e['event']))}`);
      assert.equal(event['detail'], 'origin,rate-limit');
      assert.equal(event['count'], 2);
    } finally {
      await server.close();
    }
  });

  test('with every control on, no such event is written', async () => {
    const server = await startServer();
    try {
      assert.ok(!server.logs.some((line) => line.includes('unsafe_controls_disabled')));
      assert.ok(
        server.logs.some((line) => line.includes('"server_started"')),
        'the log was captured',
      );
    } finally {
      await server.close();
    }
  });
});

describe("npm run lab never uses the caller's shared backends", () => {
  test('with REDIS_URL and DATABASE_URL exported, the lab starts on its own data and never connects to either', async () => {
    // Stand-ins for the cluster's Redis and PostgreSQL: any TCP connection to them counts.
    const connections = { redis: 0, postgres: 0 };
    const tripwires = await Promise.all(
      (['redis', 'postgres'] as const).map(async (name) => {
        const server = net.createServer((socket) => {
          connections[name] += 1;
          socket.destroy();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return server;
      }),
    );
    const [redisPort, postgresPort] = tripwires.map((server) => (server.address() as net.AddressInfo).port);
    const dir = tempDir('parley-lab-env-');
    const parleyPort = await freePort();
    let attackerPort = await freePort();
    while (attackerPort === parleyPort) attackerPort = await freePort();
    const child = spawn(
      NODE,
      ['lab/main.ts', '--disable', 'origin,sanitize', '--port', String(parleyPort), '--attacker-port', String(attackerPort), '--data-dir', dir],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          REDIS_URL: `redis://:cluster-secret@127.0.0.1:${redisPort}`,
          DATABASE_URL: `postgres://parley:cluster-secret@127.0.0.1:${postgresPort}/parley`,
          TRUST_PROXY: 'loopback',
          NODE_ENV: 'production',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    try {
      const run = await outcome(child, /Ctrl\+C stops both/, 30_000);
      assert.ok(run.ready, `the lab did not start (exit ${run.code}); connections to the shared backends: ${JSON.stringify(connections)}\n${run.stderr}`);
      assert.match(run.stderr, /ignoring REDIS_URL, DATABASE_URL, TRUST_PROXY, NODE_ENV from your environment/);
      assert.doesNotMatch(run.stderr + run.stdout, /cluster-secret/, 'the URLs (and their passwords) are not echoed');
      assert.match(run.stdout, /"event":"unsafe_controls_disabled","detail":"origin,sanitize"/);
      // The lab's Parley works, on its own SQLite in its own data directory.
      const base = { parley: undefined, port: parleyPort, origin: `https://localhost:${parleyPort}`, base: `https://127.0.0.1:${parleyPort}` };
      const ca = fs.readFileSync(path.join(dir, 'localhost-cert.pem'), 'utf8');
      await register({ ...base, ca, dataDir: dir, logs: [], close: async () => {} } as never, 'lab-user');
      assert.ok(
        fs.readdirSync(dir).some((name) => name.endsWith('.db') || name.endsWith('.sqlite')),
        `no SQLite file in ${fs.readdirSync(dir)}`,
      );
      assert.deepEqual(connections, { redis: 0, postgres: 0 });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
      for (const server of tripwires) server.close();
    }
  });
});
