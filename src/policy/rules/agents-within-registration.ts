import { refuse, type Rule } from '../rule.js';
import { patternWithin } from '../../ids/spiffe.js';
import type { TaskOpenContext } from '../task-context.js';

/** An orchestrator whose registration lists `agents` may name only agents under those patterns. */
export const agentsWithinRegistration: Rule<TaskOpenContext, unknown> = (ctx) => {
  if (ctx.opener.kind !== 'workload' || !ctx.opener.identity.registration.agents) return undefined;
  const ceiling = ctx.opener.identity.registration.agents;
  const outside = ctx.spec.agents.filter((p) => !ceiling.some((c) => patternWithin(p, c)));
  return outside.length ? refuse('access_denied', 'agent_escalation', `agents beyond this orchestrator's registration: ${outside.join(' ')}`) : undefined;
};
