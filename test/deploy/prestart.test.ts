// `npm ci --omit=dev && npm start`: the prestart (scripts/build-client-if-needed.ts) must run
// without Vite, a dev dependency. The script is run from a copy of the project that has no
// node_modules at all, as after a production install, with and without a client build.
// Run: npx node --test --test-concurrency=1 test/deploy/prestart.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/build-client-if-needed.ts');

describe('prestart without dev dependencies (no Vite)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-prestart-'));
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.copyFileSync(SCRIPT, path.join(dir, 'scripts/build-client-if-needed.ts'));
    fs.mkdirSync(path.join(dir, 'client'));
    fs.writeFileSync(path.join(dir, 'client/main.ts'), '// client source\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const prestart = () => spawnSync(process.execPath, [path.join(dir, 'scripts/build-client-if-needed.ts')], { cwd: dir, encoding: 'utf8' });

  test('no client build: exits 1 with one line that says how to build, no stack trace', () => {
    const run = prestart();
    assert.equal(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /dist\/client.*missing.*npm run build/);
    assert.doesNotMatch(run.stderr, /ERR_MODULE_NOT_FOUND|\bat .+\(|node:internal/);
  });

  test('a client build older than a source: kept and served (a production install cannot rebuild), exit 0', () => {
    fs.mkdirSync(path.join(dir, 'dist/client'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dist/client/index.html'), '<!doctype html>');
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(dir, 'dist/client/index.html'), past, past);
    const run = prestart();
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /kept.*Vite is not installed/);
    assert.equal(run.stderr, '');
  });

  test('an up-to-date client build: nothing to do, exit 0', () => {
    fs.utimesSync(path.join(dir, 'dist/client/index.html'), new Date(), new Date());
    const run = prestart();
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /up to date/);
  });
});
