/**
 * RFC 9068 JWT access tokens: `typ: at+jwt`, claims iss, sub, aud, exp, iat, jti, client_id, scope,
 * plus Mayfly's task_id and tools. With an `on_behalf_of` principal, `sub` is that principal and `act`
 * names the agent (RFC 8693 §4.1); without one, `sub` is the agent itself.
 */
import type { Keyring } from '../keys/keyring.js';
import { decodeOwnFormat, signCompact, verifySignature } from './jws.js';

export const ACCESS_TOKEN_TYP = 'at+jwt';

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  /** Never set by the broker; honoured when present (RFC 7519 §4.1.5). */
  nbf?: number;
  jti: string;
  client_id: string;
  scope: string;
  task_id: string;
  tools: string[];
  /** RFC 8693 §4.1: the current actor; `act.act` the actor before it (delegation), and so on. */
  act?: Actor;
  /**
   * Delegation (Mayfly): the tokens this one was derived from, nearest first. The token is active only
   * while each of them would be: none revoked, none of their agents locked (revoke/active.ts).
   */
  lineage?: LineageLink[];
  /** What the token is bound to: a DPoP key (RFC 9449 §6.1) or a client certificate (RFC 8705 §3.1). */
  cnf?: Confirmation;
  /**
   * RFC 8693 §4.4: who may act with this token, i.e. receive it by delegation: `{sub}` for one party,
   * a list of them for several (Mayfly extension; a `sub` ending in `/*` covers a SPIFFE ID prefix).
   */
  may_act?: MayAct | MayAct[];
}

export interface MayAct {
  sub: string;
}

/** The `may_act` claim for these actor patterns (one object for one, a list for several). */
export const mayActClaim = (patterns: readonly string[]): MayAct | MayAct[] | undefined =>
  patterns.length === 0 ? undefined : patterns.length === 1 ? { sub: patterns[0]! } : patterns.map((sub) => ({ sub }));

/** The actor patterns a `may_act` claim names (undefined: anyone of the task may act). */
export const mayActPatterns = (m: MayAct | MayAct[] | undefined): string[] | undefined => (m === undefined ? undefined : [m].flat().map((x) => x.sub));

/** `jkt`: RFC 7638 thumbprint of a DPoP key; `x5t#S256`: SHA-256 thumbprint of a certificate's DER. */
export type Confirmation = { jkt: string } | { 'x5t#S256': string };

export interface Actor {
  sub: string;
  act?: Actor;
}

export interface LineageLink {
  jti: string;
  client_id: string;
}

export interface Grant {
  agent: string;
  taskId: string;
  onBehalfOf?: string;
  scopes: string[];
  tools: string[];
  audiences: string[];
  jti: string;
  issuedAt: number; // ms
  expiresAt: number; // ms
  /** What to bind the token to. */
  cnf?: Confirmation;
  /** Who may receive it by delegation (RFC 8693 §4.4). */
  mayAct?: string[];
}

export function claimsFor(issuer: string, g: Grant): AccessTokenClaims {
  return {
    iss: issuer,
    sub: g.onBehalfOf ?? g.agent,
    aud: g.audiences.length === 1 ? g.audiences[0]! : g.audiences,
    exp: Math.floor(g.expiresAt / 1000),
    iat: Math.floor(g.issuedAt / 1000),
    jti: g.jti,
    client_id: g.agent,
    scope: g.scopes.join(' '),
    task_id: g.taskId,
    tools: g.tools,
    ...(g.onBehalfOf ? { act: { sub: g.agent } } : {}),
    ...(g.cnf ? { cnf: g.cnf } : {}),
    ...(g.mayAct?.length ? { may_act: mayActClaim(g.mayAct)! } : {}),
  };
}

export function signAccessToken(keyring: Keyring, claims: AccessTokenClaims): string {
  const k = keyring.signing;
  return signCompact(k.alg, k.kid, ACCESS_TOKEN_TYP, k.privateKey, claims);
}

export type OwnTokenResult =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; reason: 'malformed' | 'unknown_kid' | 'bad_signature' | 'wrong_issuer' | 'expired' | 'not_yet_valid' };

