// What a failed login may log as the user. The typed name only when that account exists;
// otherwise a keyed hash, because people type passphrases into the username field
// (ASVS 16.2.5: no credentials in logs). Keyed (HMAC), so a leaked log cannot be reversed by
// hashing a dictionary; stable, so an operator can still see one unknown name tried 500
// times. The "unknown:" prefix cannot be a username (NAME_PATTERN has no ":").
import crypto from 'node:crypto';

export type Pseudonym = (typed: string) => string;

export function createPseudonym(key: Buffer): Pseudonym {
  // 64 bits: enough to tell names apart in a log, too few to be a usable fingerprint elsewhere.
  return (typed) => `unknown:${crypto.createHmac('sha256', key).update(typed, 'utf8').digest('hex').slice(0, 16)}`;
}
