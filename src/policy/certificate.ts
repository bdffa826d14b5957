/** The certificate policy, as a list: the task rules of token exchange, minus scopes/tools/audiences. */
import { applyRules, refuse, type Refusal, type Rule } from './rule.js';
import type { ExchangeContext, ExchangeDraft } from './exchange-context.js';
import { identityNotLocked } from './rules/identity-not-locked.js';
import { taskIsOpen } from './rules/task-is-open.js';
import { proofForThisTask } from './rules/proof-for-this-task.js';
import { agentInTask } from './rules/agent-in-task.js';
import { ttlClampedToDeadline } from './rules/ttl-clamped-to-deadline.js';

/** Only registrations with `certificates: true` may ask for an X.509 certificate. */
export const certificatesAllowed: Rule<ExchangeContext, ExchangeDraft> = (ctx) =>
  ctx.identity.registration.certificates ? undefined : refuse('access_denied', 'certificates_not_allowed', `${ctx.identity.spiffeId} is not registered for certificates`);

export const certificateRules: readonly Rule<ExchangeContext, ExchangeDraft>[] = [
  certificatesAllowed,
  identityNotLocked,
  taskIsOpen,
  proofForThisTask,
  agentInTask,
  ttlClampedToDeadline,
];

export function decideCertificate(ctx: ExchangeContext): { draft: ExchangeDraft } | { refusal: Refusal } {
  const draft: ExchangeDraft = { scopes: [], tools: [], audiences: [], ttlMs: 0 };
  const refusal = applyRules(certificateRules, ctx, draft);
  return refusal ? { refusal } : { draft };
}
