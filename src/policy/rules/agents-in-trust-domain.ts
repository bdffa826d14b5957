import { refuse, type Rule } from '../rule.js';
import { parseSpiffeId } from '../../ids/spiffe.js';
import type { TaskOpenContext } from '../task-context.js';

/** Every agent pattern of a task names this trust domain: Mayfly mints only for identities it registers. */
export const agentsInTrustDomain: Rule<TaskOpenContext, unknown> = (ctx) => {
  const foreign = ctx.spec.agents.filter((p) => parseSpiffeId(p.endsWith('/*') ? p.slice(0, -2) : p)?.trustDomain !== ctx.trustDomain);
  return foreign.length ? refuse('invalid_request', 'agent_foreign_trust_domain', `agents outside trust domain ${ctx.trustDomain}: ${foreign.join(' ')}`) : undefined;
};
