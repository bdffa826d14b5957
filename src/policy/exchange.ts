/** The token-exchange policy, as a list. Order matters only for which refusal a caller sees first. */
import { applyRules, type Refusal, type Rule } from './rule.js';
import type { ExchangeContext, ExchangeDraft } from './exchange-context.js';
import { identityNotLocked } from './rules/identity-not-locked.js';
import { taskIsOpen } from './rules/task-is-open.js';
import { proofForThisTask } from './rules/proof-for-this-task.js';
import { agentInTask } from './rules/agent-in-task.js';
import { scopesWithinCeiling } from './rules/scopes-within-ceiling.js';
import { toolsWithinCeiling } from './rules/tools-within-ceiling.js';
import { audienceAllowed } from './rules/audience-allowed.js';
import { ttlClampedToDeadline } from './rules/ttl-clamped-to-deadline.js';
import { delegationAllowed } from './rules/delegation-allowed.js';
import { actorMayAct } from './rules/actor-may-act.js';

export const exchangeRules: readonly Rule<ExchangeContext, ExchangeDraft>[] = [
  identityNotLocked,
  taskIsOpen,
  proofForThisTask,
  agentInTask,
  delegationAllowed,
  actorMayAct,
  scopesWithinCeiling,
  toolsWithinCeiling,
  audienceAllowed,
  ttlClampedToDeadline,
];

export function decideExchange(ctx: ExchangeContext): { draft: ExchangeDraft } | { refusal: Refusal } {
  const draft: ExchangeDraft = { scopes: [], tools: [], audiences: [], ttlMs: 0 };
  const refusal = applyRules(exchangeRules, ctx, draft);
  return refusal ? { refusal } : { draft };
}
