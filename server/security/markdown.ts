// Text → HTML: a message is text, with a small Markdown subset people already know. Encoding is
// the default (OWASP XSS prevention rule #1, ASVS 1.2.1): every character that is not formatting
// reaches the others as that character — `<div>`, `a<b && c>d`, `I <3 you`, `&amp;` — because
// markdown-it escapes it, with raw HTML off. The result still goes through the DOMPurify allowlist
// (sanitize.ts) on the server and again in the browser. Why: docs/decisions/019-text-is-text.md.
//
// The subset: **bold**, *italic* / _italic_, `inline code`, ``` fenced code blocks ```, links
// [text](https://…) and <https://…>, bare https:// URLs and e-mail addresses made into links.
// Nothing else: no headings, lists, quotes, tables, images, HTML, character references, or
// indented code — a line that starts with `#`, `>`, `-` or four spaces is text.
//
// White space is kept as typed (the client shows message bodies with `white-space: pre-wrap`):
// markdown-it's paragraphs would trim every line and fold blank lines, so only fences are parsed
// as blocks, and the lines between them are rendered inline exactly as they are.
import MarkdownIt from 'markdown-it';
import { ALLOWED_URI_REGEXP, LINK_REL } from '../../shared/sanitize-policy.ts';

const md = new MarkdownIt('zero', {
  html: false, // raw HTML is text
  linkify: true,
  typographer: false, // no smart quotes or dashes: what was typed is what is shown
  maxNesting: 20, // markdown-it's own bound on nesting (emphasis in links in emphasis …)
});
md.enable(['fence', 'escape', 'backticks', 'emphasis', 'link', 'autolink', 'linkify']);
// Only scheme links (https:) and e-mail addresses; "example.com" stays text.
md.linkify.set({ fuzzyLink: false, fuzzyIP: false, fuzzyEmail: true });
// The one link rule, shared with the sanitizer: https: and mailto: only. Anything else (http:,
// javascript:, data:, relative) is not made a link, so its Markdown stays visible as text.
md.validateLink = (url) => ALLOWED_URI_REGEXP.test(url);
// Link text as typed: markdown-it would decode %-escapes and punycode for display, so that
// https://xn--80ak6aa92e.com would read "аррӏе.com". (The client also shows each link's real host.)
md.normalizeLinkText = (text) => text;
// Links in the allowlist's own shape, so this layer's output is policy-conformant on its own: no
// title, and new tab, no opener, no referrer (as shared/sanitize-policy.ts's hook makes every link).
md.renderer.rules.link_open = (tokens, index) => {
  const href = String(tokens[index]!.attrGet('href') ?? '');
  return `<a href="${md.utils.escapeHtml(href)}" rel="${LINK_REL}" target="_blank">`;
};
// A fence is <pre><code> with nothing else: the info string ("js") is not an attribute.
md.renderer.rules.fence = (tokens, index) => `<pre><code>${md.utils.escapeHtml(tokens[index]!.content)}</code></pre>`;
// `\` + newline (a Markdown hard break) is just that newline under pre-wrap.
md.renderer.rules.hardbreak = () => '\n';

/** Escapes `&`, `<`, `>` and `"` — markdown-it's own escaping, so both paths agree to the byte. */
export const escapeHtml: (text: string) => string = md.utils.escapeHtml;

/**
 * Whether `text` could render as anything but itself, escaped. Without these characters no rule
 * of the subset applies (a property test holds the two paths equal), so the common message
 * needs no parser: `\` escapes, `` ` `` code and fences, `*` `_` emphasis, `[` links, `<`
 * autolinks, `~` fences, `@` e-mail links, https:/mailto: links, and what markdown-it
 * normalizes (CR, NUL).
 */
export function needsMarkdown(text: string): boolean {
  return /[\\`*_[<~@\r\0]|https:|mailto:/i.test(text);
}

/** The message's HTML: fenced blocks as <pre><code>, every other line rendered inline as typed. */
export function renderMarkdown(text: string): string {
  const source = text.replace(/\r\n?/g, '\n').replaceAll('\0', '\uFFFD'); // as markdown-it normalizes
  const lines = source.split('\n');
  let html = '';
  let next = 0; // first line not yet rendered
  const inline = (end: number) => {
    if (end > next) html += md.renderInline(lines.slice(next, end).join('\n'));
  };
  for (const token of md.parse(source, {})) {
    if (token.type !== 'fence' || !token.map) continue;
    const [start, end] = token.map;
    inline(start);
    html += md.renderer.render([token], md.options, {});
    next = end;
  }
  inline(lines.length);
  return html;
}
