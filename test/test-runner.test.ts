// tier: unit
// npm test's runner (scripts/run-tests.ts): on a machine without chromium, redis-server or
// PostgreSQL it runs what it can and lists what it skipped with how to get it; with CI set a
// missing program fails the run. Driven with --dry-run (decides, prints, runs no test).
// Run: npx node --test test/test-runner.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

function runner(args: string[], env: Record<string, string>) {
  const base = { ...process.env };
  delete base['CI'];
  delete base['PARLEY_TEST_WITHOUT'];
  const result = spawnSync(process.execPath, ['scripts/run-tests.ts', ...args], { cwd: ROOT, env: { ...base, ...env }, encoding: 'utf8' });
  return { status: result.status, out: result.stdout + result.stderr };
}

/** The files named after "skipped:" for one service in the runner's report. */
function skippedFor(out: string, service: string): string[] {
  const match = new RegExp(`  ${service}: (?:not found|treated as missing)[^\\n]*\\n    skipped: ([^\\n]*)`).exec(out);
  return match ? match[1]!.split(', ') : [];
}

test('without chromium, redis and PostgreSQL (CI unset): green, the suites that need them listed with how to get each', () => {
  const { status, out } = runner(['--dry-run'], { PARLEY_TEST_WITHOUT: 'chromium,redis,postgres' });
  assert.equal(status, 0, out);
  // Every browser suite, and only those (each declares `// requires: chromium`).
  const browserSuites = fs
    .readdirSync(path.join(ROOT, 'test/e2e'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => `test/e2e/${f}`)
    .sort();
  assert.deepEqual(skippedFor(out, 'chromium').sort(), browserSuites);
  assert.ok(skippedFor(out, 'redis').includes('test/scale/two-instances.test.ts'), out);
  assert.ok(skippedFor(out, 'postgres').includes('test/rooms.test.ts'), out);
  for (const hint of ['apt-get install chromium', 'brew install redis', 'dnf install postgresql-server'])
    assert.ok(out.includes(hint), `hint "${hint}" missing:\n${out}`);
  const wouldRun = /would run: (.*)/.exec(out)![1]!.split(', ');
  assert.ok(wouldRun.includes('test/csrf.test.ts'), out);
  assert.ok(!wouldRun.includes('test/e2e/chat.test.ts') && !wouldRun.includes('test/rooms.test.ts'), out);
});

test('with CI set, a missing program fails the run and names what is missing', () => {
  const { status, out } = runner(['--dry-run'], { CI: 'true', PARLEY_TEST_WITHOUT: 'redis' });
  assert.equal(status, 1, out);
  assert.match(out, /CI is set, so no suite may be skipped/);
  assert.ok(skippedFor(out, 'redis').includes('test/login-throttle-conformance.test.ts'), out);
});

test('redis-server absent from PATH is noticed by looking, not only through the override', () => {
  const { status, out } = runner(['--dry-run', 'test/login-throttle-conformance.test.ts', 'test/config.test.ts'], { PATH: '' });
  assert.equal(status, 0, out);
  assert.deepEqual(skippedFor(out, 'redis'), ['test/login-throttle-conformance.test.ts']);
  assert.match(out, /would run: test\/config\.test\.ts$/m);
});

test('the fast tier needs nothing: nothing is skipped even with every program missing and CI set', () => {
  const { status, out } = runner(['--unit', '--dry-run'], { CI: 'true', PARLEY_TEST_WITHOUT: 'chromium,redis,postgres' });
  assert.equal(status, 0, out);
  assert.match(out, /none skipped/);
});

test('a typo in the override, or a PARLEY_TEST_NODE that cannot run, is an error, not a silent skip', () => {
  assert.equal(runner(['--dry-run'], { PARLEY_TEST_WITHOUT: 'mysql' }).status, 2);
  const missing = runner(['--dry-run', 'test/config.test.ts'], { PARLEY_TEST_NODE: path.join(ROOT, 'no-such-node') });
  assert.equal(missing.status, 1, missing.out);
  assert.match(missing.out, /PARLEY_TEST_NODE=/);
});
