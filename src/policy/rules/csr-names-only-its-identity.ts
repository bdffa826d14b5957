import { refuse, type Rule } from '../rule.js';
import type { CsrContext } from '../csr-context.js';

const MAX_LISTED = 3;
const MAX_NAME = 120;

/** Printable and short enough for an error description: the names come from the client. */
const shown = (name: string): string => {
  const clean = name.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > MAX_NAME ? `${clean.slice(0, MAX_NAME)}...` : clean;
};

/**
 * A CSR may name only the attested identity: a subjectAltName other than `URI:<its SPIFFE ID>` (another
 * SPIFFE ID, a DNS name, an address, ...) asks for an identity the attestation did not prove, and is
 * refused, like step-ca's SAN validators do, instead of being dropped in silence.
 */
export const csrNamesOnlyItsIdentity: Rule<CsrContext, unknown> = (ctx) => {
  const own = `URI:${ctx.identity.spiffeId}`;
  const foreign = ctx.csr.asks.sans.filter((n) => n !== own);
  if (foreign.length === 0) return undefined;
  const listed = foreign.slice(0, MAX_LISTED).map(shown).join(', ') + (foreign.length > MAX_LISTED ? `, and ${foreign.length - MAX_LISTED} more` : '');
  return refuse('invalid_request', 'csr_foreign_san', `the CSR asks for subjectAltName ${listed}, not this agent's identity (${ctx.identity.spiffeId}); an X509-SVID names only its own SPIFFE ID`);
};
