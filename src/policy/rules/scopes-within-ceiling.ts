import { narrow, refuse, type Rule } from '../rule.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/** Scopes = request ∩ task ∩ registration (∩ the delegating token's); RFC 6749 §3.3 invalid_scope beyond. */
export const scopesWithinCeiling: Rule<ExchangeContext, ExchangeDraft> = (ctx, draft) => {
  const r = narrow(ctx.requested.scopes, ctx.task!.scopes, ctx.identity.registration.scopes, ...(ctx.parent ? [ctx.parent.scopes] : []));
  if ('outside' in r) return refuse('invalid_scope', 'scope_escalation', `scope not allowed for this agent in this task${ctx.parent ? ' by the delegating token' : ''}: ${r.outside.join(' ')}`);
  draft.scopes = r.granted;
  return undefined;
};
