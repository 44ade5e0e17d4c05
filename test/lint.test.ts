// tier: unit
// ASVS 3.2.2 / 1.3.2: the lint rules that keep strings from becoming HTML or code in the
// browser, run through ESLint's own API with the project's eslint.config.js. The pair that
// proves the control: a plain sink (`el.innerHTML = userText`) in client code is an error,
// while the real client/render.ts (DOMPurify, then the Trusted Types policy) lints clean, and
// the same module with its sanitizer taken out of one sink is an error again.
// Run: npx node --test test/lint.test.ts (installs tools/lint on first use, as `npm run lint` does)
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '..');

// The slice of ESLint's API used here. ESLint lives in tools/lint (its own lockfile: see
// docs/decisions/021-lint-and-format.md), so it is loaded by path, not imported by name.
type LintMessage = { ruleId: string | null; message: string; line: number; fatal?: boolean };
type LintResult = { filePath: string; messages: LintMessage[] };
type ESLintApi = {
  lintText(code: string, options: { filePath: string }): Promise<LintResult[]>;
  lintFiles(patterns: string[]): Promise<LintResult[]>;
};

let eslint: ESLintApi;

before(async () => {
  await import(pathToFileURL(path.join(ROOT, 'tools/lint/ensure-installed.mjs')).href);
  const eslintMain = createRequire(path.join(ROOT, 'tools/lint/package.json')).resolve('eslint');
  const { ESLint } = (await import(pathToFileURL(eslintMain).href)) as { ESLint: new (options: { cwd: string }) => ESLintApi };
  eslint = new ESLint({ cwd: ROOT });
});

/** The rule ids ESLint reports for `code` as if it were the file at `file` (relative to the root). */
async function rulesHit(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  assert.ok(result, `no lint result for ${file}`);
  for (const message of result.messages) assert.ok(!message.fatal, `${file}: ${message.message}`);
  return result.messages.map((message) => message.ruleId ?? '(none)');
}

const RENDER = 'client/render.ts';

describe('lint: unsafe DOM sinks', () => {
  test('a user string assigned to innerHTML in client code is an error (no-unsanitized and the sink ban)', async () => {
    const hits = await rulesHit('export function show(el: HTMLElement, userText: string): void {\n  el.innerHTML = userText;\n}\n', 'client/ui/example.ts');
    assert.ok(hits.includes('no-unsanitized/property'), hits.join(', '));
    assert.ok(hits.includes('no-restricted-syntax'), hits.join(', '));
  });

  test('the other string-to-HTML sinks are errors too: insertAdjacentHTML, outerHTML, document.write, createContextualFragment', async () => {
    const cases = [
      "el.insertAdjacentHTML('beforeend', userText);",
      'el.outerHTML = userText;',
      'document.write(userText);',
      'document.createRange().createContextualFragment(userText);',
    ];
    for (const line of cases) {
      const hits = await rulesHit(`export function show(el: HTMLElement, userText: string): void {\n  ${line}\n}\n`, 'client/ui/example.ts');
      assert.ok(
        hits.some((rule) => rule.startsWith('no-unsanitized/')),
        `${line}: ${hits.join(', ')}`,
      );
    }
  });

  test('client code may not write HTML at all, not even a constant (only client/render.ts writes HTML)', async () => {
    const hits = await rulesHit("export function clear(el: HTMLElement): void {\n  el.innerHTML = '<b>static</b>';\n}\n", 'client/ui/example.ts');
    assert.deepEqual(hits, ['no-restricted-syntax']);
  });

  test('server code is checked too: a variable written to innerHTML in a jsdom window is an error', async () => {
    const hits = await rulesHit(
      'export function parse(template: HTMLTemplateElement, html: string): void {\n  template.innerHTML = html;\n}\n',
      'server/security/example.ts',
    );
    assert.ok(hits.includes('no-unsanitized/property'), hits.join(', '));
  });

  test('the real client/render.ts lints clean', async () => {
    const [result] = await eslint.lintFiles([path.join(ROOT, RENDER)]);
    assert.ok(result);
    assert.deepEqual(result.messages, []);
  });

  test('client/render.ts with the sanitizer taken out of a sink is an error (its exception is only for sanitized HTML)', async () => {
    const source = fs.readFileSync(path.join(ROOT, RENDER), 'utf8');
    const unsafe = source.replace(/innerHTML = sanitize\(html\);/, 'innerHTML = html;');
    assert.notEqual(unsafe, source, 'render.ts no longer has `innerHTML = sanitize(html);`: update this test');
    const hits = await rulesHit(unsafe, RENDER);
    assert.deepEqual(hits, ['no-unsanitized/property']);
  });
});

describe('lint: no string becomes code', () => {
  // (no-implied-eval without type information sees a string it can read in the source; a
  // string in a variable given to setTimeout is refused by the CSP, which has no 'unsafe-eval'.)
  test('eval, new Function and a string of code given to setTimeout are errors', async () => {
    const hits = await rulesHit(
      "export function run(code: string): void {\n  eval(code);\n  new Function(code)();\n  setTimeout('run(' + code + ')', 0);\n}\n",
      'client/ui/example.ts',
    );
    assert.ok(hits.includes('no-eval'), hits.join(', '));
    assert.ok(hits.includes('no-new-func'), hits.join(', '));
    assert.ok(hits.includes('no-implied-eval'), hits.join(', '));
  });
});
