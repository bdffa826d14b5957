/**
 * "Who is calling?" An attestor verifies a workload's proof (an OIDC/JWT token from Kubernetes, GitHub
 * Actions, a SPIFFE JWT-SVID, the dev minter...) and returns its verified claims. The broker core never
 * knows which kind it talks to (compare SPIRE's attestor plugins).
 */
import type { JWTPayload } from 'jose';

export interface AttestedWorkload {
  /** Name of the attestor that verified the proof; registrations of other attestors never match it. */
  attestor: string;
  claims: JWTPayload;
  /** Expiry of the proof (ms). */
  expiresAt: number;
}

export interface Attestor {
  readonly name: string;
  readonly issuer: string;
  /** Verifies the proof or throws AttestationError. */
  verify(token: string, nowMs: number): Promise<AttestedWorkload>;
}

/** Stable codes for why a proof was refused (audit reasons; the HTTP answer is invalid_request/401). */
export type AttestationFailure =
  | 'attestation_malformed'
  | 'attestation_unknown_issuer'
  | 'attestation_invalid'
  | 'attestation_expired'
  | 'attestation_not_yet_valid'
  | 'attestation_wrong_audience'
  | 'attestation_unregistered'
  | 'attestation_wrong_role'
  | 'attestation_is_access_token'
  | 'attestor_unavailable';

export class AttestationError extends Error {
  override name = 'AttestationError';
  constructor(
    readonly reason: AttestationFailure,
    message: string,
  ) {
    super(message);
  }
}
