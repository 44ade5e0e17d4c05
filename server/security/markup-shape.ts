// A cheap look at a message's markup before anyone parses it. Parsing cost is not linear in
// length: each element the HTML tree builder and DOMPurify handle costs more the deeper it sits
// (DOMPurify re-parents the children of every removed element; the tree builder re-scans the
// stack of open elements and the list of active formatting elements). 2,000 characters of
// nested tags cost jsdom + DOMPurify up to ~350 ms (docs/decisions/011-sanitizer-worker-pool.md),
// while the same number of tags side by side costs a few ms. So a message is refused on two
// numbers that one linear pass over the string gives, without building anything:
// - tags: every `<` that starts markup (a start or end tag, a comment, a doctype);
// - depth: an estimate of nesting, from a stack of open tag names that an end tag pops down to
//   (void elements never open). The HTML parser may nest deeper than this (an end tag it ignores
//   still pops here), so depth is only a first filter; the tag count bounds it anyway, and the
//   worker's time budget (sanitizer-pool.ts) is the backstop for shapes neither number sees.
// OWASP WS cheat sheet / ASVS 1.3.x: bound the work an input may cause before doing it.

export type MarkupShape = { tags: number; depth: number };

/** HTML void elements: a start tag that never opens an element. */
const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr', 'param', 'keygen']);

/** Elements whose start tag closes an open one of the same name right above it (`<li>a<li>b` are siblings). */
const SELF_CLOSING_SIBLINGS = new Set(['p', 'li', 'dt', 'dd', 'option', 'optgroup', 'tr', 'td', 'th', 'rb', 'rp', 'rt', 'rtc']);

const isLetter = (code: number) => (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);

/** One pass; stops counting once both bounds are passed (the answer is "too much" either way). */
export function markupShape(text: string, stopAfterTags = Infinity): MarkupShape {
  let tags = 0;
  let depth = 0;
  const open: string[] = [];
  let at = text.indexOf('<');
  while (at !== -1 && at < text.length - 1 && tags <= stopAfterTags) {
    const next = text.charCodeAt(at + 1);
    const closing = next === 0x2f; /* / */
    const nameStart = closing ? at + 2 : at + 1;
    if (isLetter(text.charCodeAt(nameStart))) {
      let end = nameStart + 1;
      // A tag name ends at whitespace, `/` or `>` (HTML tokenizer, tag name state).
      while (end < text.length && !/[\s/>]/.test(text[end]!)) end += 1;
      const name = text.slice(nameStart, end).toLowerCase();
      tags += 1;
      if (closing) {
        const index = open.lastIndexOf(name);
        if (index !== -1) open.length = index;
      } else if (!VOID.has(name)) {
        if (SELF_CLOSING_SIBLINGS.has(name) && open.at(-1) === name) open.pop();
        open.push(name);
        if (open.length > depth) depth = open.length;
      }
      at = text.indexOf('<', end);
    } else {
      // `<!--`, `<!doctype`, `<?`, `</` + non-letter: markup the tokenizer handles as a comment.
      if (next === 0x21 /* ! */ || next === 0x3f /* ? */ || closing) tags += 1;
      at = text.indexOf('<', at + 1);
    }
  }
  return { tags, depth };
}
