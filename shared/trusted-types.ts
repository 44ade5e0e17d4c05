// The Trusted Types policy names, in one place: the CSP (server/http/headers.ts) allows exactly
// these, and the client creates its policy by this name (client/render.ts). If the two ever
// differed, the browser would refuse the policy and every message would render as plain text.

/** The client's one policy for message HTML. */
export const MESSAGE_HTML_POLICY = 'parley';
/** DOMPurify creates its own policy, by this name, to parse inside a Trusted Types page. */
export const DOMPURIFY_POLICY = 'dompurify';
export const TRUSTED_TYPES_POLICIES = [MESSAGE_HTML_POLICY, DOMPURIFY_POLICY];
