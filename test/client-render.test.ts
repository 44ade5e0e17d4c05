// ASVS 1.2.1 / 3.2.2: the browser client writes HTML in one place only (client/render.ts),
// through DOMPurify with the shared allowlist; every other string reaches the DOM as text.
// Two checks: a source scan for HTML sinks, and the real render module run in a jsdom
// window against the XSS payload list (the browser-level proof with Trusted Types
// enforced is the Chromium end-to-end suite).
// Run: npx node --test test/client-render.test.ts
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import { XSS_PAYLOADS } from './fixtures/xss-payloads.ts';
import { violations } from './helpers/inert-html.ts';

const CLIENT = path.resolve(import.meta.dirname, '../client');
const SINKS =
  /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\.srcdoc\b|createContextualFragment|\beval\s*\(|new Function\s*\(|setTimeout\(\s*['"`]/;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'public' ? [] : sources(full);
    return /\.(ts|html)$/.test(entry.name) ? [full] : [];
  });
}

describe('client source: HTML sinks', () => {
  test('no file but client/render.ts uses innerHTML, outerHTML, insertAdjacentHTML, document.write, srcdoc or eval', () => {
    const offenders: string[] = [];
    for (const file of sources(CLIENT)) {
      if (file.endsWith(`${path.sep}render.ts`)) continue;
      fs.readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (SINKS.test(line) && !line.trim().startsWith('//')) offenders.push(`${path.relative(CLIENT, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offenders, []);
  });

  test('the scan finds a sink when one is there (the check can fail)', () => {
    assert.ok(SINKS.test('el.innerHTML = userText;'));
    assert.ok(SINKS.test('el.insertAdjacentHTML("beforeend", x)'));
  });

  test('render.ts assigns innerHTML only from the Trusted Types policy or DOMPurify', () => {
    const lines = fs
      .readFileSync(path.join(CLIENT, 'render.ts'), 'utf8')
      .split('\n')
      .filter((l) => /\.innerHTML\s*=/.test(l));
    assert.ok(lines.length > 0);
    for (const line of lines) assert.match(line, /=\s*(renderer\.policy\.createHTML\(|sanitize\()/, line.trim());
  });

  test('index.html has no inline script, inline style or event-handler attribute (CSP script-src/style-src self)', () => {
    const html = fs.readFileSync(path.join(CLIENT, 'index.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i);
    assert.doesNotMatch(html, /<style\b/i);
    assert.doesNotMatch(html, /\sstyle=/i);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
  });
});

describe('client/render.ts in a DOM: hostile message HTML renders inert', () => {
  let render: (target: Element, html: string) => void;
  let document: Document;

  before(async () => {
    // DOMPurify binds to the global window when first imported: give it a real DOM first.
    const dom = new JSDOM('<!doctype html><body></body>', { url: 'https://localhost:8443/' });
    Object.assign(globalThis, { window: dom.window, document: dom.window.document });
    document = dom.window.document;
    ({ renderMessageHtml: render } = await import('../client/render.ts'));
  });

  /** The message markup without the client's own link-destination labels (checked to be plain text). */
  function messageMarkup(target: Element): string {
    for (const label of target.querySelectorAll('span.link-host')) {
      assert.equal(label.children.length, 0, 'a link-destination label holds text only');
      assert.equal(label.previousElementSibling?.localName, 'a', 'a label sits right after its link');
      label.remove();
    }
    return target.innerHTML;
  }

  test('every payload, rendered unsanitized-by-server, leaves only allowlisted, inert markup', () => {
    for (const { name, input } of XSS_PAYLOADS) {
      const target = document.createElement('div');
      render(target, input);
      assert.deepEqual(violations(messageMarkup(target)), [], name);
    }
  });

  test('the same payloads assigned straight to innerHTML are dangerous (the check can fail)', () => {
    const flagged = XSS_PAYLOADS.filter(({ input }) => {
      const target = document.createElement('div');
      target.innerHTML = input;
      return violations(target.innerHTML).length > 0;
    });
    assert.ok(flagged.length >= XSS_PAYLOADS.length * 0.9, `${flagged.length}/${XSS_PAYLOADS.length} flagged`);
  });

  test('allowed formatting and safe links survive, with rel/target forced', () => {
    const target = document.createElement('div');
    render(target, 'a <b>bold</b> <a href="https://example.com">link</a>');
    assert.equal(
      target.innerHTML,
      'a <b>bold</b> <a href="https://example.com" rel="noopener noreferrer nofollow" target="_blank">link</a>' +
        '<span class="link-host" dir="ltr" title="Link goes to example.com">example.com</span>',
    );
  });

  test('each link shows its destination host as text, an IDN look-alike in punycode', () => {
    const target = document.createElement('div');
    // Cyrillic "аррӏе.com" (the look-alike of apple.com), with link text that claims apple.com.
    render(target, '<a href="https://\u0430\u0440\u0440\u04cf\u0435.com/login">https://apple.com</a> and <a href="mailto:a@example.com">mail</a>');
    const labels = [...target.querySelectorAll('span.link-host')].map((label) => label.textContent);
    assert.deepEqual(labels, ['xn--80ak6aa92e.com', 'mail to a@example.com']);
  });
});
