// tier: unit
// The layering, checked: data flows request → gate → handler → store → fan-out, and the lower
// layers (security/, store/, cluster/) never reach back up into ws/ or http/ — not even for a
// type. shared/ is imported by server and client alike and imports neither.
// Run: npx node --test test/architecture.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Every relative import (`import … from './x.ts'`, `import('./x.ts')`, `export … from`) of a file, resolved. */
function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(path.resolve(path.dirname(file), match[1]!));
  }
  return found;
}

function filesUnder(dir: string): string[] {
  const full = path.join(ROOT, dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

const rel = (file: string) => path.relative(ROOT, file);

const RULES: Array<{ layer: string; mayNotImport: string[] }> = [
  { layer: 'server/security', mayNotImport: ['server/ws', 'server/http', 'server/cluster'] },
  { layer: 'server/store', mayNotImport: ['server/ws', 'server/http', 'server/cluster'] },
  { layer: 'server/cluster', mayNotImport: ['server/ws', 'server/http'] },
  { layer: 'shared', mayNotImport: ['server', 'client'] },
  { layer: 'client', mayNotImport: ['server'] },
];

for (const { layer, mayNotImport } of RULES) {
  test(`${layer}/ imports nothing from ${mayNotImport.map((d) => `${d}/`).join(', ')}`, () => {
    const files = filesUnder(layer);
    assert.ok(files.length > 0, `no files under ${layer}`);
    const violations: string[] = [];
    for (const file of files) {
      for (const target of importsOf(file)) {
        const to = rel(target);
        if (mayNotImport.some((dir) => to === dir || to.startsWith(`${dir}/`))) violations.push(`${rel(file)} → ${to}`);
      }
    }
    assert.deepEqual(violations, []);
  });
}

test('the import scanner sees imports (it would catch a violation)', () => {
  const handlers = importsOf(path.join(ROOT, 'server/ws/handlers.ts')).map(rel);
  assert.ok(handlers.includes('server/store/store.ts'), handlers.join(', '));
});

// Docs that stay true: the README's file map names every source file of the app.
test("the README's file map names every file of server/, shared/, client/, lab/ and scripts/", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const map = readme.slice(readme.indexOf('## What is where'), readme.indexOf('Requests flow one way'));
  const missing = ['server', 'shared', 'client', 'lab', 'scripts']
    .flatMap((dir) =>
      fs
        .readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && /\.(ts|mjs|sh)$/.test(e.name))
        .map((e) => path.join(e.parentPath, e.name)),
    )
    .filter((file) => !map.includes(path.basename(file)))
    .map(rel);
  assert.deepEqual(missing, []);
});
