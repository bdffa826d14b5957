/**
 * The certificate policy, as two lists: the task rules of token exchange, minus scopes/tools/audiences
 * (before the CSR is parsed: a refused request never pays for its signature check); then the rules on
 * what the parsed CSR asks for.
 */
import { applyRules, refuse, type Refusal, type Rule } from './rule.js';
import type { ExchangeContext, ExchangeDraft } from './exchange-context.js';
import { identityNotLocked } from './rules/identity-not-locked.js';
import { taskIsOpen } from './rules/task-is-open.js';
import { proofForThisTask } from './rules/proof-for-this-task.js';
import { agentInTask } from './rules/agent-in-task.js';
import { ttlClampedToDeadline } from './rules/ttl-clamped-to-deadline.js';
import { csrAsksNoCa } from './rules/csr-asks-no-ca.js';
import { csrNamesOnlyItsIdentity } from './rules/csr-names-only-its-identity.js';
import type { CsrContext } from './csr-context.js';
import { withinCaValidity } from './rules/within-ca-validity.js';

/** What the certificate rules look at: the exchange's, and the signing CA's notAfter (ms). */
export interface CertificateContext extends ExchangeContext {
  caNotAfterMs: number;
}

/** Only registrations with `certificates: true` may ask for an X.509 certificate. */
export const certificatesAllowed: Rule<ExchangeContext, ExchangeDraft> = (ctx) =>
  ctx.identity.registration.certificates ? undefined : refuse('access_denied', 'certificates_not_allowed', `${ctx.identity.spiffeId} is not registered for certificates`);

export const certificateRules: readonly Rule<CertificateContext, ExchangeDraft>[] = [
  certificatesAllowed,
  identityNotLocked,
  taskIsOpen,
  proofForThisTask,
  agentInTask,
  ttlClampedToDeadline,
  withinCaValidity,
];

export function decideCertificate(ctx: CertificateContext): { draft: ExchangeDraft } | { refusal: Refusal } {
  const draft: ExchangeDraft = { scopes: [], tools: [], audiences: [], ttlMs: 0 };
  const refusal = applyRules(certificateRules, ctx, draft);
  return refusal ? { refusal } : { draft };
}

export const csrRules: readonly Rule<CsrContext, unknown>[] = [csrAsksNoCa, csrNamesOnlyItsIdentity];

export function decideCsr(ctx: CsrContext): Refusal | undefined {
  return applyRules(csrRules, ctx, undefined);
}
