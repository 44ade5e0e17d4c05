// tier: unit
// The encoding layer on its own (server/security/markdown.ts): the Markdown subset renders as
// documented, every other character is encoded, Markdown's own XSS shapes come out inert without
// the sanitizer's help, and the plain-text fast path can never disagree with the renderer.
// Run: npx node --test test/markdown.test.ts
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { JSDOM } from 'jsdom';
import { escapeHtml, needsMarkdown, renderMarkdown } from '../server/security/markdown.ts';
import { sanitizeMessage } from '../server/security/sanitize.ts';
import { violations } from './helpers/inert-html.ts';
import { MARKDOWN_CASES, MARKDOWN_PAYLOADS, TRICKY_TEXTS } from './fixtures/texts.ts';
import { XSS_PAYLOADS } from './fixtures/xss-payloads.ts';

const { document } = new JSDOM('').window;
/** The text a browser shows for message HTML (tags gone, references decoded). */
function textOf(html: string): string {
  const template = document.createElement('template');
  template.innerHTML = html;
  return template.content.textContent ?? '';
}

describe('Markdown subset (encode, then sanitize)', () => {
  for (const c of MARKDOWN_CASES) {
    test(c.name, () => assert.equal(sanitizeMessage(renderMarkdown(c.input)), c.html));
  }
});

// OWASP XSS prevention rule #1: encode what is not meant as markup
describe('what you type is what they see', () => {
  for (const t of TRICKY_TEXTS) {
    test(t.name, () => {
      const html = sanitizeMessage(renderMarkdown(t.input.toWellFormed()));
      assert.equal(textOf(html), t.shows ?? t.input, `rendered ${JSON.stringify(html)}`);
      assert.deepEqual(violations(html), []);
    });
  }
});

describe('the encoding layer alone holds (no sanitizer after it)', () => {
  for (const p of [...MARKDOWN_PAYLOADS, ...XSS_PAYLOADS]) {
    test(p.name, () => {
      const html = renderMarkdown(p.input);
      assert.deepEqual(violations(html), [], `rendered ${JSON.stringify(html)}`);
    });
  }

  test("not vacuous: raw HTML on (markdown-it's default for html: true) lets the payloads through", async () => {
    const { default: MarkdownIt } = await import('markdown-it');
    const careless = new MarkdownIt({ html: true });
    const through = XSS_PAYLOADS.filter((p) => violations(careless.render(p.input)).length > 0);
    assert.ok(through.length >= XSS_PAYLOADS.length / 2, `${through.length} of ${XSS_PAYLOADS.length}`);
  });
});

describe('the plain-text fast path', () => {
  // Everything the fast path skips must render to exactly its escaped self. Built from every
  // printable ASCII character (and a few others) in the positions Markdown cares about.
  const chars = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\n', '\t', '\r', '\0', 'é', '→', '\u00A0', '\u3000'];
  const shapes = (c: string, d: string) => [
    c,
    `a${c}b`,
    `${c}a${c}`,
    `${c}${c}a${c}${c}`,
    `a ${c}b${c} c`,
    `${c}a${d}`,
    `a${c}${d}b`,
    `${c}\n${d}`,
    `x\n${c}${c}${c}\ny\n${c}${c}${c}`,
  ];
  const inputs = new Set<string>([
    '',
    'hello world',
    'https',
    'https:',
    'mailto',
    'www.example.com',
    'example.com',
    'a@',
    '@b',
    'http://example.org',
    'ftp://x.y',
    '//x.y',
  ]);
  for (const c of chars) for (const d of chars) for (const s of shapes(c, d)) inputs.add(s);

  test(`text without a Markdown character renders as itself, escaped (${inputs.size} inputs)`, () => {
    let checked = 0;
    for (const input of inputs) {
      if (needsMarkdown(input)) continue;
      checked += 1;
      assert.equal(renderMarkdown(input), escapeHtml(input), `fast path would differ for ${JSON.stringify(input)}`);
    }
    assert.ok(checked > inputs.size / 2, `${checked} inputs took the fast path`);
  });

  test('random text: the same, 20,000 strings', () => {
    const alphabet = chars.join('') + 'https://mailto:@';
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 20_000; n++) {
      let input = '';
      const length = 1 + Math.floor(random() * 24);
      for (let i = 0; i < length; i++) input += alphabet[Math.floor(random() * alphabet.length)];
      if (!needsMarkdown(input)) assert.equal(renderMarkdown(input), escapeHtml(input), JSON.stringify(input));
    }
  });
});
