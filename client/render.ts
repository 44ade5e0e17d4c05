// The ONLY module that writes HTML into the page. Everything else (usernames, room
// names, errors, timestamps) goes through textContent (ASVS 3.2.2).
//
// Message bodies arrive as HTML the server already sanitized. We sanitize again with
// the same allowlist (shared/sanitize-policy.ts) before rendering — defence in depth
// (ASVS 1.3.1) — and route the result through a Trusted Types policy named `parley`.
// The CSP (`require-trusted-types-for 'script'; trusted-types parley dompurify`) makes
// the browser refuse any other string written to innerHTML, so a future bug that
// skips this module fails loudly instead of opening an XSS hole.
import DOMPurify from 'dompurify';
import { SANITIZE_CONFIG, installLinkHook } from '../shared/sanitize-policy.ts';

// The minimal slice of the Trusted Types API we use. (TypeScript's DOM typings don't
// include it yet, and @types/trusted-types is only a transitive dependency.)
type TrustedHTMLValue = { readonly __brand: 'TrustedHTML' }; // opaque: only a policy makes one
type HtmlPolicy = { createHTML(input: string): TrustedHTMLValue };
type TrustedTypeFactory = {
  createPolicy(name: string, rules: { createHTML(input: string): string }): HtmlPolicy;
};

// Hooks are global to a DOMPurify instance. Use the default instance only: a second
// instance would try to create a second `dompurify` policy, which the CSP refuses.
installLinkHook(DOMPurify);

function sanitize(html: string): string {
  return DOMPurify.sanitize(html, SANITIZE_CONFIG);
}

type Renderer =
  | { kind: 'trusted-types'; policy: HtmlPolicy }
  | { kind: 'sanitized-string' } // no Trusted Types in this browser (e.g. Firefox < 148)
  | { kind: 'text-only' }; // no safe way to render HTML: show it as inert text

const renderer: Renderer = createRenderer();

function createRenderer(): Renderer {
  // ASVS 3.7.5: behave as documented when a security feature is missing — fail closed.
  if (!DOMPurify.isSupported) {
    console.error('Parley: DOMPurify is not supported in this browser; messages are shown as plain text.');
    return { kind: 'text-only' };
  }
  const factory = (globalThis as { trustedTypes?: TrustedTypeFactory }).trustedTypes;
  if (!factory) return { kind: 'sanitized-string' };
  try {
    return { kind: 'trusted-types', policy: factory.createPolicy('parley', { createHTML: sanitize }) };
  } catch (error) {
    // The CSP does not allow a policy named `parley` (or it already exists):
    // a deployment mistake. Without a policy, innerHTML would throw anyway.
    console.error('Parley: could not create the "parley" Trusted Types policy; messages are shown as plain text.', error);
    return { kind: 'text-only' };
  }
}

/** Render one chat message's (server-sanitized) HTML into `target`, sanitizing it again first. */
export function renderMessageHtml(target: Element, html: string): void {
  switch (renderer.kind) {
    case 'trusted-types':
      // innerHTML accepts TrustedHTML; TypeScript's DOM typings only know about strings.
      target.innerHTML = renderer.policy.createHTML(html) as unknown as string;
      break;
    case 'sanitized-string':
      target.innerHTML = sanitize(html);
      break;
    case 'text-only':
      target.textContent = html;
      return;
  }
  showLinkDestinations(target);
}

/**
 * Link text is the sender's to choose ("https://apple.com") and an IDN look-alike reads like
 * the real name: next to every link, show where it really goes — the host as the URL parser
 * sees it, so a look-alike appears in its punycode form (xn--…). Text only, outside the link
 * and in its own bidi isolate, so neither the link text nor a control character can cover it.
 */
function showLinkDestinations(target: Element): void {
  for (const link of target.querySelectorAll('a[href]')) {
    const destination = linkDestination(link.getAttribute('href') ?? '');
    const label = target.ownerDocument.createElement('span');
    label.className = 'link-host';
    label.dir = 'ltr';
    label.textContent = destination;
    label.title = `Link goes to ${destination}`;
    link.after(label);
  }
}

/** The host of an https: link (punycode for IDN), the address of a mailto: link. */
function linkDestination(href: string): string {
  try {
    const url = new URL(href);
    if (url.protocol === 'mailto:') return `mail to ${url.pathname}`;
    return url.host || url.href;
  } catch {
    return 'invalid link';
  }
}
