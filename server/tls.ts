// TLS: the certificate (given, or generated once for localhost) and the server profile.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Config } from './config.ts';

/**
 * Mozilla "intermediate" server profile (ssl-config.mozilla.org, v5.7): TLS 1.2+, AEAD suites
 * with forward secrecy only (Node's default list still offers CBC suites, which graders mark
 * down). Listed strongest first, and the server's order wins (honorCipherOrder): every suite
 * here is strong, but testssl.sh rates "no server cipher order" HIGH, and a server that picks
 * does not depend on each client's preference list. 256-bit AES and ChaCha20 first; ECDSA
 * before RSA (the generated certificate is ECDSA); DHE last.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
];
/** TLS 1.3's suites, all AEAD; named so the server's order applies to them too. */
export const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'];

export type Certificate = { cert: string; key: string };

const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/**
 * No certificate was given and none can be generated: `selfsigned` (an optional dependency,
 * left out by `npm ci --omit=optional`, as in the container image) is not installed.
 * main.ts prints the message and exits.
 */
export class CertificateError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'CertificateError';
  }
}

/**
 * The certificate generator, loaded only when a certificate must be made: a deployment with
 * TLS_CERT_FILE/TLS_KEY_FILE (or a still-valid certificate in DATA_DIR) never loads it, and
 * an install without optional dependencies does not have it (docs/decisions/020-dependencies.md).
 */
async function certificateGenerator(dataDir: string): Promise<typeof import('selfsigned')> {
  try {
    return await import('selfsigned');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new CertificateError(
      `no certificate: set TLS_CERT_FILE and TLS_KEY_FILE, or install the optional dependencies (npm ci without --omit=optional) so that a self-signed one for localhost can be generated into ${dataDir}.`,
      error,
    );
  }
}

/** TLS_CERT_FILE/TLS_KEY_FILE, else a self-signed localhost certificate kept in DATA_DIR. */
export async function loadCertificate(config: Config): Promise<Certificate> {
  if (config.tlsCertFile && config.tlsKeyFile) {
    return { cert: fs.readFileSync(config.tlsCertFile, 'utf8'), key: fs.readFileSync(config.tlsKeyFile, 'utf8') };
  }
  return localCertificate(config.dataDir);
}

/**
 * The self-signed certificate in `dataDir` if it names every host and has a month left;
 * otherwise a new one (a year, for `hosts`, 127.0.0.1 and ::1), written there for next time.
 * The attack lab asks for localhost and evil.localhost, and Parley then reuses that one.
 */
export async function localCertificate(dataDir: string, hosts: readonly string[] = ['localhost']): Promise<Certificate> {
  const certFile = path.join(dataDir, 'localhost-cert.pem');
  const keyFile = path.join(dataDir, 'localhost-key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const cert = fs.readFileSync(certFile, 'utf8');
    const x509 = new crypto.X509Certificate(cert);
    // Reuse it while it has a month left; past that, make a new one rather than serve an expired one.
    if (hosts.every((host) => x509.checkHost(host)) && Date.parse(x509.validTo) - Date.now() > RENEW_BEFORE_MS) {
      return { cert, key: fs.readFileSync(keyFile, 'utf8') };
    }
  }
  const selfsigned = await certificateGenerator(dataDir);
  const now = new Date();
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  // ECDSA P-256: the cheapest handshake for a reconnect storm, accepted everywhere.
  const pems = await selfsigned.generate([{ name: 'commonName', value: hosts[0] ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...hosts.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }],
      },
    ],
  });
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { cert: pems.cert, key: pems.private };
}

export function tlsOptions(certificate: Certificate, config: Config): TlsOptions & SecureContextOptions {
  return {
    cert: certificate.cert,
    key: certificate.key,
    minVersion: 'TLSv1.2',
    ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':'),
    ecdhCurve: 'X25519:prime256v1:secp384r1',
    honorCipherOrder: true, // the list above, in its order (testssl.sh: "cipher order")
    // A TLS 1.2 client may not renegotiate: each renegotiation is a full handshake the server
    // pays for on demand (a CPU DoS lever, and testssl.sh flags it). TLS 1.3 has none.
    secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION,
    // A TCP connection that never finishes its handshake is cut after this (Node's default: 120 s).
    handshakeTimeout: config.timeouts.tlsHandshakeMs,
    ALPNProtocols: ['http/1.1'],
  };
}
