/**
 * Attestation by a signed JWT from a trusted issuer (Kubernetes projected service-account tokens, GitHub
 * Actions OIDC, SPIFFE JWT-SVIDs, any OIDC provider). Keys come from an inline JWKS, a file, or the
 * issuer's jwks_uri (fetched and cached by jose). Checks follow RFC 8725: an explicit algorithm allowlist
 * (no `none`, no HMAC, so a public key can never be used as an HMAC secret), issuer and audience pinned,
 * exp required, lifetime bounded. Header-supplied key references (`jku`, `x5u`, `jwk`) are never used:
 * keys come only from configuration.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type JSONWebKeySet } from 'jose';
import type { AttestorConfig } from '../config/config.js';
import { AttestationError, type AttestedWorkload, type Attestor } from './attestor.js';

/**
 * Public keys of examples whose private halves are printed in RFCs (RFC 7515 Appendix A.3's ES256 key,
 * RFC 8037 Appendix A's Ed25519 key) and copied into many a sample config: anyone can sign with them,
 * so an attestor that trusts one is refused at start (by `x`).
 */
const PUBLISHED_PRIVATE_KEYS = new Set(['f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo']);

/** A key source: its keys, and how many a local set holds (undefined for a `jwks_uri`). */
interface KeySource {
  getKey: JWTVerifyGetKey;
  count?: number;
}

/** A local key set, refused when it holds a key whose private half is public. */
function localKeySet(cfg: AttestorConfig, doc: unknown, source: string): KeySource {
  const keys = (doc as { keys?: unknown })?.keys;
  if (Array.isArray(keys) && keys.some((k) => PUBLISHED_PRIVATE_KEYS.has((k as { x?: unknown })?.x as string)))
    throw new Error(`attestor "${cfg.name}": ${source} holds an example key whose private half is published (RFC 7515 A.3 / RFC 8037 A): anyone could sign as any workload; put your issuer's keys there`);
  try {
    return { getKey: createLocalJWKSet(doc as JSONWebKeySet), count: (keys as unknown[]).length };
  } catch (e) {
    throw new Error(`attestor "${cfg.name}": ${source} is not a JWK Set: ${(e as Error).message}`);
  }
}

function loadKeySet(cfg: AttestorConfig): KeySource {
  if (cfg.jwks) return localKeySet(cfg, cfg.jwks, 'jwks');
  if (cfg.jwksFile) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(cfg.jwksFile, 'utf8'));
    } catch (e) {
      throw new Error(`attestor "${cfg.name}": cannot read jwks_file ${cfg.jwksFile}: ${(e as Error).message}`);
    }
    return localKeySet(cfg, doc, `jwks_file ${cfg.jwksFile}`);
  }
  if (cfg.jwksUri) return { getKey: createRemoteJWKSet(new URL(cfg.jwksUri), { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 }) };
  throw new Error(`attestor "${cfg.name}": no key source`);
}

export class JwtAttestor implements Attestor {
  readonly name: string;
  readonly issuer: string;
  /** How many keys its local key set (`jwks`, `jwks_file`) holds; undefined for a `jwks_uri` or keys given. */
  readonly keyCount: number | undefined;
  private keys: JWTVerifyGetKey;

  constructor(private cfg: AttestorConfig, keys?: JWTVerifyGetKey) {
    this.name = cfg.name;
    this.issuer = cfg.issuer;
    const source = keys ? { getKey: keys } : loadKeySet(cfg);
    this.keys = source.getKey;
    this.keyCount = source.count;
  }

  async verify(token: string, nowMs: number): Promise<AttestedWorkload> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.keys, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: this.cfg.algorithms,
        requiredClaims: ['exp'],
        clockTolerance: Math.floor(this.cfg.clockSkewMs / 1000),
        currentDate: new Date(nowMs),
      });
      // RFC 8725 §3.11: a JWT typed as another kind (`at+jwt` access tokens, `dpop+jwt` proofs, ...) is
      // not an identity proof, even from an attestor's key; identity tokens are untyped, JWT or JOSE
      if (typeof protectedHeader.typ === 'string' && /\+jwt$/i.test(protectedHeader.typ))
        throw new AttestationError('attestation_invalid', `attestation token typ ${protectedHeader.typ} is not an identity token`);
      // Bound the proof's lifetime (a long-lived token is a static secret by another name): it must
      // expire within max_token_age from now, and if it says when it was issued, not be older than that.
      const limit = this.cfg.maxTokenAgeMs + this.cfg.clockSkewMs;
      const iat = payload.iat;
      if (payload.exp! * 1000 - nowMs > limit || (iat !== undefined && nowMs - iat * 1000 > limit))
        throw new AttestationError('attestation_invalid', 'attestation token lifetime exceeds max_token_age');
      if (iat !== undefined && iat * 1000 - nowMs > this.cfg.clockSkewMs)
        throw new AttestationError('attestation_not_yet_valid', 'attestation token issued in the future');
      // One proof, one identity: a subject that is not a single string could match several registrations.
      if (payload.sub !== undefined && typeof payload.sub !== 'string')
        throw new AttestationError('attestation_invalid', 'attestation token sub must be a string');
      // Usable (and cacheable) only while both its exp and its max_token_age allow.
      const expiresAt = Math.min(payload.exp! * 1000, iat !== undefined ? iat * 1000 + limit : Infinity);
      return { attestor: this.name, claims: payload, expiresAt };
    } catch (e) {
      throw mapJoseError(e);
    }
  }
}

function mapJoseError(e: unknown): AttestationError {
  if (e instanceof AttestationError) return e;
  if (e instanceof errors.JWTExpired) return new AttestationError('attestation_expired', 'attestation token expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return new AttestationError('attestation_wrong_audience', 'attestation token audience not accepted');
    if (e.claim === 'nbf' || (e.claim === 'iat' && e.reason === 'check_failed'))
      return new AttestationError('attestation_not_yet_valid', `attestation token not valid: ${e.claim} check failed`);
    return new AttestationError('attestation_invalid', `attestation token claim "${e.claim}" invalid`);
  }
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JOSEError && e.code === 'ERR_JWKS_INVALID')
    return new AttestationError('attestor_unavailable', 'attestor keys unavailable');
  if (e instanceof errors.JOSEError) return new AttestationError('attestation_invalid', `attestation token rejected (${e.code})`);
  return new AttestationError('attestation_invalid', 'attestation token rejected');
}
