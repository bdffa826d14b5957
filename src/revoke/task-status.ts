/**
 * When is a task open? Its record says open, its deadline has not passed, and the principal it acts
 * for has not been revoked since it was opened. A task past its deadline counts as closed without anyone
 * calling close.
 */
import type { TaskRecord } from '../store/store.js';

export type TaskCloseReason = 'closed' | 'expired' | 'principal_revoked';
export type TaskStatus = { open: true } | { open: false; reason: TaskCloseReason };

export function taskStatus(
  task: Pick<TaskRecord, 'state' | 'expiresAt' | 'createdAt' | 'onBehalfOf'>,
  principalRevokedBefore: number,
  now: number,
): TaskStatus {
  if (task.state !== 'open') return { open: false, reason: 'closed' };
  if (task.onBehalfOf && principalRevokedBefore > 0 && task.createdAt <= principalRevokedBefore) return { open: false, reason: 'principal_revoked' };
  if (now >= task.expiresAt) return { open: false, reason: 'expired' };
  return { open: true };
}
