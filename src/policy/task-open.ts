/** The task-opening policy, as a list. */
import { applyRules, type Refusal, type Rule } from './rule.js';
import type { TaskDraft, TaskOpenContext } from './task-context.js';
import { openerNotLocked } from './rules/opener-not-locked.js';
import { agentsInTrustDomain } from './rules/agents-in-trust-domain.js';
import { agentsWithinRegistration } from './rules/agents-within-registration.js';
import { taskWithinRegistration } from './rules/task-within-registration.js';
import { taskTtlCapped } from './rules/task-ttl-capped.js';

export const taskOpenRules: readonly Rule<TaskOpenContext, TaskDraft>[] = [
  openerNotLocked,
  agentsInTrustDomain,
  agentsWithinRegistration,
  taskWithinRegistration,
  taskTtlCapped,
];

export function decideTaskOpen(ctx: TaskOpenContext): { draft: TaskDraft } | { refusal: Refusal } {
  const draft: TaskDraft = { ttlMs: 0 };
  const refusal = applyRules(taskOpenRules, ctx, draft);
  return refusal ? { refusal } : { draft };
}
