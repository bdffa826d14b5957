/** Identifier shapes: strict, ASCII-only, so confusables and traversal never pass as identities. */
import { describe, expect, it } from 'vitest';
import { isAgentPattern, isSpiffeId, matchesAgentPattern } from '../../src/ids/spiffe.js';
import { isPrincipal, isScopeToken, splitList } from '../../src/ids/tokens.js';
import { claimAt, claimsMatch } from '../../src/attest/match.js';

describe('SPIFFE IDs', () => {
  it('accepts well-formed IDs', () => {
    for (const ok of ['spiffe://example.org/a', 'spiffe://td/ns/x/sa/y', 'spiffe://a-b_c.d/x.y-z_1']) expect(isSpiffeId(ok)).toBe(true);
  });
  it('rejects malformed IDs', () => {
    for (const bad of ['spiffe://example.org', 'spiffe://example.org/', 'spiffe://Example.org/a', 'spiffe://td/a/', 'spiffe://td//a', 'spiffe://td/./a', 'spiffe://td/../a', 'spiffe://td/a%2Fb', 'spiffe://td/a?b', 'spiffe://td/a#b', 'http://td/a', 'spiffe://td/аdmin', 'spiffe://user@td/a', 'spiffe://td:443/a', `spiffe://td/${'a'.repeat(2100)}`])
      expect(isSpiffeId(bad), bad).toBe(false);
  });
  it('matches agent patterns by exact ID or strict path prefix', () => {
    expect(matchesAgentPattern('spiffe://td/agent/*', 'spiffe://td/agent/a')).toBe(true);
    expect(matchesAgentPattern('spiffe://td/agent/*', 'spiffe://td/agent/a/b')).toBe(true);
    expect(matchesAgentPattern('spiffe://td/agent/*', 'spiffe://td/agent')).toBe(false);
    expect(matchesAgentPattern('spiffe://td/agent/*', 'spiffe://td/agents/a')).toBe(false);
    expect(matchesAgentPattern('spiffe://td/agent/a', 'spiffe://td/agent/a')).toBe(true);
    expect(isAgentPattern('spiffe://td/*')).toBe(false);
    expect(isAgentPattern('spiffe://td/a/*/b')).toBe(false);
  });
});

describe('scope tokens and principals', () => {
  it('accepts RFC 6749 scope-tokens only', () => {
    expect(isScopeToken('repo:read')).toBe(true);
    for (const bad of ['', 'a b', 're\u0430d', 'a"b', 'a\\b', 'a\u0000', 'x'.repeat(129)]) expect(isScopeToken(bad)).toBe(false);
  });
  it('splits lists strictly', () => {
    expect(splitList('a b a')).toEqual(['a', 'b']);
    expect(splitList('a  b')).toBeNull();
  });
  it('accepts kind:value principals in ASCII', () => {
    expect(isPrincipal('user:alice@example.com')).toBe(true);
    for (const bad of ['alice', 'user:', 'User:x', 'user:ali ce', 'user:аlice']) expect(isPrincipal(bad)).toBe(false);
  });
});

describe('registration selectors', () => {
  it('matches exact values, globs and nested claims', () => {
    const claims = { sub: 'system:serviceaccount:ns:sa', repo: 'org/app', 'kubernetes.io': { namespace: 'agents' }, groups: ['a', 'b'], n: 3 };
    expect(claimAt(claims, 'kubernetes.io.namespace')).toBe('agents');
    expect(claimsMatch({ sub: 'system:serviceaccount:ns:*', 'kubernetes.io.namespace': 'agents' }, claims)).toBe(true);
    expect(claimsMatch({ repo: 'org/*' }, claims)).toBe(true);
    expect(claimsMatch({ repo: 'org/?pp' }, claims)).toBe(true);
    expect(claimsMatch({ repo: 'org.app' }, claims)).toBe(false); // '.' is literal
    expect(claimsMatch({ groups: 'b' }, claims)).toBe(true);
    expect(claimsMatch({ n: 3 }, claims)).toBe(true);
    expect(claimsMatch({ n: '3' }, claims)).toBe(false);
    expect(claimsMatch({ missing: '*' }, claims)).toBe(false);
  });
});
