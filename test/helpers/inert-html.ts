// What a browser would build from an HTML string, checked against the message policy.
// Written out here, independently of shared/sanitize-policy.ts, so a loosened policy
// fails the tests that use it (sanitize, xss-pipeline, client-render).
import { JSDOM } from 'jsdom';

const HTML_NS = 'http://www.w3.org/1999/xhtml';
const ALLOWED_ELEMENTS = new Set(['b', 'i', 'em', 'strong', 'code', 'pre', 'a']);
const ALLOWED_ATTRIBUTES = new Set(['href', 'rel', 'target']);
const SAFE_HREF = /^(?:https:\/\/|mailto:)/i;
const SAFE_PROTOCOLS = new Set(['https:', 'mailto:']);
const LINK_REL = 'noopener noreferrer nofollow';

/**
 * Everything in `html` a browser would build that the message policy forbids. Parsed in a
 * fresh jsdom window (no scripts run, nothing is fetched): once as a <template>'s
 * innerHTML, as a client inserts a message, and once as a whole document, which also
 * shows what would be hoisted into <head> or onto <body>.
 */
export function violations(html: string): string[] {
  const dom = new JSDOM('');
  try {
    const { document } = dom.window;
    const found: string[] = [];
    const template = document.createElement('template');
    template.innerHTML = html;
    walk(template.content, found);
    const doc = new dom.window.DOMParser().parseFromString(html, 'text/html');
    for (const el of [doc.documentElement, doc.head, doc.body]) {
      for (const attr of Array.from(el.attributes)) found.push(`<${el.localName}> carries ${attr.name}`);
    }
    if (doc.head.childNodes.length > 0) found.push('content hoisted into <head>');
    walk(doc.body, found);
    return found;
  } finally {
    dom.window.close();
  }
}

function walk(parent: Node, found: string[]): void {
  for (const node of Array.from(parent.childNodes)) {
    if (node.nodeType === node.TEXT_NODE) continue;
    if (node.nodeType !== node.ELEMENT_NODE) {
      found.push(`node type ${node.nodeType} (${node.nodeName})`);
      continue;
    }
    const el = node as Element;
    if (el.namespaceURI !== HTML_NS || !ALLOWED_ELEMENTS.has(el.localName)) {
      found.push(`element <${el.localName}> in ${el.namespaceURI}`);
    }
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on')) found.push(`event handler ${attr.name} on <${el.localName}>`);
      else if (!ALLOWED_ATTRIBUTES.has(name)) found.push(`attribute ${attr.name} on <${el.localName}>`);
      if (name === 'href') {
        if (!SAFE_HREF.test(attr.value)) found.push(`href ${JSON.stringify(attr.value)}`);
        const url = URL.parse(attr.value);
        if (url !== null && !SAFE_PROTOCOLS.has(url.protocol)) found.push(`href resolves to ${url.protocol}`);
      }
    }
    // Every link opens a new tab without opener or referrer. (An <a> without href is an inert
    // anchor, not a link; the policy strips rel/target from it.)
    if (el.localName === 'a' && el.hasAttribute('href')) {
      if (el.getAttribute('rel') !== LINK_REL) found.push(`<a> with rel=${JSON.stringify(el.getAttribute('rel'))}`);
      if (el.getAttribute('target') !== '_blank') found.push(`<a> with target=${JSON.stringify(el.getAttribute('target'))}`);
    }
    if (el.localName === 'template') walk((el as HTMLTemplateElement).content, found);
    walk(el, found);
  }
}
