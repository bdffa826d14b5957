import { refuse, type Rule } from '../rule.js';
import { matchesAgentPattern } from '../../ids/spiffe.js';
import type { ExchangeContext, ExchangeDraft } from '../exchange-context.js';

/** RFC 8693 §4.4: a token that names who may act with it (`may_act`) goes to those actors only. */
export const actorMayAct: Rule<ExchangeContext, ExchangeDraft> = (ctx) => {
  const allowed = ctx.parent?.mayAct;
  if (!allowed || allowed.some((p) => matchesAgentPattern(p, ctx.identity.spiffeId))) return undefined;
  return refuse('invalid_request', 'actor_not_permitted', `the subject token may only be acted on by ${allowed.join(', ')} (may_act)`);
};
