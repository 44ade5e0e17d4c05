// requires: mkcert
// npm run cert (scripts/cert.ts): with mkcert it writes a certificate that Parley and the lab
// then serve without any other step, for exactly the names they serve, which a client
// trusting only mkcert's CA verifies (and one that does not trust it refuses); without mkcert
// it exits non-zero with the install command for each system. Key material is never printed.
// mkcert runs with a temporary CAROOT and HOME and TRUST_STORES=none (mkcert's switch: install
// into the named stores only, and "none" names none), so this machine's trust stores are not
// touched; the test checks that too.
// Run: npx node --test test/cert.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startLab } from '../lab/lab.ts';
import { freePort, open, signUp } from './helpers/server.ts';
import { spawnParley } from './helpers/services.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const SCRIPT = path.join(ROOT, 'scripts', 'cert.ts');
const NAMES = 'DNS:localhost, DNS:evil.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1';
/** Where Debian's update-ca-certificates (mkcert's "system" store here) takes extra CAs from. */
const SYSTEM_CAS = '/usr/local/share/ca-certificates';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cert-test-'));
const caroot = path.join(tmp, 'ca');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `npm run cert` as a user runs it (node scripts/cert.ts), in `cwd`, with mkcert confined to the temporary CA. */
function runCert(args: string[], options: { cwd: string; env?: Record<string, string> }) {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: path.join(tmp, 'home'),
    CAROOT: caroot,
    TRUST_STORES: 'none',
    ...options.env,
  };
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: options.cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, out: result.stdout + result.stderr };
}

/** A TLS handshake to 127.0.0.1:port for `servername`; the peer certificate's fingerprint, or the error code. */
function handshake(port: number, servername: string, ca: string | undefined): Promise<{ fingerprint: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ...(ca ? { ca } : {}) }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve({ fingerprint });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

