/**
 * DPoP (RFC 9449 §4.3, §7.1) for tokens bound to a key (`cnf.jkt`): the proof is a JWT with
 * `typ: dpop+jwt` and the public key in its `jwk` header, signed by that key, whose RFC 7638 thumbprint
 * is the token's `cnf.jkt`; it names this request (`htm`, `htu` without query and fragment), is fresh
 * (`iat`), hashes this token (`ath`), and its `jti` was never seen before. With resource-server nonces
 * (§9, `nonces`), it also carries a nonce this server issued, else the answer is `use_dpop_nonce` with
 * a fresh one.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { fail, type VerifyFailure } from './result.js';
import type { ReplayCache } from './replay-cache.js';
import type { DpopNonces } from '../../attest/dpop-nonce.js';

export interface DpopRequest {
  /** The `DPoP` request header. */
  proof?: string | undefined;
  /** HTTP method of the request. */
  method: string;
  /** Absolute URL of the request as the client addressed it. */
  url: string;
  /** The Authorization scheme the token came with. */
  scheme?: 'DPoP' | 'Bearer';
}

export interface DpopConfig {
  algorithms: string[];
  /** How old a proof may be (seconds). */
  maxAgeS: number;
  /** Allowed clock skew for proofs from the future (seconds). */
  skewS: number;
  replay: ReplayCache;
  /** RFC 9449 §9: proofs must carry one of these nonces. */
  nonces?: DpopNonces;
}

export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

/** The comparable form of an `htu`: scheme, host, port and path; no query, no fragment. */
export function normalizeHtu(u: string): string | undefined {
  try {
    const url = new URL(u);
    // userinfo makes it another URI than the request's (RFC 9449 §4.3 ignores only query and fragment)
    if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(u)) return undefined;
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

export const accessTokenHash = (token: string) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** Null when the request passes; a `dpop_invalid` failure otherwise. */
export async function checkDpop(token: string, jkt: string | undefined, req: DpopRequest | undefined, now: number, cfg: DpopConfig): Promise<VerifyFailure | null> {
  if (jkt === undefined) {
    if (req?.scheme === 'DPoP') return fail('dpop_invalid', 'DPoP scheme used with a token that is not DPoP-bound');
    return null;
  }
  if (!req?.proof) return fail('dpop_invalid', 'token is DPoP-bound: a DPoP proof is required');
  if (req.scheme === 'Bearer') return fail('dpop_invalid', 'a DPoP-bound token must be sent with the DPoP scheme');
  let payload: Record<string, unknown>;
  let jwk: JWK;
  try {
    const r = await jwtVerify(req.proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: cfg.algorithms, currentDate: new Date(now), clockTolerance: cfg.skewS });
    payload = r.payload as Record<string, unknown>;
    jwk = r.protectedHeader.jwk as JWK;
  } catch (e) {
    return fail('dpop_invalid', `DPoP proof rejected: ${(e as Error).message}`);
  }
  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) return fail('dpop_invalid', 'DPoP proof needs a jti');
  if (htm !== req.method.toUpperCase()) return fail('dpop_invalid', 'DPoP proof htm does not match the request method');
  const want = normalizeHtu(req.url);
  if (typeof htu !== 'string' || !want || normalizeHtu(htu) !== want) return fail('dpop_invalid', 'DPoP proof htu does not match the request URL');
  if (typeof iat !== 'number') return fail('dpop_invalid', 'DPoP proof needs an iat');
  const ageMs = now - iat * 1000;
  if (ageMs > cfg.maxAgeS * 1000 || ageMs < -cfg.skewS * 1000) return fail('dpop_invalid', 'DPoP proof is not fresh');
  if (ath !== accessTokenHash(token)) return fail('dpop_invalid', 'DPoP proof ath does not match the access token');
  if ((await calculateJwkThumbprint(jwk, 'sha256')) !== jkt) return fail('dpop_invalid', 'DPoP proof key is not the key the token is bound to');
  // last before the replay record: a proof refused for its nonce was never used, the retry is a new proof
  if (cfg.nonces && !cfg.nonces.valid(payload.nonce, now))
    return {
      ok: false,
      code: 'use_dpop_nonce',
      message: payload.nonce === undefined ? 'this resource server requires a DPoP nonce: retry with the one in DPoP-Nonce' : 'the DPoP nonce is stale or not ours: retry with the one in DPoP-Nonce',
      dpopNonce: cfg.nonces.current(now),
    };
  if (!cfg.replay.add(`${jkt}.${jti}`, iat * 1000 + (cfg.maxAgeS + cfg.skewS) * 1000, now)) return fail('dpop_invalid', 'DPoP proof was already used');
  return null;
}
