// Whether a message's text shows anything. A message of only `<script>…</script>`, zero-width
// spaces or Hangul fillers is stored and broadcast as an empty bubble (or a blank line that
// impersonates nothing and everything); it is refused instead (`empty_message`).
//
// Invisible here: white space (JS `\s`: every Unicode space separator, line and paragraph
// separators, NBSP, U+FEFF), Unicode's Default_Ignorable_Code_Point set (zero-width spaces and
// joiners, bidi controls, variation selectors, soft hyphen, U+115F/U+1160/U+3164/U+FFA0 Hangul
// fillers, tag characters), control characters, and U+2800 (braille blank, drawn as nothing).
const INVISIBLE = /^[\s\p{Default_Ignorable_Code_Point}\p{Cc}\u2800]*$/u;

/** `text` is the message's text content (for HTML: after sanitizing, entities decoded, tags gone). */
export function hasVisibleText(text: string): boolean {
  return !INVISIBLE.test(text);
}
