// The one HTML allowlist for chat messages. The server sanitizes with it before a
// message is stored (server/security/sanitize.ts); the browser sanitizes again with
// the same policy before rendering (client/render.ts) — defence in depth, one rule.
// ASVS 1.3.1: sanitize untrusted HTML with a well-known library and a strict allowlist.
import type { Config, DOMPurify } from 'dompurify';

export const ALLOWED_TAGS = ['b', 'i', 'em', 'strong', 'code', 'pre', 'a'];
export const ALLOWED_ATTR = ['href', 'rel', 'target'];
/** Only absolute https: and mailto: links; no javascript:, data:, relative or protocol-relative URLs. */
export const ALLOWED_URI_REGEXP = /^(?:https:\/\/|mailto:)/i;

export const SANITIZE_CONFIG = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOWED_URI_REGEXP,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  KEEP_CONTENT: true, // unknown tags are unwrapped, their text kept (DOMPurify still drops the content of script, style, svg, math…)
  USE_PROFILES: false,
} satisfies Config;

/** What every link carries: no opener, no referrer, and no ranking credit for whoever posted it. */
export const LINK_REL = 'noopener noreferrer nofollow';

/** Force safe link behaviour on every surviving <a>: new tab, no opener, no referrer. */
export function installLinkHook(purify: DOMPurify): void {
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      // DOMPurify lets an empty href through (`<a href="">` is "safe": it links back to this page);
      // the rule here is absolute https:/mailto: only, so it goes like any other href that fails it.
      const href = node.getAttribute('href');
      if (href !== null && !ALLOWED_URI_REGEXP.test(href)) node.removeAttribute('href');
      if (!node.hasAttribute('href')) {
        node.removeAttribute('rel');
        node.removeAttribute('target');
        return;
      }
      node.setAttribute('rel', LINK_REL);
      node.setAttribute('target', '_blank');
    }
  });
}
