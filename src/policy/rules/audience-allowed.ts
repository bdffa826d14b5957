import { narrow, refuse, type Rule } from '../rule.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/**
 * Audiences = request (`audience`/`resource`) ∩ task ∩ registration (∩ the delegating token's). RFC 8693 §2.2.2: a target the
 * server will not issue for is `invalid_target`. A token must name at least one audience (RFC 9068 §2.2).
 */
export const audienceAllowed: Rule<ExchangeContext, ExchangeDraft> = (ctx, draft) => {
  const r = narrow(ctx.requested.audiences, ctx.task!.audiences, ctx.identity.registration.audiences, ...(ctx.parent ? [ctx.parent.audiences] : []));
  if ('outside' in r) return refuse('invalid_target', 'audience_escalation', `audience not allowed for this agent in this task${ctx.parent ? ' by the delegating token' : ''}: ${r.outside.join(' ')}`);
  if (r.granted.length === 0) return refuse('invalid_target', 'no_audience', 'no audience is allowed for this agent in this task');
  draft.audiences = r.granted;
  return undefined;
};
