// From what a user typed to the HTML that is stored and broadcast, or a refusal. Everything a
// `send` costs is decided here, in this order:
// 1. Well-formed text first (String.prototype.toWellFormed: a lone surrogate becomes U+FFFD),
//    so the live broadcast and the stored copy are the same text on every store.
// 2. Plain text (no `<`, no `&`) is already inert element content: no parser, on this thread.
// 3. Markup is measured before it is parsed (markup-shape.ts): too many tags or too deep a
//    nesting is refused (`too_complex`) without parsing; the rest is charged to the sender's
//    rate budget by its size (tokens before the work), then sanitized in a worker thread
//    within a time budget (sanitizer-pool.ts), then charged by the time it took (debt after).
// 4. Nothing visible left (only removed tags, white space, zero-width or filler characters)
//    is refused (`empty_message`), not stored as an empty message.
// ASVS 1.3.1 (sanitize with a well-known library and the one policy), OWASP WS cheat sheet
// (limit the resources one client may use). Why: docs/decisions/011-sanitizer-worker-pool.md.
import { markupShape } from './markup-shape.ts';
import type { TokenBuckets } from './rate-limit.ts';
import type { SanitizerPool } from './sanitizer-pool.ts';
import { hasVisibleText } from './visible-text.ts';

export type Refusal = 'too_complex' | 'empty_message' | 'rate_limited' | 'server_busy';

/** `cost`: rate-limit tokens this message was charged on top of its frame's one. */
export type Rendered = { ok: true; html: string; cost: number } | { ok: false; code: Refusal; message: string };

export type RenderMessage = (user: string, text: string) => Promise<Rendered>;

export type RendererDeps = {
  /** undefined: the lab switch PARLEY_UNSAFE_DISABLE=sanitize — the raw text is the HTML. */
  pool: SanitizerPool | undefined;
  /** The same per-user buckets the frame reader takes from; undefined when rate limiting is off. */
  buckets: TokenBuckets | undefined;
  limits: { maxTags: number; maxDepth: number; budgetMs: number; burst: number };
};

/** Markup tokens per extra rate-limit token, charged before parsing (a message of 2 tags costs nothing extra, of 100 tags 10). */
export const TAGS_PER_TOKEN = 10;

const refused = (code: Refusal, message: string): Rendered => ({ ok: false, code, message });
const TOO_COMPLEX = 'That message has too much markup. Send it with fewer tags or less nesting.';
const EMPTY = 'That message has nothing visible in it.';
const EXPENSIVE = 'Slow down: that message costs more than your remaining message budget.';

export function createMessageRenderer({ pool, buckets, limits }: RendererDeps): RenderMessage {
  // Worker time is priced so that a message that uses its whole budget costs a whole burst.
  const msPerToken = limits.budgetMs / limits.burst;

  return async (user, rawText) => {
    const text = rawText.toWellFormed();
    if (!pool) return { ok: true, html: text, cost: 0 }; // lab switch: stored and broadcast as typed
    if (text.indexOf('<') === -1 && text.indexOf('&') === -1) {
      return hasVisibleText(text) ? { ok: true, html: text, cost: 0 } : refused('empty_message', EMPTY);
    }

    const shape = markupShape(text, limits.maxTags);
    if (shape.tags > limits.maxTags || shape.depth > limits.maxDepth) return refused('too_complex', TOO_COMPLEX);
    const prepaid = Math.floor(shape.tags / TAGS_PER_TOKEN);
    if (buckets && prepaid > 0 && !buckets.take(user, prepaid)) return refused('rate_limited', EXPENSIVE);

    const result = await pool.sanitize(text);
    if (!result.ok) {
      if (result.reason === 'busy') return refused('server_busy', 'The server is busy. Try again in a moment.');
      // Over its time budget: the work was done (and a worker replaced); the sender pays a full burst.
      buckets?.charge(user, limits.burst);
      return refused('too_complex', TOO_COMPLEX);
    }
    const timed = Math.floor(result.ms / msPerToken);
    if (buckets && timed > prepaid) buckets.charge(user, timed - prepaid);
    if (!result.visible) return refused('empty_message', EMPTY);
    return { ok: true, html: result.html, cost: Math.max(prepaid, timed) };
  };
}
