// `npm run cert [-- --data-dir DIR …]`: a locally trusted certificate, so the first visit (and
// each of the lab's three addresses) opens without "Your connection is not private". Opt-in:
// running it is the consent. With mkcert (https://github.com/FiloSottile/mkcert) it
//   1. adds mkcert's own certificate authority to this machine's trust stores (`mkcert -install`:
//      the system store, and NSS for Firefox and Chromium on Linux when certutil is installed);
//   2. signs one certificate for exactly the names Parley and the lab serve, and writes it as
//      localhost-cert.pem / localhost-key.pem into Parley's DATA_DIR (default ./data) and the
//      lab's data/lab, where both already look (server/tls.ts reuses a certificate there that
//      names their hosts): nothing to configure, restart and reload.
// Without mkcert it says how to install it and exits 1. It never prints key material.
// Why mkcert, and why the files go where they go: docs/decisions/022-trusted-local-certificate.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

/** Every name Parley (https://localhost:8443) and the lab (+ https://localhost:9443, https://evil.localhost:9443) serve. */
const CERT_NAMES = ['localhost', 'evil.localhost', '127.0.0.1', '::1'] as const;

/** The lab's data directory when `npm run lab` is given no --data-dir (lab/main.ts). */
const LAB_DATA_DIR = 'data/lab';

const INSTALL = [
  'Debian/Ubuntu:  sudo apt install mkcert libnss3-tools',
  'Fedora:         sudo dnf install mkcert nss-tools',
  'macOS:          brew install mkcert nss',
  'Windows:        choco install mkcert   (or: scoop bucket add extras; scoop install mkcert)',
];

const usage = 'Usage: npm run cert [-- --data-dir DIR …]   (default: DATA_DIR or ./data, and data/lab)';

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({ options: { 'data-dir': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } }, strict: true }));
} catch (error) {
  fail(`${error instanceof Error ? error.message : String(error)}\n${usage}`, 2);
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const dirs = [...new Set((values['data-dir'] ?? [process.env['DATA_DIR'] || './data', LAB_DATA_DIR]).map((dir) => path.resolve(dir)))];

/** Runs mkcert; `undefined` when it is not installed. Output is captured unless `show`. */
function mkcert(args: string[], show = false) {
  const result = spawnSync('mkcert', args, { stdio: show ? 'inherit' : 'pipe', encoding: 'utf8' });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
  return result;
}

const caroot = mkcert(['-CAROOT']);
if (!caroot) {
  fail(
    [
      'npm run cert: mkcert is not installed. Install it, then run npm run cert again:',
      ...INSTALL.map((line) => `  ${line}`),
      'Or skip it: the browser warns once per address; README.md, "Trusted certificate (optional)", has the click-through.',
    ].join('\n'),
  );
}
if (caroot.status !== 0) fail(`npm run cert: mkcert -CAROOT failed:\n${caroot.stderr}`);
const caDir = caroot.stdout.trim();

const given = ['TLS_CERT_FILE', 'TLS_KEY_FILE'].filter((name) => process.env[name]);
if (given.length > 0) {
  process.stderr.write(
    `Note: ${given.join(' and ')} set (environment or .env): Parley serves those files, not the certificate made here. Unset them to use it.\n`,
  );
}

process.stdout.write(
  [
    'npm run cert will:',
    `  1. run "mkcert -install": add mkcert's local certificate authority (kept in ${caDir}) to this`,
    "     machine's trust store, and to Firefox's and Chromium's (NSS) when certutil is installed. It may ask",
    '     for your password. That CA can vouch for any site to this machine only; its key never leaves',
    `     ${caDir}. Undo with "mkcert -uninstall".`,
    `  2. sign a certificate for ${CERT_NAMES.join(', ')} and write it to`,
    ...dirs.map((dir) => `       ${path.join(dir, 'localhost-cert.pem')} (+ localhost-key.pem)`),
    '',
  ].join('\n'),
);

const installed = mkcert(['-install'], true)!;
if (installed.status !== 0) fail(`npm run cert: "mkcert -install" failed (exit ${installed.status}); nothing was written.`);

// One key and certificate, copied to each directory; the temporary copy is removed on every path.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cert-'));
let failure: string | undefined;
try {
  const certFile = path.join(work, 'cert.pem');
  const keyFile = path.join(work, 'key.pem');
  const signed = mkcert(['-cert-file', certFile, '-key-file', keyFile, ...CERT_NAMES])!;
  if (signed.status !== 0) {
    failure = `npm run cert: mkcert could not sign the certificate:\n${signed.stderr}`;
  } else {
    // The leaf, then mkcert's root. Browsers ignore the root in the chain; a Node client that
    // pins this file as its `ca` (the lab's own clients, the test helpers) needs it: Node takes
    // a self-signed leaf as a trust anchor, not a leaf that a CA signed.
    const chain = fs.readFileSync(certFile, 'utf8').trimEnd() + '\n' + fs.readFileSync(path.join(caDir, 'rootCA.pem'), 'utf8');
    const key = fs.readFileSync(keyFile);
    for (const dir of dirs) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // The modes server/tls.ts gives the certificate it generates there.
      const keyPath = path.join(dir, 'localhost-key.pem');
      // A new file created 0600 (`wx`: never an existing one, never through a symlink), then renamed
      // over the old key: at no moment is the new key in a file others may read.
      const fresh = `${keyPath}.${process.pid}.tmp`;
      fs.writeFileSync(fresh, key, { mode: 0o600, flag: 'wx' });
      fs.renameSync(fresh, keyPath);
      fs.writeFileSync(path.join(dir, 'localhost-cert.pem'), chain, { mode: 0o644 });
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
if (failure) fail(failure);

const nss = spawnSync('certutil', ['-H'], { stdio: 'ignore' }).error === undefined;
process.stdout.write(
  [
    '',
    'Done. Restart Parley (npm start) and the lab (npm run lab): they serve this certificate from now on.',
    'Restart the browser too (Firefox and Chromium read their certificate stores at start).',
    ...(nss || process.platform === 'win32'
      ? []
      : [
          'certutil was not found, so Firefox (and Chromium on Linux) still warn: install it (Debian/Ubuntu: libnss3-tools, Fedora: nss-tools, macOS: brew install nss) and run npm run cert again.',
        ]),
    '',
  ].join('\n'),
);
