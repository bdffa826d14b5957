/**
 * Shapes of the small strings users send: scope and tool names (RFC 6749 §3.3 scope-token: printable
 * ASCII but space, `"` and `\`), audiences (printable ASCII URIs or names), principals (`kind:value`).
 * ASCII-only by design: no homoglyph of `admin` ever matches a ceiling.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
const AUDIENCE = /^[\x21-\x7E]{1,512}$/;
const PRINCIPAL = /^[a-z][a-z0-9_-]{0,31}:[\x21-\x7E]{1,256}$/;

export const isScopeToken = (s: unknown): s is string => typeof s === 'string' && SCOPE_TOKEN.test(s);
export const isAudience = (s: unknown): s is string => typeof s === 'string' && AUDIENCE.test(s);
export const isPrincipal = (s: unknown): s is string => typeof s === 'string' && PRINCIPAL.test(s);

/** Splits a space-delimited list (RFC 6749 §3.3), rejecting empty items from doubled spaces. */
export function splitList(s: string): string[] | null {
  if (s === '') return [];
  const parts = s.split(' ');
  return parts.some((p) => p === '') ? null : [...new Set(parts)];
}
