import { narrow, refuse, type Rule } from '../rule.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/** Tools = request ∩ task ∩ registration (∩ the delegating token's): an allowlist, refused like a scope when exceeded. */
export const toolsWithinCeiling: Rule<ExchangeContext, ExchangeDraft> = (ctx, draft) => {
  const r = narrow(ctx.requested.tools, ctx.task!.tools, ctx.identity.registration.tools, ...(ctx.parent ? [ctx.parent.tools] : []));
  if ('outside' in r) return refuse('invalid_scope', 'tool_escalation', `tool not allowed for this agent in this task${ctx.parent ? ' by the delegating token' : ''}: ${r.outside.join(' ')}`);
  draft.tools = r.granted;
  return undefined;
};
