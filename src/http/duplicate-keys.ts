/**
 * The first member name that appears twice in one JSON object of `text`, or undefined. RFC 8259 §4
 * leaves duplicate names to the parser (JSON.parse keeps the last); a broker that keeps the last while
 * a proxy or an audit reader in front keeps the first would decide on a field nobody checked, so
 * request bodies with one are refused (as RFC 7519 §4 allows for JWT claims, and RFC 6749 §3.1 requires
 * for form parameters).
 *
 * `text` must already be valid JSON (JSON.parse accepted it): this only walks its structure. Names are
 * compared decoded, so `"a"` and `"\u0061"` are the same name. One pass, no allocation but the names.
 */
export function duplicateKey(text: string): string | undefined {
  // per open container: the names seen so far (objects) or null (arrays)
  const stack: Array<Set<string> | null> = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      // the closing quote: the next one not escaped (an odd run of backslashes before it), found by
      // indexOf rather than a loop over every character (a PEM value is hundreds of them)
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return undefined; // (not valid JSON: JSON.parse refused it already)
        let k = i - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((i - 1 - k) % 2 === 0) break;
      }
      const names = stack[stack.length - 1];
      if (expectName && names) {
        const raw = text.slice(start, i + 1);
        const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}
