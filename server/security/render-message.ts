// From what a user typed to the HTML that is stored and broadcast, or a refusal. Everything a
// `send` costs is decided here, in this order:
// 1. Canonical text first: well-formed (String.prototype.toWellFormed: a lone surrogate becomes
//    U+FFFD), NUL → U+FFFD (PostgreSQL cannot store it), CRLF and CR → LF, so the live broadcast,
//    the stored HTML and the stored source are the same text on every store.
// 2. A message is text (encoding, decision 019). Text that no rule of the Markdown subset can
//    touch is escaped here, on this thread: no parser. The rest is rendered (markdown.ts) and
//    the result sanitized (DOMPurify, the one allowlist) in a worker thread within a time
//    budget (sanitizer-pool.ts), then charged to the sender's rate budget by the time it took.
//    The pool is shared fairly: a user, and an address, may have only so many messages in it
//    (a user past theirs is told `rate_limited`, one whose address or the whole pool is full
//    `server_busy`), and the waiting ones are served one user at a time, in turn.
// 3. With the lab switch `encoding` off the text is taken as HTML, as Parley did before it
//    encoded: markup is measured before it is parsed (markup-shape.ts) — too many tags or too
//    deep a nesting is refused (`too_complex`) without parsing, the rest charged by its size
//    (tokens before the work) — then sanitized in a worker like the above.
// 4. Nothing visible left (only removed tags, white space, zero-width or filler characters)
//    is refused (`empty_message`), not stored as an empty message.
// OWASP XSS prevention (encode, then sanitize what is meant to be HTML), ASVS 1.2.1 and 1.3.1,
// OWASP WS cheat sheet (limit the resources one client may use). Why: docs/decisions/011 and 019.
import { escapeHtml, needsMarkdown } from './markdown.ts';
import { markupShape } from './markup-shape.ts';
import type { TokenBuckets } from './rate-limit.ts';
import type { Author, SanitizerPool } from './sanitizer-pool.ts';
import { hasVisibleText } from './visible-text.ts';

export type Refusal = 'too_complex' | 'empty_message' | 'rate_limited' | 'server_busy';

/** `text`: the source to store (well-formed); `cost`: rate-limit tokens this message was charged on top of its frame's one. */
export type Rendered = { ok: true; text: string; html: string; cost: number } | { ok: false; code: Refusal; message: string };

/** `author`: the sender and the address their connection comes from (the pool's per-user and per-address shares). */
export type RenderMessage = (author: Author, text: string) => Promise<Rendered>;

/** Which layers are on; both are, except where the lab switches `encoding` or `sanitize` turned one off. */
export type Layers = { encode: boolean; sanitize: boolean };

export type RendererDeps = {
  /** Worker threads for Markdown and DOMPurify; undefined only when both layers are off (the raw text is the HTML). */
  pool: SanitizerPool | undefined;
  layers: Layers;
  /** The same per-user buckets the frame reader takes from; undefined when rate limiting is off. */
  buckets: TokenBuckets | undefined;
  limits: { maxTags: number; maxDepth: number; maxHtmlChars: number; budgetMs: number; burst: number };
};

/** Markup tokens per extra rate-limit token, charged before parsing (a message of 2 tags costs nothing extra, of 100 tags 10). */
export const TAGS_PER_TOKEN = 10;

const refused = (code: Refusal, message: string): Rendered => ({ ok: false, code, message });
const TOO_COMPLEX = 'That message has too much formatting. Send it with less markup or nesting.';
const EMPTY = 'That message has nothing visible in it.';
const EXPENSIVE = 'Slow down: that message costs more than your remaining message budget.';
const IN_FLIGHT = 'Slow down: your earlier messages are still being formatted.';
const BUSY = 'The server is busy. Try again in a moment.';

/** Step 1: the one form of a message's text that is rendered, stored and sent. */
export function canonical(text: string): string {
  return text.toWellFormed().replaceAll('\0', '\uFFFD').replace(/\r\n?/g, '\n');
}

export function createMessageRenderer({ pool, layers, buckets, limits }: RendererDeps): RenderMessage {
  // Worker time is priced so that a message that uses its whole budget costs a whole burst.
  const msPerToken = limits.budgetMs / limits.burst;

  /** Renders (and/or sanitizes) in a worker; `prepaid` tokens were charged before, the rest is charged by time. */
  async function inWorker(workers: SanitizerPool, author: Author, text: string, format: 'markdown' | 'html', prepaid: number): Promise<Rendered> {
    const { user } = author;
    const result = await workers.render(text, { format, sanitize: layers.sanitize }, author);
    if (!result.ok) {
      // The sender's own share is taken: the truth is "slow down", not "the server is busy".
      if (result.reason === 'in_flight') return refused('rate_limited', IN_FLIGHT);
      if (result.reason === 'busy') return refused('server_busy', BUSY);
      // Over its time budget: the work was done (and a worker replaced); the sender pays a full burst.
      buckets?.charge(user, limits.burst);
      return refused('too_complex', TOO_COMPLEX);
    }
    const timed = Math.floor(result.ms / msPerToken);
    if (buckets && timed > prepaid) buckets.charge(user, timed - prepaid);
    if (!result.visible) return refused('empty_message', EMPTY);
    // Output bound: a message of links by the hundred renders to 15× its size, and every history page
    // of 50 such messages would be megabytes. Plain text never gets near it (at most 6× as &quot;).
    if (result.html.length > limits.maxHtmlChars) return refused('too_complex', TOO_COMPLEX);
    return { ok: true, text, html: result.html, cost: Math.max(prepaid, timed) };
  }

  return async (author, rawText) => {
    const text = canonical(rawText);
    if (!pool) return { ok: true, text, html: text, cost: 0 }; // lab: encoding and sanitize off — stored and broadcast as typed
    if (layers.encode) {
      if (needsMarkdown(text)) return inWorker(pool, author, text, 'markdown', 0);
      return hasVisibleText(text) ? { ok: true, text, html: escapeHtml(text), cost: 0 } : refused('empty_message', EMPTY);
    }

    // Lab switch `encoding` off: the text is HTML. Plain text (no `<`, no `&`) is already inert element content.
    if (text.indexOf('<') === -1 && text.indexOf('&') === -1) {
      return hasVisibleText(text) ? { ok: true, text, html: text, cost: 0 } : refused('empty_message', EMPTY);
    }
    const shape = markupShape(text, limits.maxTags);
    if (shape.tags > limits.maxTags || shape.depth > limits.maxDepth) return refused('too_complex', TOO_COMPLEX);
    const prepaid = Math.floor(shape.tags / TAGS_PER_TOKEN);
    if (buckets && prepaid > 0 && !buckets.take(author.user, prepaid)) return refused('rate_limited', EXPENSIVE);
    return inWorker(pool, author, text, 'html', prepaid);
  };
}
