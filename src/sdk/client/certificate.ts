/**
 * X.509-SVIDs for a task: a fresh EC P-256 key stays here, its CSR goes to the broker with the agent's
 * attestation, and the certificate (SPIFFE ID as URI SAN, the task id in an extension) comes back.
 *
 * TODO(certificates): the broker has no certificate route yet (src/x509 is the CA library, not wired to
 * HTTP). This speaks the contract it is expected to get, `POST /v1/certificates` with Bearer
 * attestation and JSON `{task_id, csr}` (PEM) answering `{certificate, chain, serial, spiffe_id,
 * expires_at}`; until the route exists it fails with BrokerError `not_supported`. Align both when the
 * route lands. The CSR itself (csr.ts) is already accepted by the broker's parser (src/x509/csr.ts).
 */
import { BrokerError, endpoint, jsonOrThrow, request, type FetchLike } from '../http.js';
import type { AttestationSource } from './attestation.js';
import { newKeyAndCsr } from './csr.js';

export interface CertificateRequest {
  task: string;
}

export interface IssuedCertificate {
  /** The leaf certificate, PEM. */
  certificatePem: string;
  /** Chain to send after the leaf (intermediates), PEM; may be empty. */
  chainPem: string;
  /** PKCS#8 PEM of the private key (generated here, never sent). */
  keyPem: string;
  serial: string;
  spiffeId: string;
  expiresAt: number;
}

export async function requestCertificate(brokerUrl: string, f: FetchLike, attestation: AttestationSource, req: CertificateRequest): Promise<IssuedCertificate> {
  const k = newKeyAndCsr();
  const res = await request(f, endpoint(brokerUrl, '/v1/certificates'), {
    method: 'POST',
    headers: { authorization: `Bearer ${await attestation.token()}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ task_id: req.task, csr: k.csrPem }),
  });
  if (res.status === 404 && /no route for/.test(await res.clone().text())) throw new BrokerError(404, 'not_supported', 'this broker does not issue certificates yet (no /v1/certificates route)');
  const body = await jsonOrThrow<{ certificate?: string; chain?: string | string[]; serial?: string; spiffe_id?: string; expires_at?: string }>(res);
  if (typeof body?.certificate !== 'string') throw new Error('certificate endpoint answer has no certificate');
  return {
    certificatePem: body.certificate,
    chainPem: Array.isArray(body.chain) ? body.chain.join('') : (body.chain ?? ''),
    keyPem: k.keyPem,
    serial: body.serial ?? '',
    spiffeId: body.spiffe_id ?? '',
    expiresAt: body.expires_at ? Date.parse(body.expires_at) : 0,
  };
}
