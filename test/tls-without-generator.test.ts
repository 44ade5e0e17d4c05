// The certificate generator (`selfsigned`, an optional dependency) is loaded only when a
// certificate must be generated (server/tls.ts). An install without optional dependencies
// (`npm ci --omit=optional`, as in the container image) does not have it: Parley must still
// start with TLS_CERT_FILE/TLS_KEY_FILE or with a valid certificate already in DATA_DIR, and
// with neither it must say what to do in one line — not crash with a stack trace.
//
// How the package is made absent for real: a copy of server/ and shared/ next to a
// node_modules whose entries are links to this checkout's, all but selfsigned. Node resolves
// `selfsigned` from the copy and finds nothing, exactly as after `npm ci --omit=optional`.
// A control run with the link back in proves the copy is otherwise complete.
// Run: npx node --test test/tls-without-generator.test.ts
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { localCertificate } from '../server/tls.ts';
import { freePort } from './helpers/server.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

type Run = { code: number | null; output: string; port: number; child: ChildProcess; listening: boolean };

/** `node server/main.ts` in `app`; resolves once it listens or exits (30 s at most: a loaded machine). */
async function start(app: string, env: Record<string, string>): Promise<Run> {
  const port = await freePort();
  const child = spawn(process.execPath, ['server/main.ts'], {
    cwd: app,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: String(port), APP_ORIGIN: `https://localhost:${port}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (output.includes('Parley is listening')) return { code: null, output, port, child, listening: true };
    if (child.exitCode !== null || child.signalCode !== null) return { code: await exited, output, port, child, listening: false };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  await exited;
  throw new Error(`neither listened nor exited within 30 s:\n${output}`);
}

async function stop(run: Run): Promise<void> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  const exited = new Promise((resolve) => run.child.once('exit', resolve));
  run.child.kill('SIGTERM');
  await exited;
}

/** SHA-256 fingerprint of the certificate served on `port` (trusting `ca`). */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

describe('starting without the certificate generator installed', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-nogen-'));
  const app = path.join(tmp, 'app');
  const modules = path.join(app, 'node_modules');
  const generator = path.join(modules, 'selfsigned');
  const runs: Run[] = [];

  before(async () => {
    fs.mkdirSync(modules, { recursive: true });
    for (const dir of ['server', 'shared']) fs.cpSync(path.join(ROOT, dir), path.join(app, dir), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
    for (const entry of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (entry === 'selfsigned' || entry.startsWith('.')) continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
    }
    // Certificates made with this checkout's generator, before the copy is started without it.
    await localCertificate(path.join(tmp, 'given'));
    await localCertificate(path.join(tmp, 'cached'));
  });
  after(async () => {
    await Promise.all(runs.map(stop));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the generator really is absent from the copy', () => {
    assert.equal(fs.existsSync(generator), false);
    assert.ok(fs.existsSync(path.join(modules, 'express')), 'the other dependencies are there');
  });

  test('TLS_CERT_FILE/TLS_KEY_FILE: Parley starts and serves the given certificate', async () => {
    const cert = path.join(tmp, 'given', 'localhost-cert.pem');
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'));
    const run = await start(app, { DATA_DIR: dataDir, TLS_CERT_FILE: cert, TLS_KEY_FILE: path.join(tmp, 'given', 'localhost-key.pem') });
    runs.push(run);
    assert.ok(run.listening, run.output);
    const pem = fs.readFileSync(cert, 'utf8');
    assert.equal(await servedFingerprint(run.port, pem), new crypto.X509Certificate(pem).fingerprint256);
    assert.equal(fs.existsSync(path.join(dataDir, 'localhost-cert.pem')), false, 'nothing generated');
  });

  test('a valid certificate already in DATA_DIR: Parley starts and reuses it', async () => {
    const run = await start(app, { DATA_DIR: path.join(tmp, 'cached') });
    runs.push(run);
    assert.ok(run.listening, run.output);
    const pem = fs.readFileSync(path.join(tmp, 'cached', 'localhost-cert.pem'), 'utf8');
    assert.equal(await servedFingerprint(run.port, pem), new crypto.X509Certificate(pem).fingerprint256);
  });

  test('neither: Parley exits 1 with one line saying what to set, no stack trace', async () => {
    const run = await start(app, { DATA_DIR: fs.mkdtempSync(path.join(tmp, 'data-')) });
    runs.push(run);
    assert.equal(run.listening, false, run.output);
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /^Cannot start: no certificate: set TLS_CERT_FILE and TLS_KEY_FILE, or install the optional dependencies/m);
    assert.doesNotMatch(run.output, /^\s+at /m, 'no stack trace');
  });

  test('control: with the generator linked back in, the same copy generates a certificate and starts', async () => {
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'selfsigned'), generator);
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'));
    const run = await start(app, { DATA_DIR: dataDir });
    runs.push(run);
    assert.ok(run.listening, run.output);
    assert.ok(fs.existsSync(path.join(dataDir, 'localhost-cert.pem')));
  });
});
