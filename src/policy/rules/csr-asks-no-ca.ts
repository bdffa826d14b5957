import { refuse, type Rule } from '../rule.js';
import type { CsrContext } from '../csr-context.js';

/** An X509-SVID is never a CA (SPIFFE X509-SVID §4.1): a CSR asking for CA:TRUE is refused, not quietly downgraded. */
export const csrAsksNoCa: Rule<CsrContext, unknown> = (ctx) =>
  ctx.csr.asks.ca ? refuse('invalid_request', 'csr_asks_ca', 'the CSR asks for CA:TRUE (basicConstraints); an X509-SVID is never a CA') : undefined;
