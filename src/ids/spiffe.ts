/**
 * SPIFFE IDs (SPIFFE ID spec §2): `spiffe://<trust-domain>/<path>`. Trust domain: lowercase letters,
 * digits, `.`, `-`, `_`. Path segments: letters, digits, `.`, `-`, `_`; no empty, `.` or `..` segment,
 * no trailing slash, no percent-encoding, no query or fragment. ASCII only, so confusable Unicode never
 * passes as an identity.
 */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_LEN = 2048;

export interface SpiffeId {
  trustDomain: string;
  path: string;
}

export function parseSpiffeId(s: unknown): SpiffeId | null {
  if (typeof s !== 'string' || s.length > MAX_LEN || !s.startsWith('spiffe://')) return null;
  const rest = s.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (!TRUST_DOMAIN.test(td)) return null;
  if (slash === -1) return null; // a workload ID has a path
  const path = rest.slice(slash);
  const segs = path.slice(1).split('/');
  for (const seg of segs) if (!SEGMENT.test(seg) || seg === '.' || seg === '..') return null;
  return { trustDomain: td, path };
}

export const isSpiffeId = (s: unknown): s is string => parseSpiffeId(s) !== null;

/**
 * An agent pattern of a task: an exact SPIFFE ID, or one ending in `/*` that matches every ID strictly
 * below that path prefix (`spiffe://td/agents/*` matches `spiffe://td/agents/a` and `.../agents/a/b`).
 */
export function isAgentPattern(p: unknown): p is string {
  return typeof p === 'string' && patternId(p) !== null;
}

/** The SPIFFE ID an agent pattern is, or names the prefix of (null when it is neither). */
function patternId(p: string): SpiffeId | null {
  return parseSpiffeId(p.endsWith('/*') ? p.slice(0, -2) : p);
}

/** The trust domain of a SPIFFE ID or agent pattern (undefined for neither). */
export const trustDomainOf = (p: string): string | undefined => patternId(p)?.trustDomain;

export function matchesAgentPattern(pattern: string, id: string): boolean {
  if (pattern.endsWith('/*')) return id.startsWith(pattern.slice(0, -1)) && id.length > pattern.length - 1;
  return pattern === id;
}

/** Is every ID matched by `inner` also matched by `outer`? (`a/b/*` is within `a/*`; an exact ID within a pattern that matches it) */
export function patternWithin(inner: string, outer: string): boolean {
  if (!inner.endsWith('/*')) return matchesAgentPattern(outer, inner);
  if (!outer.endsWith('/*')) return false;
  return inner.slice(0, -1).startsWith(outer.slice(0, -1));
}
