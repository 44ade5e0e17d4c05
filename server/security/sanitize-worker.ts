// The body of one sanitizer worker thread (run by piscina from sanitizer-pool.ts). Each worker
// renders a message's Markdown (markdown.ts) and sanitizes the HTML with its own jsdom window and
// DOMPurify instance (sanitize.ts, the one policy in shared/sanitize-policy.ts). A worker handles one task at a time; each task arrives as its
// own message event, i.e. its own macrotask, so the documents it parsed are released when it
// returns (docs/decisions/004-sanitizer-memory.md). The pool must therefore not use piscina's
// Atomics wait loop, which runs task after task inside one job.
import { getHeapStatistics } from 'node:v8';
import { renderMarkdown } from './markdown.ts';
import { sanitizeMessage, textOfSanitized } from './sanitize.ts';
import { hasVisibleText } from './visible-text.ts';

/**
 * What a message is: `markdown` (the default: text with a formatting subset, encoded) or `html`
 * (the lab switch `encoding` off: the text is taken as HTML). `sanitize: false` is the lab switch
 * `sanitize` off. `times` is shared with the pool: the worker writes Date.now() into [0] when it
 * begins, into [1] when done.
 */
export type SanitizeTask = { text: string; format: 'markdown' | 'html'; sanitize: boolean; times: Float64Array };
export type SanitizeResult = { html: string; visible: boolean; ms: number };

// Warm-up at load, before the pool hands this worker anything: the first parses of a fresh
// isolate run cold (lazy jsdom/DOMPurify set-up, no optimized code) and would be timed
// against the budget and charged to whoever sent the first message.
for (let i = 0; i < 50; i++) {
  sanitizeMessage(`<b>warm ${i}</b> <a href="https://example.org/${i}">up</a> &amp; <u>x</u>`);
  sanitizeMessage(renderMarkdown(`**warm** ${i} _up_ \`x < y\` https://example.org/${i} [a](https://example.org)`));
}

/**
 * A cheap first look: a visible character outside tags and character references is visible
 * text for sure (the serializer escapes `<` and `>` inside attribute values, so a tag is `<…>`).
 * Only when this finds none does the worker parse the fragment to read its text.
 */
function hasVisibleMarkupText(html: string): boolean {
  return hasVisibleText(html.replace(/<[^>]*>|&(?:#\d+|#x[\da-f]+|\w+);/gi, ''));
}

/** Whether sanitized `html` shows anything: the cheap look first, the parse only when it finds nothing. */
export function showsText(html: string): boolean {
  return hasVisibleMarkupText(html) || hasVisibleText(textOfSanitized(html));
}

/** Render and sanitize one message; tells the pool when it starts, so the time budget counts work, not queueing. */
export default function sanitize({ text, format, sanitize, times }: SanitizeTask): SanitizeResult {
  times[0] = Date.now();
  const start = performance.now();
  const rendered = format === 'markdown' ? renderMarkdown(text) : text;
  const html = sanitize ? sanitizeMessage(rendered) : rendered;
  const visible = showsText(html);
  const ms = performance.now() - start;
  times[1] = Date.now();
  return { html, visible, ms };
}

/** Heap in use by this worker's isolate (bench and tests; call after the event loop turned). */
export async function heapUsed(): Promise<number> {
  await new Promise(setImmediate); // decision 004: only a macrotask releases the last job's documents
  (globalThis as { gc?: () => void }).gc?.();
  return getHeapStatistics().used_heap_size;
}
