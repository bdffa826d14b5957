import { refuse, type Rule } from '../rule.js';
import { matchesAgentPattern } from '../../ids/spiffe.js';
import type { ExchangeContext } from '../exchange-context.js';

/** Only the agents the orchestrator named (exactly, or under a `/*` prefix) may join the task. */
export const agentInTask: Rule<ExchangeContext, unknown> = (ctx) =>
  ctx.task!.agents.some((p) => matchesAgentPattern(p, ctx.identity.spiffeId))
    ? undefined
    : refuse('invalid_request', 'agent_not_in_task', `${ctx.identity.spiffeId} is not an agent of this task`);
