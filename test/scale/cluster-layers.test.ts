// Layers that never call back: storage and the cluster bus import nothing from the WebSocket
// or HTTP layers — not even a type — so each can be read, tested and replaced on its own.
// The check reads every import specifier (static, `import type`, `export … from`, dynamic) of
// every file under server/store/ and server/cluster/ and resolves it.
// Run: npx node --test test/scale/cluster-layers.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const SERVER = path.resolve(import.meta.dirname, '../../server');
const IMPORT = /(?:^|\s)(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]!).filter((s) => s.startsWith('.'));
}

for (const layer of ['store', 'cluster']) {
  test(`server/${layer}/ imports nothing from server/ws/ or server/http/`, () => {
    const dir = path.join(SERVER, layer);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 0);
    const offending: string[] = [];
    for (const file of files) {
      for (const specifier of importsOf(path.join(dir, file))) {
        const target = path.relative(SERVER, path.resolve(dir, specifier));
        if (target.startsWith('ws/') || target.startsWith('http/')) offending.push(`${layer}/${file} → ${target}`);
      }
    }
    assert.deepEqual(offending, []);
  });
}

test('the import reader sees type-only and multi-line imports (so the check above can fail)', () => {
  const sample = path.join(SERVER, 'cluster', 'redis-bus.ts');
  const found = importsOf(sample);
  assert.ok(found.includes('../store/redis.ts'), `type-only import not seen: ${found.join(', ')}`);
  assert.ok(found.includes('./messages.ts'), `multi-name import not seen: ${found.join(', ')}`);
});
