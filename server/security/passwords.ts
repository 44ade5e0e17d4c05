// Password hashing and policy.
// ASVS 6.2 / 11.4.2, OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1
// (the cheat sheet's first option), via Node 24's built-in crypto.argon2 — no native
// add-on to build. Why argon2id and not scrypt: docs/decisions/002-password-hashing.md.
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../shared/protocol.ts';
import { isCommonPassword } from './common-passwords.ts';

const argon2 = promisify(crypto.argon2);

export const HASH_PARAMS = { memory: 19 * 1024, passes: 2, parallelism: 1, tagLength: 32 } as const;

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

/** PHC string format, so the parameters travel with the hash and can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const nonce = crypto.randomBytes(16);
  const tag = await argon2('argon2id', { message: password, nonce, ...HASH_PARAMS });
  const { memory: m, passes: t, parallelism: p } = HASH_PARAMS;
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(nonce)}$${b64(tag)}`;
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = PHC.exec(stored);
  if (!match) return false;
  const [, m, t, p, nonce, tag] = match as unknown as [string, string, string, string, string, string];
  const expected = Buffer.from(tag, 'base64');
  const actual = await argon2('argon2id', {
    message: password,
    nonce: Buffer.from(nonce, 'base64'),
    memory: Number(m),
    passes: Number(t),
    parallelism: Number(p),
    tagLength: expected.length,
  });
  return crypto.timingSafeEqual(actual, expected);
}

/** Verifying against this when the user does not exist keeps login timing uniform (no enumeration). */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(crypto.randomBytes(16).toString('hex'));
  return dummyHash;
}

/**
 * ASVS 6.2.1/6.2.9 and NIST 800-63B: length is what matters. At least 12 characters,
 * passphrases up to 1024, any characters (spaces, emoji), no composition rules; and not a
 * known breached password (ASVS 6.2.4).
 * Returns a human message when the password is refused.
 */
export function passwordPolicyError(password: string, username: string): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `Use at least ${PASSWORD_MIN_LENGTH} characters; a passphrase of a few words works well.`;
  if (length > PASSWORD_MAX_LENGTH) return `Use at most ${PASSWORD_MAX_LENGTH} characters.`;
  if (password.toLowerCase().includes(username.toLowerCase())) return 'The password must not contain the username.';
  if (/^(.)\1*$/u.test(password)) return 'The password must not be one repeated character.';
  // ASVS 6.2.4: not a breached password, nor one padded to length (common-passwords.ts).
  if (isCommonPassword(password)) {
    return 'That password is too common: it is on lists of breached passwords, or is one with digits, symbols or repeats added. A few unrelated words work well.';
  }
  return undefined;
}

/**
 * Hashing costs ~50 ms of CPU and 19 MiB each; bound how many run at once and how many
 * wait, so a burst of registrations or logins cannot exhaust memory or the thread pool.
 * Over the queue bound the caller answers 503 instead of queueing without end.
 */
export class HashLimiter {
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #maxConcurrent: number;
  readonly #maxQueue: number;

  constructor(maxConcurrent: number, maxQueue: number) {
    this.#maxConcurrent = maxConcurrent;
    this.#maxQueue = maxQueue;
  }

  /** Runs fn when a slot is free; resolves undefined at once if the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#running >= this.#maxConcurrent) {
      if (this.#waiting.length >= this.#maxQueue) return undefined;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running += 1;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next)
        next(); // hand the slot over
      else this.#running -= 1;
    }
  }
}
