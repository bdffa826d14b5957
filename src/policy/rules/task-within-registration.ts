import { narrow, refuse, type Rule } from '../rule.js';
import type { TaskOpenContext } from '../task-context.js';

/** A task can never be wider than its orchestrator's own registration (operators are not bounded). */
export const taskWithinRegistration: Rule<TaskOpenContext, unknown> = (ctx) => {
  if (ctx.opener.kind !== 'workload') return undefined;
  const reg = ctx.opener.identity.registration;
  const checks = [
    ['scopes', ctx.spec.scopes, reg.scopes, 'invalid_scope', 'scope_escalation'],
    ['tools', ctx.spec.tools, reg.tools, 'invalid_scope', 'tool_escalation'],
    ['audiences', ctx.spec.audiences, reg.audiences, 'invalid_target', 'audience_escalation'],
  ] as const;
  for (const [what, asked, ceiling, code, reason] of checks) {
    const r = narrow(asked, ceiling);
    if ('outside' in r) return refuse(code, reason, `${what} beyond the orchestrator's registration: ${r.outside.join(' ')}`);
  }
  return undefined;
};
