/**
 * RFC 7662 introspection: `active: true` only while the token is unexpired, signed by us, not revoked,
 * its task open, its identity not locked and its principal not revoked, all decided by revoke/active.ts
 * at the moment of the call. A store outage is an error (503), never `active: false` or `true`.
 */
import type { Broker } from '../broker.js';
import { verdict, type Verdict } from './active.js';
import type { AccessTokenClaims } from '../issue/access-token.js';

export type Introspection = { active: false } | ({ active: true; token_type: 'Bearer' | 'DPoP'; nbf?: number } & AccessTokenClaims);

export async function checkToken(b: Broker, token: string): Promise<{ claims?: AccessTokenClaims; verdict: Verdict }> {
  const now = b.clock.now();
  const v = b.accessTokens.verify(token, now);
  if (!v.ok) return { verdict: { active: false, reason: v.reason === 'expired' ? 'expired' : 'invalid' } };
  const c = v.claims;
  const facts = await b.store.facts({
    taskId: c.task_id,
    jti: c.jti,
    identity: c.client_id,
    ...(c.act ? { principal: c.sub } : {}),
    ...(c.lineage?.length ? { lineage: { jtis: c.lineage.map((l) => l.jti), identities: c.lineage.map((l) => l.client_id) } } : {}),
  });
  return { claims: c, verdict: verdict(c, facts, now) };
}

export async function introspect(b: Broker, token: string): Promise<Introspection> {
  const { claims, verdict: v } = await checkToken(b, token);
  if (!v.active || !claims) return { active: false };
  return { active: true, token_type: claims.cnf && 'jkt' in claims.cnf ? 'DPoP' : 'Bearer', ...claims }; // RFC 9449 §6.2; RFC 8705 keeps Bearer
}
