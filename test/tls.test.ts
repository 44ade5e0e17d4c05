// tier: unit
// Tests for server/tls.ts: the Mozilla "intermediate" profile (TLS 1.2+ with AEAD suites
// only), the generated localhost certificate, and a given certificate. Every check is a
// real handshake with node:tls against the running server. Run: npx node --test test/tls.test.ts
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import selfsigned from 'selfsigned';
import { startServer, type TestServer } from './helpers/server.ts';

type Handshake = { ok: true; protocol: string | null; cipher: string; peer: tls.PeerCertificate } | { ok: false; code: string; message: string };

/** One TLS handshake to 127.0.0.1:port with SNI "localhost"; resolves how it ended. */
function handshake(port: number, ca: string, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options }, () => {
      resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().name, peer: socket.getPeerCertificate() });
      socket.destroy();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, code: error.code ?? 'unknown', message: error.message }));
  });
}

/** SHA-256 fingerprint of a PEM certificate, in the format of PeerCertificate.fingerprint256. */
function fingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

const CBC_ONLY: tls.ConnectionOptions = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256:AES128-SHA' };
const LEGACY_TLS: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };

// Mozilla server-side TLS "intermediate" profile: TLS 1.2 (AEAD + forward secrecy) and TLS 1.3 only
describe('TLS protocol versions and cipher suites', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a TLS 1.3 client completes the handshake', async () => {
    const result = await handshake(server.port, server.ca, { minVersion: 'TLSv1.3' });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.protocol, 'TLSv1.3');
  });

  test('a TLS 1.2 client offering ECDHE-ECDSA-AES128-GCM-SHA256 (AEAD) completes the handshake', async () => {
    const result = await handshake(server.port, server.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.protocol, 'TLSv1.2');
    assert.equal(result.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  });

  test('a TLS 1.2 client with a default cipher list is given an AEAD suite with forward secrecy', async () => {
    const result = await handshake(server.port, server.ca, { maxVersion: 'TLSv1.2' });
    assert.ok(result.ok, JSON.stringify(result));
    assert.match(result.cipher, /^ECDHE-.*(GCM|CHACHA20-POLY1305)/);
  });

  test('a TLS 1.2 client offering only CBC suites fails the handshake', async () => {
    const result = await handshake(server.port, server.ca, CBC_ONLY);
    assert.equal(result.ok, false, `handshake unexpectedly succeeded: ${JSON.stringify(result)}`);
  });

  test('a TLS 1.0/1.1 client fails the handshake', async () => {
    const result = await handshake(server.port, server.ca, LEGACY_TLS);
    assert.equal(result.ok, false, `handshake unexpectedly succeeded: ${JSON.stringify(result)}`);
  });

  // Control: the same client settings DO connect to a permissive server with the same
  // certificate, so the refusals above come from Parley's profile, not from this OpenSSL build.
  test('control: the CBC-only and TLS 1.1 clients do connect to a permissive server', async () => {
    const permissive = tls.createServer({ cert: server.ca, key: server.parley.certificate.key, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) =>
      s.end(),
    );
    await new Promise<void>((resolve) => permissive.listen(0, '127.0.0.1', resolve));
    try {
      const port = (permissive.address() as net.AddressInfo).port;
      const cbc = await handshake(port, server.ca, CBC_ONLY);
      assert.ok(cbc.ok, JSON.stringify(cbc));
      const legacy = await handshake(port, server.ca, LEGACY_TLS);
      assert.ok(legacy.ok, JSON.stringify(legacy));
      assert.match(String(legacy.protocol), /^TLSv1(\.1)?$/);
    } finally {
      await new Promise<void>((resolve) => permissive.close(() => resolve()));
    }
  });

  // testssl.sh: "cipher order" — the server picks, strongest first, whatever the client prefers.
  test('the server chooses the suite: a client preferring AES-128 gets AES-256 (TLS 1.2 and 1.3)', async () => {
    const tls12 = await handshake(server.port, server.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' });
    assert.ok(tls12.ok, JSON.stringify(tls12));
    assert.equal(tls12.cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
    const tls13 = await handshake(server.port, server.ca, {
      minVersion: 'TLSv1.3',
      ciphersuites: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
    } as tls.ConnectionOptions);
    assert.ok(tls13.ok, JSON.stringify(tls13));
    assert.equal(tls13.cipher, 'TLS_AES_256_GCM_SHA384');
  });

  // A renegotiation is a full handshake the server performs on the client's demand.
  test('a TLS 1.2 client cannot renegotiate (and can against a server that allows it)', async () => {
    const renegotiate = (port: number) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: server.ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
          socket.renegotiate({}, (error) => {
            resolve(error ? 'refused' : 'renegotiated');
            socket.destroy();
          });
        });
        socket.on('error', () => resolve('refused'));
        socket.on('close', () => resolve('refused'));
        socket.setTimeout(5000, () => socket.destroy());
      });
    assert.equal(await renegotiate(server.port), 'refused');
    const permissive = tls.createServer({ cert: server.ca, key: server.parley.certificate.key, minVersion: 'TLSv1.2' }, (s) => s.resume());
    await new Promise<void>((resolve) => permissive.listen(0, '127.0.0.1', resolve));
    try {
      assert.equal(await renegotiate((permissive.address() as net.AddressInfo).port), 'renegotiated', 'control: Node allows it by default');
    } finally {
      await new Promise<void>((resolve) => permissive.close(() => resolve()));
    }
  });

  test('plain HTTP on the TLS port gets no HTTP response (the server speaks only TLS)', async () => {
    const received = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(server.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => {}); // a reset is an acceptable end
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      setTimeout(() => {
        socket.destroy();
        reject(new Error('the server kept a plain-HTTP connection open for 5 s'));
      }, 5000).unref();
    });
    assert.ok(!received.toString('latin1').includes('HTTP/'), `got an HTTP response over plain TCP: ${received.toString('latin1').slice(0, 80)}`);
  });
});

