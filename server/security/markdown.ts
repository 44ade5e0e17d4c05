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
md.enable(['fence', 'backticks', 'emphasis', 'link', 'autolink', 'linkify']);

// Backslash escapes only for the subset's own characters: `\*` is a literal `*`, but `\d+\.\d+`,
// `\\server\share`, `"b\"c"` and a shell line ending in `\` keep every backslash (markdown-it's own
// rule would take the one before any ASCII punctuation, and before a newline).
const ESCAPABLE = new Set(['*', '_', '`', '[', ']', '<', '~']);
md.inline.ruler.after('escape', 'subset_escape', (state, silent) => {
  if (state.src.charCodeAt(state.pos) !== 0x5c /* \ */) return false;
  const next = state.src[state.pos + 1];
  if (next === undefined || !ESCAPABLE.has(next)) return false;
  if (!silent) {
    // text_special, as markdown-it's escape rule does: joined into the text later, never linkified.
    const token = state.push('text_special', '', 0);
    token.content = next;
    token.markup = `\\${next}`;
    token.info = 'escape';
  }
  state.pos += 2;
  return true;
});
md.inline.ruler.before('link', 'no_empty_link', (state) => {
  // `[text]()` would become <a href=""> (markdown-it keeps a link whose empty destination it did not
  // validate): a link back to this page. Such a bracket is text; the rest is read on as usual.
  if (state.src.charCodeAt(state.pos) !== 0x5b /* [ */) return false;
  const labelEnd = state.md.helpers.parseLinkLabel(state, state.pos, true);
  if (labelEnd < 0 || !/^\([ \t\n]*\)/.test(state.src.slice(labelEnd + 1, labelEnd + 64))) return false;
  state.pending += '[';
  state.pos += 1;
  return true;
});
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
  // The lines before a block end with their own line break (else a blank line typed before a fence
  // would vanish: a final newline before a block shows nothing); those after it start with theirs.
  const inline = (end: number, beforeBlock: boolean) => {
    if (end > next) html += md.renderInline(lines.slice(next, end).join('\n')) + (beforeBlock ? '\n' : '');
  };
  // Only the block pass: the inline one runs on the lines between fences, above.
  const blocks: Parameters<typeof md.block.parse>[3] = [];
  md.block.parse(source, md, {}, blocks);
  for (const token of blocks) {
    if (token.type !== 'fence' || !token.map) continue;
    const [start, end] = token.map;
    inline(start, true);
    html += md.renderer.render([token], md.options, {});
    next = end;
  }
  inline(lines.length, false);
  return html;
}
