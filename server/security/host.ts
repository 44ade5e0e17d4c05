// The Host header a request names. Two checks, both cheap and exact:
// - exactly one Host header (RFC 9112 §3.2: a request with more than one is invalid and must
//   be answered 400; Node keeps the first and drops the rest silently, so a proxy and Parley
//   could each act on a different one);
// - at the upgrade gate, a Host that is one of APP_ORIGIN's hosts. A page on another name that
//   resolves to this server (DNS rebinding) gets no socket, even if it could send an
//   allowed-looking Origin. Compared against our own list, like the Origin (decision 003).
import type { IncomingMessage } from 'node:http';

export type HostVerdict = { ok: true } | { ok: false; reason: 'host_duplicate' | 'host_not_allowed' };

/** How many Host headers the request carried (rawHeaders keeps every one, in order). */
export function hostHeaderCount(req: IncomingMessage): number {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') count += 1;
  return count;
}

/** ASVS 4.4.2: the upgrade gate's Host check, against the hosts of the allowed origins. */
export function createHostCheck(appOrigins: readonly string[]): (req: IncomingMessage) => HostVerdict {
  // Origins are normalized (lowercase, default port dropped), so URL.host is what a browser sends.
  const allowed = new Set(appOrigins.map((origin) => new URL(origin).host));
  return (req) => {
    if (hostHeaderCount(req) !== 1) return { ok: false, reason: 'host_duplicate' };
    return allowed.has((req.headers.host ?? '').toLowerCase()) ? { ok: true } : { ok: false, reason: 'host_not_allowed' };
  };
}
