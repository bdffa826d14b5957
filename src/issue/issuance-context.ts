/**
 * What every issuance (token or certificate) decides on: the task (its immutable spec from the
 * per-process cache), the identity's lock state and, for a task acting for a principal, that
 * principal's revocation cutoff. The store re-checks the task state atomically when recording.
 * With `remembered`, the identity's and principal's states may come from this process's last grant
 * (issuer-states.ts), when the store asserts them with the record; otherwise they are read.
 */
import type { Broker } from '../broker.js';
import type { Identity } from '../attest/attestation.js';
import type { ExchangeContext } from '../policy/exchange-context.js';
import type { IssuerState } from '../store/store.js';
import { taskStatus } from '../revoke/task-status.js';
import type { IssuerStates } from './issuer-states.js';

export async function issuanceContext(
  b: Broker,
  identity: Identity,
  taskId: string,
  requested: ExchangeContext['requested'] = {},
  remembered?: IssuerStates,
): Promise<ExchangeContext & { principalCutoff: number; issuerState: IssuerState }> {
  // the task's spec is almost always in the per-process cache: then the identity's and the principal's
  // states are read together, in one round trip (or not at all, when remembered)
  const task = await b.taskCache.get(b.store, taskId);
  const states = remembered && b.store.assertsIssuerState ? remembered : undefined;
  const principal = task?.onBehalfOf;
  const [identityState, principalCutoff] = await Promise.all([
    states ? states.identity(b.store, identity.spiffeId) : b.store.identityState(identity.spiffeId),
    principal ? (states ? states.principal(b.store, principal) : b.store.principalRevokedBefore(principal)) : 0,
  ]);
  const now = b.clock.now();
  return {
    identity,
    identityState,
    task,
    taskStatus: task ? taskStatus(task, principalCutoff, now) : null,
    requested,
    now,
    tokens: b.config.tokens,
    principalCutoff,
    issuerState: { identity: identity.spiffeId, revokedBefore: identityState.revokedBefore, ...(principal ? { principal } : {}), principalCutoff },
  };
}
