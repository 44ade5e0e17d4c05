// npm test's runner: runs every test file this machine can run, and says which it skipped
// and how to get what they need. A test file that needs a program beyond Node declares it in
// one header line, e.g. `// requires: redis, postgres`; the runner looks for each program
// (test/helpers/system-tools.ts, the same lookup the helpers use) and skips the files whose
// program is missing. With CI set, nothing may be skipped: a missing program fails the run
// before any test starts.
//
//   node scripts/run-tests.ts                 every test file
//   node scripts/run-tests.ts --unit          the fast tier, for the edit-test loop: the files
//                                             with the header line `// tier: unit` (no service,
//                                             no child process, seconds each)
//   node scripts/run-tests.ts FILE…           these files
//   --dry-run                                 print what would run and what would be skipped
//   --test-…                                  passed to `node --test` (e.g. --test-name-pattern=…)
//
// Environment: CI (strict), PARLEY_TEST_NODE (run the tests on this Node binary instead of
// the one running this script: how CI runs the suite on a second Node version),
// PARLEY_TEST_WITHOUT=chromium,redis,postgres (treat these as missing: to see what a machine
// without them does), CHROMIUM_PATH (the browser to drive; passed on to the e2e tests).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExecutable, onPath, postgresBin } from '../test/helpers/system-tools.ts';

const ROOT = path.join(import.meta.dirname, '..');

type Service = 'chromium' | 'redis' | 'postgres' | 'haproxy' | 'mkcert';
type Probe = { found: string | undefined; looked: string; install: string };
type Found = Probe & { absent: string };

const MAC_CHROMIUM = '/Applications/Chromium.app/Contents/MacOS/Chromium';

const PROBES: Record<Service, () => Probe> = {
  chromium: () => {
    const given = process.env['CHROMIUM_PATH'];
    return {
      found: given
        ? isExecutable(given)
          ? given
          : undefined
        : (onPath('chromium') ?? onPath('chromium-browser') ?? (isExecutable(MAC_CHROMIUM) ? MAC_CHROMIUM : undefined)),
      looked: given ? `CHROMIUM_PATH=${given}` : 'chromium or chromium-browser on PATH, CHROMIUM_PATH',
      install: `Debian/Ubuntu: sudo apt-get install chromium · Fedora: sudo dnf install chromium · macOS: brew install --cask chromium (or set CHROMIUM_PATH to a Chrome or Chromium binary)`,
    };
  },
  redis: () => ({
    found: onPath('redis-server'),
    looked: 'redis-server on PATH',
    install: 'Debian/Ubuntu: sudo apt-get install redis-server · Fedora: sudo dnf install redis (or valkey-compat-redis) · macOS: brew install redis',
  }),
  postgres: () => {
    const initdb = postgresBin('initdb');
    const server = postgresBin('postgres');
    return {
      found: initdb && server ? path.dirname(initdb) : undefined,
      looked: 'initdb and postgres in /usr/lib/postgresql/*/bin or on PATH',
      install:
        'Debian/Ubuntu: sudo apt-get install postgresql · Fedora: sudo dnf install postgresql-server · macOS: brew install postgresql@17, then put $(brew --prefix postgresql@17)/bin on PATH',
    };
  },
  // The load-balancer topology test (test/deploy/); Debian installs it in /usr/sbin.
  haproxy: () => ({
    found: onPath('haproxy') ?? (isExecutable('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : undefined),
    looked: 'haproxy on PATH or in /usr/sbin',
    install: 'Debian/Ubuntu: sudo apt-get install haproxy · Fedora: sudo dnf install haproxy · macOS: brew install haproxy',
  }),
  // npm run cert's test (test/cert.test.ts); it uses a temporary CA and touches no trust store.
  mkcert: () => ({
    found: onPath('mkcert'),
    looked: 'mkcert on PATH',
    install: 'Debian/Ubuntu: sudo apt-get install mkcert · Fedora: sudo dnf install mkcert · macOS: brew install mkcert',
  }),
};
const SERVICES = Object.keys(PROBES) as Service[];

// ---- arguments -------------------------------------------------------------------------

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const dryRun = args.includes('--dry-run');
const passThrough = args.filter((arg) => arg.startsWith('--test-'));
const unknownFlag = args.find((arg) => arg.startsWith('--') && arg !== '--unit' && arg !== '--dry-run' && !arg.startsWith('--test-'));
const named = args.filter((arg) => !arg.startsWith('--'));
if (unknownFlag) usage(`unknown option ${unknownFlag}`);
if (unit && named.length > 0) usage('--unit and file names do not go together');

function usage(problem: string): never {
  console.error(`run-tests: ${problem}\nusage: node scripts/run-tests.ts [--unit | FILE…] [--dry-run] [--test-…]`);
  process.exit(2);
}

function allTestFiles(dir = 'test'): string[] {
  const files: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...allTestFiles(file));
    else if (entry.name.endsWith('.test.ts')) files.push(file);
  }
  return files.sort();
}

