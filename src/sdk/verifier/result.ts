/**
 * What `verify` answers: the claims of an active token, or one stable failure code. Codes never change
 * meaning; messages are for humans and logs and may change.
 */
import type { InactiveReason } from '../../revoke/active.js';
import type { AccessTokenClaims } from '../../issue/access-token.js';

/** An RFC 9068 access token as Mayfly issues it; `cnf` when bound to a DPoP key or a client certificate. */
export type MayflyClaims = AccessTokenClaims & {
  cnf?: { jkt?: string; 'x5t#S256'?: string };
  nbf?: number;
  [claim: string]: unknown;
};

export type VerifyCode =
  | 'malformed'
  | 'invalid_signature'
  | 'unknown_kid'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_type'
  | 'revoked'
  | 'insufficient_scope'
  | 'tool_not_allowed'
  | 'stale'
  | 'dpop_invalid'
  | 'use_dpop_nonce'
  | 'certificate_mismatch';

/** Why a token is revoked: a reason of revoke/active.ts, or `introspection_inactive` when the broker said so. */
export type RevokedReason = Exclude<InactiveReason, 'invalid' | 'expired'> | 'introspection_inactive';

export type VerifyFailure =
  | { ok: false; code: Exclude<VerifyCode, 'revoked' | 'use_dpop_nonce'>; message: string }
  /** RFC 9449 §9: retry with a proof carrying `dpopNonce` (sent in the `DPoP-Nonce` response header). */
  | { ok: false; code: 'use_dpop_nonce'; message: string; dpopNonce: string }
  | { ok: false; code: 'revoked'; reason: RevokedReason; message: string };

/** `dpopNonce`: with resource-server nonces configured, the current one, for a `DPoP-Nonce` header on the answer. */
export type VerifyResult = { ok: true; claims: MayflyClaims; dpopNonce?: string } | VerifyFailure;

export function fail(code: Exclude<VerifyCode, 'revoked' | 'use_dpop_nonce'>, message: string): VerifyFailure {
  return { ok: false, code, message };
}

export function revoked(reason: RevokedReason, message?: string): VerifyFailure {
  return { ok: false, code: 'revoked', reason, message: message ?? `credential is inactive (${reason})` };
}
