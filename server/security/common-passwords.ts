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

/** The common letter-for-symbol swaps (l33t), undone on both sides of the lookup. */
const LEET: Record<string, string> = { '@': 'a', '4': 'a', '3': 'e', '0': 'o', $: 's', '5': 's', '7': 't', '1': 'i', '!': 'i' };
function unLeet(text: string): string {
  return text.replace(/[@430$571!]/g, (c) => LEET[c] ?? c);
}

const LIST = dictionary['passwords-common'];
/** Every entry lowercased and un-leeted, so "p@ssw0rd" and "password" are one entry. */
const COMMON = new Set(LIST.map((p) => unLeet(p.toLowerCase())));
const LONGEST = Math.max(...LIST.map((p) => p.length));
const isListed = (text: string) => COMMON.has(unLeet(text));

/** Spaces and the separators people put between repeated or joined words. */
const SEPARATORS = /[\s._\-+*~,;:|/\\]+/gu;
/** ASCII digits and symbols are what people add before or after a word to reach a length (not emoji). */
const isPadding = (c: number) => c < 0x80 && !(c >= 0x61 && c <= 0x7a);
/** The longest cut that still counts as thoughtless padding. */
const MAX_PATTERN = 16;
/** What must be left after the cuts. */
const MIN_CORE = 4;
const HAS_LETTER = /\p{L}/u;
/** People prepend little; this bounds the cuts tried on a long all-digit input. */
const MAX_LEADING_CUT = 8;

/** The text with every possible part of its leading and trailing digits and symbols cut off. */
function* unpadded(text: string): Generator<string> {
  const n = text.length;
  let lead = 0;
  while (lead < Math.min(n, MAX_LEADING_CUT) && isPadding(text.charCodeAt(lead))) lead++;
  let trail = 0;
  while (trail < n && isPadding(text.charCodeAt(n - 1 - trail))) trail++;
  for (let i = 0; i <= lead; i++) {
    // Only cuts that leave at most LONGEST characters can match an entry.
    for (let j = Math.max(0, n - i - LONGEST); j <= Math.min(trail, n - i - MIN_CORE); j++) {
      const core = text.slice(i, n - j);
      // A core without letters must be most of the text, or what was cut must be a pattern
      // ("1234" + "2024!!!!"): otherwise twelve random digits would match some listed date
      // or PIN somewhere inside them.
      if (HAS_LETTER.test(core) || core.length * 2 >= n || (isPattern(text.slice(0, i)) && isPattern(text.slice(n - j)))) yield core;
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
  if (cut.length > MAX_PATTERN) return false; // bounds the work on a long crafted input
  const body = cut.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
  const unit = repeatedUnit(body);
  return body.length === 0 || /^(19|20)\d\d$/.test(body) || isSequence(unit) || [...unit].length < 3;
}

/**
 * True when the password is a known breached password, or one padded to length with digits,
 * symbols, separators, repetition or letter-for-symbol swaps, or a sequence or short repeat.
 * Any composition is still allowed (ASVS 6.2.5): random letters, emoji or words pass; so do
 * twelve random digits, unless they happen to be a listed date or PIN plus a pattern (~0.6 %).
 */
export function isCommonPassword(password: string): boolean {
  const lower = password.normalize('NFKC').toLowerCase();
  const joined = lower.replace(SEPARATORS, '');
  if (isSequence(joined)) return true;
  const unit = repeatedUnit(joined);
  if ([...unit].length < 4) return true;
  for (const form of new Set([lower, joined, unit, unit + unit])) {
    for (const candidate of unpadded(form)) if (isListed(candidate)) return true;
  }
  return false;
}
