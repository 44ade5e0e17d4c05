// The most expensive chat messages we found within MAX_TEXT_LENGTH (2,000 characters), by
// measurement (docs/decisions/011-sanitizer-worker-pool.md lists each with its cost on the main
// thread). Shared by the hostile-sender bench scenario and test/abuse/hostile-sender.test.ts.

const fill = (unit: string, prefix = '') => prefix + unit.repeat(Math.floor((2000 - prefix.length) / unit.length));

/** 250–350 ms each in jsdom + DOMPurify on one thread (2-core EPYC VM); refused by the shape bounds. */
export const OVER_BOUNDS = [
  fill('<table><td>x'), // nested tables: each removed element re-parents the rest
  fill('<b><u>x'), // an allowed and a removed tag, alternating
  fill('<s>x', '<table>'), // foster-parented formatting
  fill('<q>x'),
  fill('<u>x'),
];

/** The costliest shape within the default bounds (96 tags, nesting 16): ~10 ms; it is parsed, in a worker. */
export const WITHIN_BOUNDS = ('<table><td>x'.repeat(8) + '</td></table>'.repeat(8)).repeat(3);

/**
 * A message is text with a Markdown subset (decision 019): the HTML shapes above are now cheap text
 * unless the lab switch `encoding` is off. The costliest Markdown found: links by the hundred —
 * linkify, then DOMPurify on each link. 20–130 ms each, in a worker, within the time budget; most
 * then render past SANITIZE_MAX_HTML_CHARS and are refused too_complex after the work (the cost is charged).
 */
export const COSTLY_MARKDOWN = [fill('a@b.co '), fill('https://a.b '), fill('x@y.zz https://q.r '), fill('<a@b>')];

export const WORST_CASE = [...OVER_BOUNDS, WITHIN_BOUNDS, ...COSTLY_MARKDOWN];
