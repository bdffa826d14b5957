/**
 * Policy reads as a list: each rule is a small named check that either refuses (an OAuth error code, a
 * description for the caller and a reason for audit) or narrows the draft. Compare step-ca's
 * sign_options.go and node-oidc-provider's lib/actions/authorization/.
 */
import type { ErrorCode } from '../errors.js';

export interface Refusal {
  code: ErrorCode;
  reason: string;
  description: string;
}

export type Rule<Ctx, Draft> = (ctx: Ctx, draft: Draft) => Refusal | undefined;

export const refuse = (code: ErrorCode, reason: string, description: string): Refusal => ({ code, reason, description });

/** Runs the rules in order; the first refusal wins. */
export function applyRules<Ctx, Draft>(rules: readonly Rule<Ctx, Draft>[], ctx: Ctx, draft: Draft): Refusal | undefined {
  for (const rule of rules) {
    const r = rule(ctx, draft);
    if (r) return r;
  }
  return undefined;
}

/**
 * The heart of least privilege: what may be granted is the intersection of every ceiling. A request
 * naming anything outside it is refused (listing what), never silently trimmed; no request means the
 * whole intersection.
 */
export function narrow(requested: string[] | undefined, ...ceilings: string[][]): { granted: string[] } | { outside: string[] } {
  const allowed = ceilings.slice(1).reduce((acc, c) => acc.filter((x) => c.includes(x)), ceilings[0] ?? []);
  if (requested === undefined) return { granted: allowed };
  const outside = requested.filter((x) => !allowed.includes(x));
  return outside.length > 0 ? { outside } : { granted: requested };
}
