import { refuse, type Rule } from '../rule.js';
import type { ExchangeDraft } from '../exchange-context.js';
import type { CertificateContext } from '../certificate.js';
import { MIN_TTL_MS } from './ttl-clamped-to-deadline.js';

/**
 * A certificate never outlives the CA that signs it (RFC 5280 §6.1.3: it would not verify past the
 * CA's notAfter), so its lifetime is capped there too, and the record, its status and OCSP say the
 * same instant as the certificate. A CA that has expired (or is about to) issues nothing: 503 until it
 * is replaced, as step-ca refuses to sign with an expired intermediate.
 */
export const withinCaValidity: Rule<CertificateContext, ExchangeDraft> = (ctx, draft) => {
  draft.ttlMs = Math.min(draft.ttlMs, ctx.caNotAfterMs - ctx.now);
  if (draft.ttlMs < MIN_TTL_MS)
    return refuse('temporarily_unavailable', 'ca_expired', `the CA certificate ${ctx.caNotAfterMs <= ctx.now ? 'expired' : 'expires'} at ${new Date(ctx.caNotAfterMs).toISOString()}: nothing is issued until it is replaced (ca.cert_file)`);
  return undefined;
};
