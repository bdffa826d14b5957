import { refuse, type Rule } from '../rule.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/** Longest chain of delegations from an attested grant (RFC 8693 §4.1 nests one `act` per step). */
export const MAX_DELEGATION_DEPTH = 4;

/**
 * A delegation (RFC 8693 §1.1, actor_token): only to another agent (not to itself), never of a
 * sender-constrained token (the actor cannot prove the holder's key), and chains stay short.
 * No-op for a direct grant.
 */
export const delegationAllowed: Rule<ExchangeContext, ExchangeDraft> = (ctx) => {
  const p = ctx.parent;
  if (!p) return undefined;
  if (p.clientId === ctx.identity.spiffeId) return refuse('invalid_request', 'delegation_to_self', 'the actor already holds the subject token: nothing to delegate');
  if (p.bound) return refuse('invalid_request', 'delegation_of_bound_token', 'a sender-constrained (DPoP- or certificate-bound) token cannot be delegated: the actor cannot prove its key');
  if (p.depth >= MAX_DELEGATION_DEPTH) return refuse('invalid_request', 'delegation_too_deep', `delegation chains stop at ${MAX_DELEGATION_DEPTH}`);
  return undefined;
};
