// Session ids are stored, indexed and broadcast only as SHA-256 hashes: a copy of the
// database, a Redis dump or a pub/sub listener does not hand out live sessions
// (ASVS 7.2.x: session tokens are secrets). Every backend uses this one function, so a
// hash computed on one instance finds the same session on another.
import crypto from 'node:crypto';

export function sessionIdHash(sid: string): string {
  return crypto.createHash('sha256').update(sid).digest('base64url');
}
