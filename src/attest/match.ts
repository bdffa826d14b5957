/**
 * Registration selectors: `match: {<claim>: <value or glob>}`. Every listed claim must match. A glob
 * may use `*` (any run of characters) and `?` (one character); other characters are literal. Claim
 * names may be dotted paths into nested claims (`kubernetes.io.namespace`); a literal key containing
 * dots wins over a nested path.
 */
const globCache = new Map<string, RegExp>();

function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
    globCache.set(glob, re);
  }
  return re;
}

export function claimAt(obj: unknown, path: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const rec = obj as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(rec, path)) return rec[path];
  for (let i = path.indexOf('.'); i !== -1; i = path.indexOf('.', i + 1)) {
    const head = path.slice(0, i);
    if (Object.prototype.hasOwnProperty.call(rec, head)) {
      const found = claimAt(rec[head], path.slice(i + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function valueMatches(expected: string | number | boolean, actual: unknown): boolean {
  if (Array.isArray(actual)) return actual.some((a) => valueMatches(expected, a));
  if (typeof expected === 'string') {
    if (typeof actual !== 'string') return false;
    return expected.includes('*') || expected.includes('?') ? globToRegExp(expected).test(actual) : expected === actual;
  }
  return expected === actual;
}

export function claimsMatch(match: Record<string, string | number | boolean>, claims: Record<string, unknown>): boolean {
  for (const [path, expected] of Object.entries(match)) if (!valueMatches(expected, claimAt(claims, path))) return false;
  return true;
}
