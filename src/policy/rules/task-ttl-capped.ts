import type { Rule } from '../rule.js';
import type { TaskDraft, TaskOpenContext } from '../task-context.js';

/** A task lives for the requested ttl (else tasks.default_ttl), capped at tasks.max_ttl. */
export const taskTtlCapped: Rule<TaskOpenContext, TaskDraft> = (ctx, draft) => {
  draft.ttlMs = Math.min(ctx.requestedTtlMs ?? ctx.tasks.defaultTtlMs, ctx.tasks.maxTtlMs);
  return undefined;
};
