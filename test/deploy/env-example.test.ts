// .env.example lists every environment variable Parley reads (server/config.ts) and every one
// docs/protocol.md documents, each with a comment line above it; none is set (uncommented),
// so copying the file to .env changes nothing until a line is uncommented.
// Run: npx node --test --test-concurrency=1 test/deploy/env-example.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

const example = read('.env.example');
const listed = new Map<string, number>();
const lines = example.split('\n');
lines.forEach((line, i) => {
  const match = /^# ([A-Z][A-Z0-9_]+)=/.exec(line);
  if (match) listed.set(match[1]!, i);
});

/** Names config.ts reads: env['NAME'] and the name argument of its int()/seconds()/serviceUrl() helpers. */
function configNames(): Set<string> {
  const source = read('server/config.ts');
  const names = new Set<string>();
  for (const match of source.matchAll(/env\['([A-Z][A-Z0-9_]+)'\]|(?:int|seconds|serviceUrl)\(env, '([A-Z][A-Z0-9_]+)'/g)) names.add((match[1] ?? match[2])!);
  return names;
}

/** Names in the environment table of docs/protocol.md (first column, possibly two names). */
function documentedNames(): Set<string> {
  const names = new Set<string>();
  for (const line of read('docs/protocol.md').split('\n')) {
    const cell = /^\| (`[A-Z][A-Z0-9_]+`(?:, `[A-Z][A-Z0-9_]+`)*) \|/.exec(line)?.[1];
    if (cell) for (const name of cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(name[1]!);
  }
  return names;
}

test('every variable server/config.ts reads is in .env.example', () => {
  const names = configNames();
  assert.ok(names.size > 40, `found only ${names.size} names in config.ts`);
  assert.deepEqual(
    [...names].filter((name) => !listed.has(name)),
    [],
  );
});

test('every variable docs/protocol.md documents is in .env.example', () => {
  const names = documentedNames();
  assert.ok(names.size > 40, `found only ${names.size} names in docs/protocol.md`);
  assert.deepEqual(
    [...names].filter((name) => !listed.has(name)),
    [],
  );
});

test('each variable (or pair) has a comment line above it and is commented out (defaults apply until changed)', () => {
  for (const [name, i] of listed) {
    // A pair that belongs together (TLS_CERT_FILE, TLS_KEY_FILE) shares one comment.
    let j = i - 1;
    while (j > 0 && /^# [A-Z][A-Z0-9_]+=/.test(lines[j]!)) j -= 1;
    const above = lines[j] ?? '';
    assert.ok(above.startsWith('# ') && !/^# [A-Z][A-Z0-9_]+=/.test(above), `${name}: no comment line above it`);
  }
  assert.deepEqual(
    lines.filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line)),
    [],
    'no variable is set in the example',
  );
});