describe('npm run cert with mkcert', () => {
  const project = path.join(tmp, 'project');
  const parleyDir = path.join(project, 'data');
  const labDir = path.join(project, 'data', 'lab');
  let run: ReturnType<typeof runCert>;
  let systemBefore: string[];
  let root: crypto.X509Certificate;
  let leaf: crypto.X509Certificate;

  before(() => {
    fs.mkdirSync(project, { recursive: true });
    systemBefore = listing(SYSTEM_CAS);
    // No arguments, no DATA_DIR: the defaults `npm start` and `npm run lab` use.
    run = runCert([], { cwd: project });
    assert.equal(run.status, 0, run.out);
    root = new crypto.X509Certificate(fs.readFileSync(path.join(caroot, 'rootCA.pem')));
    leaf = new crypto.X509Certificate(fs.readFileSync(path.join(parleyDir, 'localhost-cert.pem')));
  });

  test("one certificate, signed by mkcert's CA, for exactly the names Parley and the lab serve, in both data directories", () => {
    assert.equal(leaf.subjectAltName, NAMES);
    assert.ok(leaf.verify(root.publicKey), 'signed by the CA in CAROOT');
    assert.equal(leaf.ca, false);
    assert.ok(Date.parse(leaf.validTo) - Date.now() > 60 * 24 * 3600 * 1000, 'long enough that server/tls.ts keeps it (it renews a month before expiry)');
    for (const file of ['localhost-cert.pem', 'localhost-key.pem']) {
      assert.deepEqual(fs.readFileSync(path.join(labDir, file)), fs.readFileSync(path.join(parleyDir, file)), `${file}: the lab's is the same`);
    }
    // The chain file ends with the root, so a client pinning the file (the lab's own) verifies it.
    assert.ok(fs.readFileSync(path.join(parleyDir, 'localhost-cert.pem'), 'utf8').endsWith(fs.readFileSync(path.join(caroot, 'rootCA.pem'), 'utf8')));
  });

  test('the key is readable by its owner only and never printed; what will happen is said before it happens', () => {
    for (const dir of [parleyDir, labDir]) {
      assert.equal(fs.statSync(path.join(dir, 'localhost-key.pem')).mode & 0o777, 0o600, dir);
      assert.equal(fs.statSync(dir).mode & 0o077, 0, `${dir} is private`);
    }
    const key = fs.readFileSync(path.join(parleyDir, 'localhost-key.pem'), 'utf8');
    const body = key.split('\n').filter((line) => line && !line.startsWith('-----'));
    assert.ok(body.length > 0);
    assert.ok(!run.out.includes('PRIVATE KEY'), run.out);
    for (const line of body) assert.ok(!run.out.includes(line.slice(0, 24)), 'no part of the key in the output');
    assert.ok(!run.out.includes(fs.readFileSync(path.join(caroot, 'rootCA-key.pem'), 'utf8').split('\n')[1]!.slice(0, 24)), "no part of the CA's key");
    assert.match(run.stdout, /mkcert -install/);
    assert.match(run.stdout, /mkcert -uninstall/);
    assert.ok(run.stdout.includes(path.join(parleyDir, 'localhost-cert.pem')) && run.stdout.includes(path.join(labDir, 'localhost-cert.pem')), run.stdout);
    assert.ok(run.stdout.indexOf('will:') < run.stdout.indexOf('Done.'));
    assert.ok(
      fs.readdirSync(os.tmpdir()).every((name) => !name.startsWith('parley-cert-') || name === path.basename(tmp)),
      'no temporary key copy left behind',
    );
  });

  test("this machine's trust store was not touched (TRUST_STORES=none)", () => {
    assert.deepEqual(listing(SYSTEM_CAS), systemBefore);
  });

  test('Parley serves it with no other step: a client trusting only the mkcert CA verifies it, one without that CA refuses it', async () => {
    const parley = await spawnParley({ dataDir: parleyDir });
    try {
      const trusted = await handshake(parley.port, 'localhost', root.toString());
      assert.deepEqual(trusted, { fingerprint: leaf.fingerprint256 }, 'the mkcert certificate, chain verified for localhost');
      assert.deepEqual(
        await handshake(parley.port, 'localhost', undefined),
        { error: 'SELF_SIGNED_CERT_IN_CHAIN' },
        "Node's own CA list does not know mkcert's CA",
      );
      assert.deepEqual(
        await handshake(parley.port, 'parley.example', root.toString()),
        { error: 'ERR_TLS_CERT_ALTNAME_INVALID' },
        'only the names it was made for',
      );
      // Everything that pins the certificate file (the test helpers do) still works, WSS included.
      const cookie = await signUp(parley, 'alice');
      const client = await open(parley, cookie);
      client.ws.close();
      assert.deepEqual(
        fs.readFileSync(path.join(parleyDir, 'localhost-cert.pem')),
        fs.readFileSync(path.join(labDir, 'localhost-cert.pem')),
        'Parley kept it rather than generating its own',
      );
    } finally {
      await parley.close();
    }
  });

  test("the lab serves it on all three addresses, and the lab's own clients verify it", async () => {
    const parleyPort = await freePort();
    let attackerPort = await freePort();
    while (attackerPort === parleyPort) attackerPort = await freePort();
    const messages: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (messages.push(String(chunk)), true)) as typeof process.stderr.write;
    let lab;
    try {
      lab = await startLab({ dataDir: labDir, parleyPort, attackerPort, env: {} });
    } finally {
      process.stderr.write = write;
    }
    try {
      assert.equal(lab.certificate.cert, fs.readFileSync(path.join(labDir, 'localhost-cert.pem'), 'utf8'), 'the lab took the file as it is');
      for (const [port, host] of [
        [parleyPort, 'localhost'],
        [attackerPort, 'localhost'],
        [attackerPort, 'evil.localhost'],
      ] as const) {
        assert.deepEqual(await handshake(port, host, root.toString()), { fingerprint: leaf.fingerprint256 }, `https://${host}:${port}`);
      }
      // The lab signs its victim up through its own HTTPS client at start; it says so when that fails.
      assert.ok(!messages.join('').includes('could not prepare'), messages.join(''));
    } finally {
      await lab.close();
    }
  });
});

describe('npm run cert without mkcert', () => {
  test('exits 1, names the install command for each system, writes nothing', () => {
    const cwd = path.join(tmp, 'no-mkcert');
    fs.mkdirSync(cwd);
    const emptyPath = path.join(tmp, 'empty-bin');
    fs.mkdirSync(emptyPath);
    const run = runCert([], { cwd, env: { PATH: emptyPath } });
    assert.equal(run.status, 1, run.out);
    assert.match(run.stderr, /^npm run cert: mkcert is not installed\./);
    for (const command of [
      'apt install mkcert libnss3-tools',
      'dnf install mkcert nss-tools',
      'brew install mkcert nss',
      'choco install mkcert',
      'scoop install mkcert',
    ]) {
      assert.ok(run.stderr.includes(command), `${command}\n${run.stderr}`);
    }
    assert.deepEqual(fs.readdirSync(cwd), [], 'no data directory, no file');
  });
});
