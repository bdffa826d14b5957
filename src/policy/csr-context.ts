/** What the CSR rules (policy/certificate.ts `csrRules`) judge: who asks, and what its parsed CSR asks for. */
import type { ParsedCsr } from '../x509/index.js';

export interface CsrContext {
  identity: { spiffeId: string };
  csr: Pick<ParsedCsr, 'asks'>;
}
