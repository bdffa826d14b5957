import { refuse, type Rule } from '../rule.js';
import type { IdentityState } from '../../store/store.js';

/** A locked identity gets nothing new until an operator unlocks it. */
export const identityNotLocked: Rule<{ identityState: IdentityState; identity: { spiffeId: string } }, unknown> = (ctx) =>
  ctx.identityState.locked ? refuse('invalid_request', 'identity_locked', `identity ${ctx.identity.spiffeId} is locked by an operator`) : undefined;
