/**
 * DPoP at the token endpoint (RFC 9449 §4.3, §5): an agent that sends a `DPoP` header proves it holds
 * a key, and gets a token bound to that key (`cnf.jkt`, its RFC 7638 thumbprint) that resource servers
 * accept only with a fresh proof from the same key (src/sdk/verifier/dpop.ts checks those).
 *
 * The proof: one compact JWT, `typ: dpop+jwt`, an asymmetric `alg` from the allowlist, the public key
 * in its `jwk` header (never a private key, never fetched: RFC 8725), signed by it; claims `jti`
 * (used once: recorded in the store until the proof could no longer be fresh, so every replica refuses
 * a replay), `htm: POST`, `htu` = this token endpoint (no query, no fragment), `iat` within the last
 * minute (10 s of clock skew allowed). Anything else: `invalid_dpop_proof` (RFC 9449 §12.2), 400.
 * With `dpop.require_nonce`, also `nonce`: one this broker issued (attest/dpop-nonce.ts), else
 * `use_dpop_nonce` (§8), answered with a fresh nonce in the `DPoP-Nonce` header.
 */
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { DPOP_ALGORITHMS, normalizeHtu } from '../sdk/verifier/dpop.js';
import { COMPACT_JWS, MAX_PROOF_BYTES } from './attestation.js';

export { DPOP_ALGORITHMS };

const MAX_AGE_S = 60;
const SKEW_S = 10;
const JTI = /^[\x21-\x7e]{8,256}$/;

const refuse = (description: string, reason = 'dpop_invalid') => new MayflyError('invalid_dpop_proof', description, { reason });

/** The thumbprint the token must be bound to, or undefined when the request carries no DPoP header. */
export async function checkDpopProof(b: Broker, header: string | undefined, now: number): Promise<string | undefined> {
  if (header === undefined) return undefined;
  // several DPoP headers arrive joined by ", "; a JWT has neither
  if (header.length > MAX_PROOF_BYTES || !COMPACT_JWS.test(header)) throw refuse('the DPoP header must be exactly one compact JWT');
  let payload: Record<string, unknown>;
  let jwk: JWK;
  try {
    const r = await jwtVerify(header, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS, currentDate: new Date(now), clockTolerance: SKEW_S });
    payload = r.payload as Record<string, unknown>;
    jwk = r.protectedHeader.jwk as JWK;
  } catch (e) {
    throw refuse(`DPoP proof rejected: ${(e as Error).message}`);
  }
  const { jti, htm, htu, iat } = payload;
  if (typeof jti !== 'string' || !JTI.test(jti)) throw refuse('the DPoP proof needs a jti of 8-256 printable characters');
  if (htm !== 'POST') throw refuse('the DPoP proof htm must be POST');
  if (typeof htu !== 'string' || normalizeHtu(htu) !== normalizeHtu(`${b.config.issuer}/oauth/token`))
    throw refuse(`the DPoP proof htu must be ${b.config.issuer}/oauth/token`);
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw refuse('the DPoP proof needs a numeric iat');
  const ageMs = now - iat * 1000;
  if (ageMs > MAX_AGE_S * 1000 || ageMs < -SKEW_S * 1000) throw refuse('the DPoP proof is not fresh (iat)', 'dpop_stale');
  if (b.dpopNonces && !b.dpopNonces.valid(payload.nonce, now))
    throw new MayflyError('use_dpop_nonce', payload.nonce === undefined ? 'this broker requires a DPoP nonce: retry with the one in DPoP-Nonce' : 'the DPoP nonce is stale or not ours: retry with the one in DPoP-Nonce', { reason: 'dpop_nonce' });
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  if (!(await b.store.useOnce(`dpop:${jkt}:${jti}`, (iat + MAX_AGE_S + SKEW_S) * 1000, now))) throw refuse('the DPoP proof was already used', 'dpop_replayed');
  return jkt;
}
