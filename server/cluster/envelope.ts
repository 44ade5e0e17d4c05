// Every message one instance puts on the shared bus is sealed: an HMAC-SHA256 over the
// channel and the body, with a key that is derived from SESSION_SECRET and never stored in
// Redis. Whoever can publish to Redis (a misconfigured ACL, a neighbour on an exposed port,
// a compromised cache) but does not hold the secret cannot inject a message, a revocation
// or a membership change: the receiving instance drops it unread (decision 013).
//
// Wire format (one Redis pub/sub payload):  v1.<MAC, base64url>.<body JSON>
// The MAC covers "<channel>\n<body JSON>", so an envelope cannot be replayed onto another channel.
import crypto from 'node:crypto';

const VERSION = 'v1';
const MAC_LENGTH = 43; // 32 bytes in base64url, unpadded

export type BusKey = Buffer & { readonly __busKey: unique symbol };

/**
 * HKDF-SHA256 from the session secret (which every instance must share anyway, for the
 * cookie signature), with its own label: the bus key is not the cookie key, and neither
 * can be computed from the other's uses.
 */
export function deriveBusKey(sessionSecret: string): BusKey {
  return Buffer.from(crypto.hkdfSync('sha256', sessionSecret, 'parley', 'parley cluster bus envelope v1', 32)) as BusKey;
}

function mac(key: BusKey, channel: string, body: string): string {
  return crypto.createHmac('sha256', key).update(channel).update('\n').update(body).digest('base64url');
}

export function seal(key: BusKey, channel: string, body: string): string {
  return `${VERSION}.${mac(key, channel, body)}.${body}`;
}

/** The body of an envelope whose MAC verifies for this channel; undefined for anything else. */
export function unseal(key: BusKey, channel: string, raw: string): string | undefined {
  if (!raw.startsWith(`${VERSION}.`) || raw.charAt(VERSION.length + 1 + MAC_LENGTH) !== '.') return undefined;
  const given = Buffer.from(raw.slice(VERSION.length + 1, VERSION.length + 1 + MAC_LENGTH));
  const body = raw.slice(VERSION.length + 2 + MAC_LENGTH);
  const expected = Buffer.from(mac(key, channel, body));
  return given.length === expected.length && crypto.timingSafeEqual(given, expected) ? body : undefined;
}
