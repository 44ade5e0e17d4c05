// Server-side HTML sanitizer for chat messages. Runs once per message, before the
// message is stored and broadcast; the browser sanitizes again with the same policy
// (shared/sanitize-policy.ts) before rendering.
// ASVS 1.3.1: untrusted HTML goes through a well-known sanitizer (DOMPurify) with a
// strict allowlist; nothing else in the server builds message HTML.
//
// The server runs this inside worker threads (sanitizer-pool.ts, sanitize-worker.ts), one
// window per worker, so that a costly message never holds the event loop that serves everyone.
//
// Memory: jsdom keeps every document parsed in one synchronous job alive until that
// job ends (WeakRef + V8's KeepDuringJob set), 10–20 KB per message. One message per
// I/O callback is fine; loops must yield. See docs/decisions/004-sanitizer-memory.md.
import createDOMPurify from 'dompurify';
import { JSDOM } from 'jsdom';
import { SANITIZE_CONFIG, installLinkHook } from '../../shared/sanitize-policy.ts';

// One long-lived window for the life of the process. Recreating it does not release
// anything sooner (the decision record measures this) and costs a full window each time.
// jsdom defaults matter here: no script execution, no subresource loading.
const { window } = new JSDOM('');
const purify = createDOMPurify(window);

// Fail closed: an unsupported environment makes DOMPurify return its input unchanged.
if (!purify.isSupported) {
  throw new Error('DOMPurify is not supported on this jsdom window; refusing to start without a sanitizer');
}
// Parse the config once rather than on every call; the instance is private to this module.
purify.setConfig(SANITIZE_CONFIG);
installLinkHook(purify);

/**
 * Sanitize one chat message into the HTML fragment that is stored and broadcast.
 * The result is meant to be inserted as element content (innerHTML), never into an attribute.
 */
export function sanitizeMessage(text: string): string {
  if (typeof text !== 'string') throw new TypeError('sanitizeMessage expects a string');

  // Plain-text fast path: most chat messages. In the HTML tokenizer's data state only
  // `<` (markup) and `&` (character references) are special; `>`, `"` and `'` are
  // ordinary text there, so a string without `<` and `&` is already inert element
  // content that needs no parser — and allocates no document. (It would only be unsafe
  // inside an attribute value, which is not how message HTML is ever used.)
  if (text.indexOf('<') === -1 && text.indexOf('&') === -1) return text;

  try {
    return purify.sanitize(text);
  } finally {
    // DOMPurify.removed keeps the nodes it removed in the last call, and through them
    // that call's whole document (and the sender's removed markup) until the next call.
    // Reset it so nothing outlives the call. Only text is kept: no documents, no nodes.
    if (purify.removed.length > 0) purify.removed = [];
  }
}

/**
 * The text a sanitized fragment shows (tags gone, character references decoded), for the
 * "nothing visible" check (visible-text.ts). Parses only what sanitizeMessage returned.
 */
export function textOfSanitized(html: string): string {
  if (html.indexOf('<') === -1 && html.indexOf('&') === -1) return html;
  const template = window.document.createElement('template');
  template.innerHTML = html;
  return template.content.textContent ?? '';
}

/**
 * Sanitize many messages (history import, benchmarks, tests) without the synchronous-job
 * artefact: yields a macrotask every `yieldEvery` messages so V8 can release the parsed
 * documents (a resolved `await` or queueMicrotask is not enough; setImmediate is) and so
 * other I/O gets a turn. The live server does not need this: it sanitizes one message
 * per WebSocket frame handler.
 */
export async function sanitizeMany(texts: Iterable<string>, yieldEvery = 100): Promise<string[]> {
  if (!Number.isInteger(yieldEvery) || yieldEvery < 1) throw new RangeError('yieldEvery must be a positive integer');
  const out: string[] = [];
  let sinceYield = 0;
  for (const text of texts) {
    out.push(sanitizeMessage(text));
    if (++sinceYield === yieldEvery) {
      sinceYield = 0;
      await new Promise(setImmediate);
    }
  }
  return out;
}