type Header = { requires: Service[]; unit: boolean };

/** What a file declares in its leading comment block: `// requires: a, b`, `// tier: unit`. */
function header(file: string): Header {
  const found: Header = { requires: [], unit: false };
  for (const line of fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    if (!line.startsWith('//')) break;
    if (line.trim() === '// tier: unit') found.unit = true;
    const match = /^\/\/ requires:(.*)$/.exec(line);
    if (!match) continue;
    for (const name of match[1]!.split(',').map((item) => item.trim())) {
      if (!SERVICES.includes(name as Service)) usage(`${file}: unknown service "${name}" (known: ${SERVICES.join(', ')})`);
      found.requires.push(name as Service);
    }
  }
  if (found.unit && found.requires.length > 0) usage(`${file}: the unit tier needs no service, but it says requires: ${found.requires.join(', ')}`);
  return found;
}

const files = named.length > 0 ? named.map((file) => path.relative(ROOT, path.resolve(file))) : allTestFiles().filter((file) => !unit || header(file).unit);
for (const file of files) if (!fs.existsSync(path.join(ROOT, file))) usage(`no such test file: ${file}`);

// ---- what this machine has ------------------------------------------------------------

const without = (process.env['PARLEY_TEST_WITHOUT'] ?? '')
  .split(',')
  .map((item) => item.trim())
  .filter(Boolean);
for (const name of without) if (!SERVICES.includes(name as Service)) usage(`PARLEY_TEST_WITHOUT: unknown service "${name}" (known: ${SERVICES.join(', ')})`);

const probes = new Map<Service, Found>();
for (const service of SERVICES) {
  const probe = PROBES[service]();
  probes.set(
    service,
    without.includes(service)
      ? { ...probe, found: undefined, absent: 'treated as missing (PARLEY_TEST_WITHOUT)' }
      : { ...probe, absent: `not found (looked for ${probe.looked})` },
  );
}

const run: string[] = [];
const skipped = new Map<Service, string[]>();
for (const file of files) {
  const missing = header(file).requires.filter((service) => !probes.get(service)!.found);
  if (missing.length === 0) run.push(file);
  for (const service of missing) skipped.set(service, [...(skipped.get(service) ?? []), file]);
}
const skippedFiles = new Set([...skipped.values()].flat());

const ci = Boolean(process.env['CI']) && !['0', 'false'].includes(process.env['CI']!.toLowerCase());

function skippedReport(): string {
  const lines: string[] = [];
  for (const service of SERVICES) {
    const list = skipped.get(service);
    if (!list) continue;
    const probe = probes.get(service)!;
    lines.push(`  ${service}: ${probe.absent}`);
    lines.push(`    skipped: ${list.join(', ')}`);
    lines.push(`    get it: ${probe.install}`);
  }
  return lines.join('\n');
}

if (skippedFiles.size > 0 && ci) {
  console.error(`run-tests: CI is set, so no suite may be skipped, and ${skippedFiles.size} test file(s) need what this machine lacks:\n${skippedReport()}`);
  process.exit(1);
}

// ---- the Node the tests run on ----------------------------------------------------------

const node = process.env['PARLEY_TEST_NODE'] ?? process.execPath;
// The same engines check as npm's pretest, on the Node the tests will actually run on.
const runtime = spawnSync(node, [path.join(ROOT, 'scripts', 'check-runtime.mjs'), 'engines'], { encoding: 'utf8' });
if (runtime.status !== 0) {
  console.error(runtime.error ? `run-tests: PARLEY_TEST_NODE=${node}: ${runtime.error.message}` : runtime.stderr.trim());
  process.exit(1);
}
const version = runtime.stdout.trim();

const summary = () =>
  `run-tests: ${run.length} test file(s) on Node ${version}` +
  (skippedFiles.size > 0 ? `, ${skippedFiles.size} skipped (CI is not set, so that is allowed):\n${skippedReport()}` : ', none skipped');

if (dryRun) {
  console.log(`${summary()}\n  would run: ${run.join(', ')}`);
  process.exit(0);
}
if (skippedFiles.size > 0) console.log(`${summary()}\n`);
if (run.length === 0) process.exit(0);

const env = { ...process.env };
const chromium = probes.get('chromium')!.found;
if (chromium) env['CHROMIUM_PATH'] = chromium;

const child = spawn(node, ['--test', '--test-concurrency=2', ...passThrough, ...run], { cwd: ROOT, env, stdio: 'inherit' });
child.on('exit', (code, signal) => {
  // Said again at the end, where a reader of the log looks first.
  console.log(`\n${summary()}`);
  process.exit(code ?? (signal ? 1 : 0));
});
