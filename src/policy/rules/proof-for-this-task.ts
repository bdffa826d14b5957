import { refuse, type Rule } from '../rule.js';
import type { ExchangeContext } from '../exchange-context.js';

/** A proof that belongs to one task (its own X509-SVID, presented over mTLS) attests for that task only. */
export const proofForThisTask: Rule<ExchangeContext, unknown> = (ctx) =>
  ctx.identity.taskId === undefined || ctx.identity.taskId === ctx.task!.id
    ? undefined
    : refuse('invalid_request', 'proof_for_other_task', `the certificate presented belongs to task ${ctx.identity.taskId}: it attests for that task only`);
