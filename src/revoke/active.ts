/**
 * The one definition of "active" for a credential Mayfly issued. Introspection, issuance and (later)
 * the verifier SDK and revocation feed all ask this function, over facts read in one round trip
 * (store.facts). Evaluated at verification time, so a credential minted in a race with a close is
 * inactive as soon as the close lands.
 */
import type { CredentialFacts } from '../store/store.js';
import { taskStatus, type TaskCloseReason } from './task-status.js';

export type InactiveReason = 'invalid' | 'expired' | 'task_unknown' | `task_${TaskCloseReason}` | 'jti_revoked' | 'identity_locked' | 'identity_revoked';
export type Verdict = { active: true } | { active: false; reason: InactiveReason };

export interface CredentialRef {
  /** Issued-at, seconds (JWT NumericDate). */
  iat: number;
  /** Expiry, seconds. */
  exp: number;
}

export function verdict(cred: CredentialRef, facts: CredentialFacts, now: number): Verdict {
  if (cred.exp * 1000 <= now) return { active: false, reason: 'expired' };
  if (!facts.task) return { active: false, reason: 'task_unknown' };
  const ts = taskStatus(facts.task, facts.principalRevokedBefore, now);
  if (!ts.open) return { active: false, reason: `task_${ts.reason}` };
  if (facts.jtiRevoked) return { active: false, reason: 'jti_revoked' };
  if (facts.identity.locked) return { active: false, reason: 'identity_locked' };
  // iat has whole-second precision: a credential from the very second of a revocation counts as
  // revoked (fail closed), never the other way round.
  if (facts.identity.revokedBefore > 0 && cred.iat * 1000 <= facts.identity.revokedBefore) return { active: false, reason: 'identity_revoked' };
  return { active: true };
}
