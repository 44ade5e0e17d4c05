// JSON.parse keeps the last of two equal keys ({"user":"a","user":"b"} is {"user":"b"}), so a
// parser in front of Parley (a proxy, a WAF, a log pipeline) that keeps the first can see a
// different message than Parley acts on. Bodies with a duplicate key are refused instead.
// A linear scan, bounded by the text's length; it never throws, and says `false` for text
// that is not JSON (JSON.parse reports that).

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export function hasDuplicateKey(json: string): boolean {
  /** One entry per open container: the keys seen so far in an object, null for an array. */
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      while (end < json.length && json.charCodeAt(end) !== QUOTE) {
        if (json.charCodeAt(end) === BACKSLASH) {
          escaped = true;
          end += 1;
        }
        end += 1;
      }
      const keys = open.at(-1);
      if (expectKey && keys) {
        // "a" and "\u0061" are the same key: decode only when there is an escape.
        let key = json.slice(i + 1, end);
        if (escaped) {
          try {
            key = JSON.parse(json.slice(i, end + 1)) as string;
          } catch {
            return false;
          }
        }
        if (keys.has(key)) return true;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      open.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      open.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = open.at(-1) != null;
    }
  }
  return false;
}
