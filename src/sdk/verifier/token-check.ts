/**
 * The offline half of verification: signature against the broker's JWKS (jose), `typ: at+jwt`, issuer,
 * audience and the algorithm allowlist, then RFC 9068 §2.2 claim shapes and Mayfly's own claims. Every
 * jose error becomes one stable code.
 */
import { hasAccessTokenShape } from '../../issue/access-token.js';
import { errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { fail, type MayflyClaims, type VerifyFailure } from './result.js';

export const DEFAULT_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];
export const MAX_TOKEN_BYTES = 16 * 1024;

export interface TokenCheckConfig {
  issuer: string;
  algorithms: string[];
  /** Tolerance for `iat`/`nbf` in the future (seconds). `exp` is checked strictly, as the broker does. */
  clockToleranceS: number;
}

const optionCache = new WeakMap<TokenCheckConfig, Map<string, JWTVerifyOptions>>();

/** jwtVerify options, built once per (config, audience string); arrays of audiences are built per call. */
function optionsFor(cfg: TokenCheckConfig, audience: string | string[]): JWTVerifyOptions {
  const build = (): JWTVerifyOptions => ({ issuer: cfg.issuer, audience, typ: 'at+jwt', algorithms: cfg.algorithms, clockTolerance: cfg.clockToleranceS });
  if (typeof audience !== 'string') return build();
  let m = optionCache.get(cfg);
  if (!m) optionCache.set(cfg, (m = new Map()));
  let o = m.get(audience);
  if (!o) {
    if (m.size > 1000) m.clear();
    m.set(audience, (o = build()));
  }
  return o;
}

export type TokenCheck = { ok: true; claims: MayflyClaims } | VerifyFailure;

export async function checkToken(token: string, keys: JWTVerifyGetKey, cfg: TokenCheckConfig, audience: string | string[], now: number, fixedClock: boolean): Promise<TokenCheck> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_BYTES) return fail('malformed', 'not a compact JWS of acceptable size');
  const opts: JWTVerifyOptions = fixedClock ? { ...optionsFor(cfg, audience), currentDate: new Date(now) } : optionsFor(cfg, audience);
  let claims: MayflyClaims;
  try {
    claims = (await jwtVerify(token, keys, opts)).payload as MayflyClaims;
  } catch (e) {
    return joseFailure(e);
  }
  if (!hasAccessTokenShape(claims)) return fail('malformed', 'claims do not have the RFC 9068 / Mayfly shape (sub, client_id, jti, iat, exp, scope, task_id, tools)');
  if (claims.exp * 1000 <= now) return fail('expired', 'token has expired');
  if (claims.iat * 1000 > now + cfg.clockToleranceS * 1000) return fail('not_yet_valid', 'token was issued in the future');
  return { ok: true, claims };
}

/** jose's errors -> stable codes. Anything that is not a JOSE error (network, JWKS endpoint down) means "cannot tell now". */
export function joseFailure(e: unknown): VerifyFailure {
  if (e instanceof errors.JWTExpired) return e.claim === 'exp' ? fail('expired', 'token has expired') : fail('not_yet_valid', e.message);
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'iss':
        return fail('wrong_issuer', 'token was not issued by the configured issuer');
      case 'aud':
        return fail('wrong_audience', 'token is not meant for this audience');
      case 'typ':
        return fail('wrong_type', 'token type is not at+jwt (RFC 9068)');
      case 'nbf':
      case 'iat':
        return fail('not_yet_valid', e.message);
      case 'exp':
        return fail(e.reason === 'check_failed' ? 'expired' : 'malformed', e.message);
      default:
        return fail('malformed', e.message);
    }
  }
  if (e instanceof errors.JWKSNoMatchingKey) return fail('unknown_kid', 'no key in the issuer JWKS matches the token kid and alg');
  if (e instanceof errors.JWSSignatureVerificationFailed) return fail('invalid_signature', 'signature verification failed');
  if (e instanceof errors.JOSEAlgNotAllowed) return fail('invalid_signature', 'token algorithm is not allowed');
  if (e instanceof errors.JWKSTimeout) return fail('stale', 'signing keys unavailable: JWKS fetch timed out');
  if (e instanceof errors.JWKSInvalid) return fail('stale', 'signing keys unavailable: the JWKS is malformed');
  if (e instanceof errors.JOSENotSupported || e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JWKInvalid)
    return fail('malformed', e.message);
  if (e instanceof errors.JOSEError) {
    // "Expected 200 OK from the JSON Web Key Set HTTP response" and parse failures of the JWKS
    return /JSON Web Key Set/.test(e.message) ? fail('stale', `signing keys unavailable: ${e.message}`) : fail('malformed', e.message);
  }
  return fail('stale', `signing keys unavailable: ${(e as Error)?.message ?? String(e)}`);
}
