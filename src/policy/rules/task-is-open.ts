import { refuse, type Rule } from '../rule.js';
import type { ExchangeContext } from '../exchange-context.js';

/** Credentials are minted only inside an open task: known, not closed, not past its deadline. */
export const taskIsOpen: Rule<ExchangeContext, unknown> = (ctx) => {
  if (!ctx.task || !ctx.taskStatus) return refuse('invalid_request', 'task_unknown', 'unknown task_id');
  if (!ctx.taskStatus.open) return refuse('invalid_request', `task_${ctx.taskStatus.reason}`, `task is ${ctx.taskStatus.reason === 'closed' ? 'closed' : ctx.taskStatus.reason === 'expired' ? 'past its deadline' : 'revoked with its principal'}`);
  return undefined;
};
