/**
 * One-time join tokens (as SPIRE's join tokens, step-ca's one-time tokens): for a workload with no
 * platform identity to attest with. An operator creates one for a SPIFFE ID registered with
 * `attestor: join` (POST /v1/join-tokens); the workload presents it once, wherever an attestation goes
 * (`subject_token` with `subject_token_type` JOIN_TOKEN_TYPE at /oauth/token, or Bearer), and is that
 * identity for that one call. The first presentation consumes it, whatever the outcome; a second one,
 * on any replica, is refused.
 *
 * The token is `mfjt_` + 32 random bytes (base64url); the store keeps only its SHA-256, so neither the
 * store nor the audit trail holds a usable token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Broker } from '../broker.js';
import type { Role } from '../config/config.js';
import { JOIN_ATTESTOR } from '../config/schema.js';
import { AttestationError } from './attestor.js';
import type { Identity } from './attestation.js';

export const JOIN_TOKEN_TYPE = 'urn:mayfly:params:oauth:token-type:join-token';
const FORMAT = /^mfjt_[A-Za-z0-9_-]{43}$/;

export const isJoinToken = (s: string): boolean => s.startsWith('mfjt_');
export const joinTokenHash = (token: string): string => createHash('sha256').update(token, 'ascii').digest('base64url');
/** A short, non-secret handle of a join token for audit and logs (a prefix of its hash). */
export const joinTokenId = (hash: string): string => hash.slice(0, 12);

export function newJoinToken(): { token: string; hash: string } {
  const token = `mfjt_${randomBytes(32).toString('base64url')}`;
  return { token, hash: joinTokenHash(token) };
}

/** Registrations a join token may stand for. */
export const joinRegistrations = (b: Broker) => b.config.registrations.filter((r) => r.attestor === JOIN_ATTESTOR);

/** Consumes the token and returns the identity it attests for `role`; AttestationError otherwise. */
export async function redeemJoinToken(b: Broker, token: string, role: Role): Promise<Identity> {
  if (!FORMAT.test(token)) throw new AttestationError('attestation_malformed', 'malformed join token');
  const rec = await b.store.takeJoinToken(joinTokenHash(token), b.clock.now());
  if (!rec) throw new AttestationError('attestation_invalid', 'join token unknown, already used or expired');
  const regs = joinRegistrations(b).filter((r) => r.spiffeId === rec.spiffeId);
  if (regs.length === 0) throw new AttestationError('attestation_unregistered', `${rec.spiffeId} is no longer registered for join tokens`);
  const reg = regs.find((r) => r.roles.includes(role));
  if (!reg) throw new AttestationError('attestation_wrong_role', `workload is not registered with role "${role}"`);
  return { spiffeId: reg.spiffeId, registration: reg, attestor: JOIN_ATTESTOR, proofExpiresAt: rec.expiresAt };
}
