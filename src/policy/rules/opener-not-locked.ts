import { refuse, type Rule } from '../rule.js';
import type { TaskOpenContext } from '../task-context.js';

/** A locked orchestrator opens nothing. */
export const openerNotLocked: Rule<TaskOpenContext, unknown> = (ctx) =>
  ctx.opener.kind === 'workload' && ctx.opener.identityState.locked
    ? refuse('access_denied', 'identity_locked', `identity ${ctx.opener.identity.spiffeId} is locked by an operator`)
    : undefined;