const SKEW_S = 30;

/**
 * Verifies a token claimed to be one of ours. Signature results are cached by the exact token string
 * (same bytes, same answer) so repeated introspection of a hot token costs one map lookup; time-based
 * checks run on every call.
 */
export class AccessTokenVerifier {
  private cache = new Map<string, AccessTokenClaims>();
  constructor(
    private keyring: Keyring,
    private issuer: string,
    private maxEntries = 10_000,
  ) {}

  verify(token: string, nowMs: number): OwnTokenResult {
    let claims = this.cache.get(token);
    if (!claims) {
      const r = this.verifyUncached(token);
      if (!r.ok) return r;
      claims = r.claims;
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(token, claims);
    }
    const now = Math.floor(nowMs / 1000);
    if (claims.exp <= now) {
      this.cache.delete(token);
      return { ok: false, reason: 'expired' };
    }
    // RFC 7519 §4.1.5: the broker never sets nbf, but a token its key signed with one is not valid before it
    if (claims.iat > now + SKEW_S || (claims.nbf !== undefined && claims.nbf > now + SKEW_S)) return { ok: false, reason: 'not_yet_valid' };
    return { ok: true, claims };
  }

  private verifyUncached(token: string): OwnTokenResult {
    const d = decodeOwnFormat(token);
    if (!d || d.header.typ !== ACCESS_TOKEN_TYP) return { ok: false, reason: 'malformed' };
    const key = this.keyring.byKid(d.header.kid);
    if (!key) return { ok: false, reason: 'unknown_kid' };
    if (d.header.alg !== key.alg || !verifySignature(key.alg, key.publicKey, d)) return { ok: false, reason: 'bad_signature' };
    const p = d.payload;
    if (p.iss !== this.issuer) return { ok: false, reason: 'wrong_issuer' };
    if (!hasAccessTokenShape(p)) return { ok: false, reason: 'malformed' };
    return { ok: true, claims: p };
  }
}

/** The claim shapes of a Mayfly access token (shared with the verifier SDK). */
export function hasAccessTokenShape(p: Record<string, unknown>): p is Record<string, unknown> & AccessTokenClaims {
  const cnf = p.cnf as Record<string, unknown> | undefined;
  const lineage = p.lineage as unknown;
  const mayAct = p.may_act as unknown;
  const isMayAct = (m: unknown) => typeof m === 'object' && m !== null && typeof (m as { sub?: unknown }).sub === 'string';
  return (
    typeof p.sub === 'string' &&
    typeof p.jti === 'string' &&
    typeof p.client_id === 'string' &&
    typeof p.task_id === 'string' &&
    typeof p.scope === 'string' &&
    Number.isInteger(p.exp) &&
    Number.isInteger(p.iat) &&
    (p.nbf === undefined || Number.isInteger(p.nbf)) &&
    Array.isArray(p.tools) &&
    p.tools.every((t) => typeof t === 'string') &&
    (typeof p.aud === 'string' || (Array.isArray(p.aud) && p.aud.every((a) => typeof a === 'string'))) &&
    (p.act === undefined || isActor(p.act, 0)) &&
    (cnf === undefined || (typeof cnf === 'object' && cnf !== null && (typeof cnf.jkt === 'string' || typeof cnf['x5t#S256'] === 'string'))) &&
    (mayAct === undefined || isMayAct(mayAct) || (Array.isArray(mayAct) && mayAct.length <= 16 && mayAct.every(isMayAct))) &&
    (lineage === undefined ||
      (Array.isArray(lineage) &&
        lineage.length <= 8 &&
        lineage.every((l: { jti?: unknown; client_id?: unknown } | null) => typeof l === 'object' && l !== null && typeof l.jti === 'string' && typeof l.client_id === 'string')))
  );
}

function isActor(a: unknown, depth: number): boolean {
  if (typeof a !== 'object' || a === null || depth > 8) return false;
  const x = a as { sub?: unknown; act?: unknown };
  return typeof x.sub === 'string' && (x.act === undefined || isActor(x.act, depth + 1));
}
