// tier: unit
// The bundled Node is an optional dependency, and npm skips an optional package whose tarball
// fails its sha512 check without failing the install (docs/decisions/017-runtime.md).
// scripts/check-runtime.mjs (postinstall, pretest) turns that into a failure: run here against
// a throwaway project whose node_modules holds the pinned package, another version, or nothing.
// Run: npx node --test test/runtime-check.test.ts
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const NAME = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
const PINNED = '24.99.1';
const [major] = process.versions.node.split('.');

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A project pinning NAME@PINNED; `installed` puts that package (some version, bin → `binary`) in node_modules. */
function project(installed?: { version: string; binary: string }, engines = `^${major}.0.0`): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-runtime-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(path.join(ROOT, 'scripts', 'check-runtime.mjs'), path.join(dir, 'scripts', 'check-runtime.mjs'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ engines: { node: engines }, optionalDependencies: { [NAME]: PINNED } }));
  if (installed) {
    const pkg = path.join(dir, 'node_modules', NAME);
    fs.mkdirSync(path.join(pkg, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: NAME, version: installed.version, bin: { node: 'bin/node' } }));
    fs.symlinkSync(installed.binary, path.join(pkg, 'bin', 'node'));
  }
  return dir;
}

function check(dir: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [path.join(dir, 'scripts', 'check-runtime.mjs')], {
    encoding: 'utf8',
    env: { ...process.env, npm_config_omit: '', ...env },
  });
  return { status: result.status, out: result.stdout + result.stderr };
}

test('the pinned package installed and running the scripts: passes', () => {
  const { status, out } = check(project({ version: PINNED, binary: process.execPath }));
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`bundled ${NAME}@${PINNED.replaceAll('.', '\\.')}`));
});

test('the package skipped by npm (failed sha512 or download): fails, naming it and the likely cause', () => {
  const { status, out } = check(project());
  assert.equal(status, 1, out);
  assert.match(out, new RegExp(`${NAME}@${PINNED.replaceAll('.', '\\.')} \\(the bundled Node\\) is not in node_modules`));
  assert.match(out, /EINTEGRITY/);
});

test('another version in node_modules than the one pinned: fails', () => {
  const { status, out } = check(project({ version: '24.0.0', binary: process.execPath }));
  assert.equal(status, 1, out);
  assert.match(out, /is 24\.0\.0, package\.json pins 24\.99\.1/);
});

test('the pinned package present but another Node running the scripts: fails', () => {
  const other = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'parley-other-node-')), 'node');
  dirs.push(path.dirname(other));
  fs.copyFileSync(process.execPath, other);
  const { status, out } = check(project({ version: PINNED, binary: other }));
  assert.equal(status, 1, out);
  assert.match(out, /not on the bundled/);
});

test('left out on purpose (--omit=optional): the Node running must satisfy engines instead', () => {
  assert.equal(check(project(), { npm_config_omit: 'dev optional' }).status, 0);
  const outside = check(project(undefined, '^1.0.0'), { npm_config_omit: 'optional' });
  assert.equal(outside.status, 1, outside.out);
  assert.match(outside.out, /outside engines \(\^1\.0\.0\)/);
});
