/**
 * What every issuance (token or certificate) decides on: the task (its immutable spec from the
 * per-process cache), the identity's lock state and, for a task acting for a principal, that
 * principal's revocation cutoff. The store re-checks the task state atomically when recording.
 */
import type { Broker } from '../broker.js';
import type { Identity } from '../attest/attestation.js';
import type { ExchangeContext } from '../policy/exchange-context.js';
import { taskStatus } from '../revoke/task-status.js';

export async function issuanceContext(
  b: Broker,
  identity: Identity,
  taskId: string,
  requested: ExchangeContext['requested'] = {},
): Promise<ExchangeContext & { principalCutoff: number }> {
  // the task's spec is almost always in the per-process cache: then the identity's and the principal's
  // states are read together, in one round trip
  const task = await b.taskCache.get(b.store, taskId);
  const [identityState, principalCutoff] = await Promise.all([
    b.store.identityState(identity.spiffeId),
    task?.onBehalfOf ? b.store.principalRevokedBefore(task.onBehalfOf) : 0,
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
  };
}
