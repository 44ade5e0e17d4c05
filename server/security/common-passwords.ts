// ASVS 6.2.4 / NIST 800-63B 3.1.1.2: a new password is checked against passwords known from
// breaches. The list is zxcvbn-ts's `passwords-common` (~49k, ranked by frequency in breach
// corpora, MIT, shipped in @zxcvbn-ts/language-common): offline, no call to a third party.
// Few of those meet the 12-character minimum as they stand; people meet a length rule by
// padding a common password ("password1234", "Summer2024!!", "letmeinletmein", "P@ssw0rd2024"),
// so each rule below undoes one kind of padding and looks the result up again. Each rule is
// linear or bounded: ≤ 0.5 ms on a crafted 1024-character input, where a full strength
// estimator (zxcvbn-ts) takes 0.3–0.9 s on crafted 32–64-character ones.
// Why this and not a strength meter or an online breach API: docs/decisions/010-common-passwords.md.
import { dictionary } from '@zxcvbn-ts/language-common';

/** The common letter-for-symbol swaps (l33t), undone on both sides of the lookup; 1, l and i are one letter. */
const LEET: Record<string, string> = { '@': 'a', '4': 'a', '3': 'e', '0': 'o', $: 's', '5': 's', '7': 't', '1': 'i', '!': 'i', l: 'i', '|': 'i' };
function unLeet(text: string): string {
  return text.replace(/[@430$571!l|]/g, (c) => LEET[c] ?? c);
}

const LIST = dictionary['passwords-common'];
/** Every entry lowercased and un-leeted, so "p@ssw0rd", "passw0rd" and "password" are one entry. */
const COMMON = new Set(LIST.map((p) => unLeet(p.toLowerCase())));
const LONGEST = Math.max(...LIST.map((p) => p.length));
const isListed = (text: string) => COMMON.has(unLeet(text));

/** Spaces and the separators people put between repeated or joined words. */
const SEPARATORS = /[\s._\-+*~,;:|/\\]+/gu;
const LETTER = /\p{L}/u;
/** NFKC can multiply a length (U+FDFA becomes 18 characters); no password this long is a padded entry. */
const NORMALIZE_UP_TO = 128;
/** The longest cut tried at either end; a cut longer than FREE_CUT counts only when it is a pattern. */
const MAX_CUT = 16;
/** "dragon" + 6 digits is padding; "dragon" + 20 random digits is entropy, not a common password. */
const FREE_CUT = 6;
/** What must be left after the cuts. */
const MIN_CORE = 4;

/** Digits, symbols, emoji: anything but a letter is what people add to a word to reach a length. */
function isPaddingAt(text: string, k: number): boolean {
  const c = text.charCodeAt(k);
  return c < 0x80 ? !(c >= 0x61 && c <= 0x7a) : !LETTER.test(text[k]!);
}

const isPadding = (cut: string) => cut.length <= FREE_CUT || isPattern(cut);

/** The text with every acceptable part of its leading and trailing padding cut off. */
function* unpadded(text: string): Generator<string> {
  const n = text.length;
  let lead = 0;
  while (lead < Math.min(n, MAX_CUT) && isPaddingAt(text, lead)) lead++;
  let trail = 0;
  while (trail < Math.min(n, MAX_CUT) && isPaddingAt(text, n - 1 - trail)) trail++;
  for (let i = 0; i <= lead; i++) {
    const before = text.slice(0, i);
    if (!isPadding(before)) continue;
    for (let j = 0; j <= Math.min(trail, n - i - MIN_CORE); j++) {
      const core = text.slice(i, n - j);
      const after = text.slice(n - j);
      // Longer than an entry repeated twice: nothing to look up.
      if (core.length > 2 * LONGEST || !isPadding(after)) continue;
      // A core without letters must be most of the text, or what was cut must be a pattern
      // ("1234" + "2024!!!!"): otherwise twelve random digits would match some listed date
      // or PIN somewhere inside them.
      if (LETTER.test(core) || core.length * 2 >= n || (isPattern(before) && isPattern(after))) yield core;
    }
  }
}

/** The shortest unit the text is a repetition of ("abcabc" → "abc"), or the text itself. */
function repeatedUnit(text: string): string {
  // Linear (KMP failure function), not /^(.+?)\1+$/, which is quadratic on a long input.
  const n = text.length;
  const border = new Int32Array(n);
  for (let i = 1, k = 0; i < n; i++) {
    while (k > 0 && text[i] !== text[k]) k = border[k - 1]!;
    if (text[i] === text[k]) k++;
    border[i] = k;
  }
  const period = n - (border[n - 1] ?? 0);
  return period < n && n % period === 0 ? text.slice(0, period) : text;
}

/** NIST 800-63B: sequential characters ("abcdefghijkl", "123456789012", "987654321098"). */
function isSequence(text: string): boolean {
  const codes = [...text].map((c) => c.codePointAt(0)!);
  if (codes.length < 3) return false;
  const step = (a: number, b: number) => (a === 0x39 && b === 0x30 ? 1 : a === 0x30 && b === 0x39 ? -1 : b - a);
  const first = step(codes[0]!, codes[1]!);
  return (first === 1 || first === -1) && codes.every((c, i) => i === 0 || step(codes[i - 1]!, c) === first);
}

/** Padding people type without thinking: a year, a sequence, a repeat, within any symbols. */
function isPattern(cut: string): boolean {
  const body = cut.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
  const unit = repeatedUnit(body);
  return body.length === 0 || /^(19|20)\d\d$/.test(unit) || isSequence(unit) || [...unit].length < 3;
}

/**
 * True when the password is a known breached password, or one padded to length with digits,
 * symbols, separators, repetition or letter-for-symbol swaps, or a sequence or short repeat.
 * Any composition is still allowed (ASVS 6.2.5): random letters, emoji or words pass; so do
 * twelve random digits, unless they happen to be a listed date or PIN plus a pattern (~0.6 %).
 */
export function isCommonPassword(password: string): boolean {
  const lower = (password.length <= NORMALIZE_UP_TO ? password.normalize('NFKC') : password).toLowerCase();
  const joined = lower.replace(SEPARATORS, '');
  const unit = repeatedUnit(joined);
  // NIST 800-63B: repetitive or sequential characters ("abcdabcdabcd", "123456789012").
  if ([...unit].length <= 4 || isSequence(unit)) return true;
  for (const form of new Set([lower, joined, unit])) {
    for (const core of unpadded(form)) if (isListed(core) || isListed(repeatedUnit(core))) return true;
  }
  return false;
}
