/** The client's own refusals. Broker answers are BrokerError (../http.ts). */
import { BrokerError } from '../http.js';

export type TaskEndReason = 'closed' | 'expired' | 'principal_revoked' | 'unknown';

/** The task is over (or unknown): no credential for it will be issued or handed out again. */
export class TaskClosedError extends Error {
  override name = 'TaskClosedError';
  constructor(
    readonly taskId: string,
    readonly reason: TaskEndReason,
  ) {
    super(`task ${taskId} is ${reason === 'unknown' ? 'unknown to the broker' : reason === 'expired' ? 'past its deadline' : reason === 'principal_revoked' ? 'revoked with its principal' : 'closed'}`);
  }
}

/**
 * Whether a token-endpoint refusal means the task is over. The broker answers 400 invalid_request with
 * these descriptions (src/policy/rules/task-is-open.ts); it has no machine-readable reason field yet.
 */
export function taskEndReason(e: unknown): TaskEndReason | undefined {
  if (!(e instanceof BrokerError) || e.status !== 400 || e.error !== 'invalid_request') return undefined;
  switch (e.description) {
    case 'task is closed':
      return 'closed';
    case 'task is past its deadline':
      return 'expired';
    case 'task is revoked with its principal':
      return 'principal_revoked';
    case 'unknown task_id':
      return 'unknown';
    default:
      return undefined;
  }
}
