// Keys for other purposes than signing the session cookie, derived from SESSION_SECRET, so a
// deployment keeps one secret and every instance derives the same keys. HKDF with a distinct
// label per purpose: a value made for one purpose never verifies for another, and none of
// them reveals the session secret (NIST SP 800-108 / RFC 5869 key separation).
import crypto from 'node:crypto';

export type KeyPurpose = 'device-cookie' | 'log-pseudonym';

export function deriveKey(secret: string, purpose: KeyPurpose): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', secret, 'parley', `parley ${purpose} v1`, 32));
}