// Generated certificate: self-signed for localhost only, private key readable by the owner only
describe('the generated localhost certificate', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-tls-'));
  let server: TestServer;
  let servedFingerprint: string;
  before(async () => {
    server = await startServer({ dataDir });
    const result = await handshake(server.port, server.ca);
    assert.ok(result.ok, JSON.stringify(result));
    servedFingerprint = result.peer.fingerprint256;
  });
  after(async () => {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the certificate is self-signed (issuer = subject, signed by its own key)', () => {
    const cert = new crypto.X509Certificate(server.ca);
    assert.equal(cert.issuer, cert.subject);
    assert.ok(cert.verify(cert.publicKey), 'the certificate must verify with its own public key');
    assert.equal(cert.ca, false, 'a leaf certificate, not a CA that could sign others');
  });

  test('its SANs are exactly localhost, 127.0.0.1 and ::1', () => {
    const san = new crypto.X509Certificate(server.ca).subjectAltName ?? '';
    const names = san
      .split(',')
      .map((s) => s.trim())
      .sort();
    assert.deepEqual(names, ['DNS:localhost', 'IP Address:0:0:0:0:0:0:0:1', 'IP Address:127.0.0.1'].sort());
  });

  test('the served certificate is the one written to DATA_DIR', () => {
    const certPem = fs.readFileSync(path.join(dataDir, 'localhost-cert.pem'), 'utf8');
    assert.equal(fingerprint(certPem), servedFingerprint);
  });

  test('the private key file in DATA_DIR has mode 0600', () => {
    const mode = fs.statSync(path.join(dataDir, 'localhost-key.pem')).mode & 0o777;
    assert.equal(mode.toString(8), '600');
  });

  test('the private key file matches the served certificate', () => {
    const key = crypto.createPrivateKey(fs.readFileSync(path.join(dataDir, 'localhost-key.pem'), 'utf8'));
    const cert = new crypto.X509Certificate(server.ca);
    assert.ok(cert.checkPrivateKey(key));
  });

  test('a restart with the same DATA_DIR serves the same certificate (same fingerprint)', async () => {
    await server.close();
    server = await startServer({ dataDir });
    const result = await handshake(server.port, server.ca);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.peer.fingerprint256, servedFingerprint);
  });
});

// Operator-supplied certificate: TLS_CERT_FILE / TLS_KEY_FILE are served as given
describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-given-cert-'));
  let server: TestServer;
  let given: string;
  before(async () => {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 7, ip: '127.0.0.1' },
            { type: 2, value: 'localhost' },
          ],
        },
      ],
    });
    given = pems.cert;
    fs.writeFileSync(path.join(certDir, 'cert.pem'), pems.cert);
    fs.writeFileSync(path.join(certDir, 'key.pem'), pems.private, { mode: 0o600 });
    server = await startServer({ env: { TLS_CERT_FILE: path.join(certDir, 'cert.pem'), TLS_KEY_FILE: path.join(certDir, 'key.pem') } });
  });
  after(async () => {
    await server.close();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  test('the given certificate is the one served', async () => {
    const result = await handshake(server.port, given);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.peer.fingerprint256, fingerprint(given));
  });

  test('no localhost certificate is generated into DATA_DIR when one is given', () => {
    assert.equal(fs.existsSync(path.join(server.dataDir, 'localhost-cert.pem')), false);
    assert.equal(fs.existsSync(path.join(server.dataDir, 'localhost-key.pem')), false);
  });

  test('the intermediate profile still applies with a given certificate (CBC-only TLS 1.2 fails)', async () => {
    const result = await handshake(server.port, given, CBC_ONLY);
    assert.equal(result.ok, false, `handshake unexpectedly succeeded: ${JSON.stringify(result)}`);
  });
});
