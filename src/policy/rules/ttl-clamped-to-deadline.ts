import { refuse, type Rule } from '../rule.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/** Below this, a credential would die in flight: refuse rather than mint it. */
export const MIN_TTL_MS = 1000;

/**
 * Lifetime = min(registration max_ttl (else tokens.default_ttl), tokens.max_ttl, time left in the task,
 * and for a delegation the delegating token's time left).
 */
export const ttlClampedToDeadline: Rule<ExchangeContext, ExchangeDraft> = (ctx, draft) => {
  const wanted = ctx.identity.registration.maxTtlMs ?? ctx.tokens.defaultTtlMs;
  draft.ttlMs = Math.min(wanted, ctx.tokens.maxTtlMs, ctx.task!.expiresAt - ctx.now, ctx.parent ? ctx.parent.expMs - ctx.now : Infinity);
  if (draft.ttlMs < MIN_TTL_MS) {
    if (ctx.parent && ctx.parent.expMs - ctx.now < MIN_TTL_MS) return refuse('invalid_request', 'parent_expiring', 'the delegating token expires too soon to derive one from it');
    return refuse('invalid_request', 'task_expired', 'task deadline is too close to mint a credential');
  }
  return undefined;
};
