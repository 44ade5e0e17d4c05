// ASVS 4.4.2 / 3.5.2, OWASP WebSocket cheat sheet: exact-match Origin allowlist.
// Used by the CSRF guard (state-changing HTTP requests) and by the upgrade gate.
// Why not "Origin host == Host header" (the OWASP Go example)? The Host header is
// chosen by the client, so a request can agree with itself; the allowlist is chosen
// by us. See docs/decisions/003-exact-origin-allowlist.md.

export type OriginVerdict = { ok: true } | { ok: false; reason: 'origin_missing' | 'origin_null' | 'origin_not_allowed' };

export function createOriginCheck(allowed: readonly string[]): (origin: string | undefined) => OriginVerdict {
  // Origins were normalized by config (scheme://host[:port], lowercase, default port dropped).
  // A browser sends the serialized origin in exactly that form, so a Set lookup is the whole
  // comparison: no prefix, suffix, substring or regex matching, which is where look-alike
  // origins (https://localhost:8443.evil.test, https://evil-localhost:8443) slip through.
  const set = new Set(allowed);
  return (origin) => {
    if (origin === undefined || origin === '') return { ok: false, reason: 'origin_missing' };
    if (origin === 'null') return { ok: false, reason: 'origin_null' }; // sandboxed iframes, file:, data:
    return set.has(origin) ? { ok: true } : { ok: false, reason: 'origin_not_allowed' };
  };
}
