/**
 * X.509-SVIDs for a task (POST /v1/certificates): a fresh EC P-256 key stays here, its CSR goes to the
 * broker with the agent's attestation as Bearer, and the certificate comes back (the SPIFFE ID as the
 * only URI SAN, the task id in Mayfly's extension), valid no longer than the task. Closing the task,
 * locking the identity or revoking the serial revokes it (CRL, OCSP and the revocation feed).
 */
import { endpoint, jsonOrThrow, request, type FetchLike } from '../http.js';
import type { AttestationSource } from './attestation.js';
import { newKeyAndCsr } from './csr.js';
import { attestationHeader } from './mtls.js';

export interface CertificateRequest {
  task: string;
}

export interface IssuedCertificate {
  /** The leaf certificate, PEM. */
  certificatePem: string;
  /** What to send after the leaf (intermediates, never the root), PEM; may be empty. */
  chainPem: string;
  /** PKCS#8 PEM of the private key (generated here, never sent). */
  keyPem: string;
  /** Lowercase hex, as the revocation feed, CRL and OCSP name it. */
  serial: string;
  spiffeId: string;
  taskId: string;
  /** ms since the epoch. */
  expiresAt: number;
}

interface Answer {
  certificate?: unknown;
  chain?: unknown;
  serial?: unknown;
  not_after?: unknown;
  spiffe_id?: unknown;
  task_id?: unknown;
}

export async function requestCertificate(brokerUrl: string, f: FetchLike, attestation: AttestationSource, req: CertificateRequest): Promise<IssuedCertificate> {
  const k = newKeyAndCsr();
  const res = await request(f, endpoint(brokerUrl, '/v1/certificates'), {
    method: 'POST',
    headers: { ...attestationHeader(await attestation.token()), 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ task_id: req.task, csr: k.csrPem }),
  });
  const a = await jsonOrThrow<Answer>(res);
  if (typeof a?.certificate !== 'string' || typeof a.serial !== 'string' || typeof a.not_after !== 'string') throw new Error('certificate endpoint answer lacks certificate/serial/not_after');
  return {
    certificatePem: a.certificate,
    chainPem: Array.isArray(a.chain) ? a.chain.filter((c): c is string => typeof c === 'string').join('') : '',
    keyPem: k.keyPem,
    serial: a.serial,
    spiffeId: typeof a.spiffe_id === 'string' ? a.spiffe_id : '',
    taskId: typeof a.task_id === 'string' ? a.task_id : req.task,
    expiresAt: Date.parse(a.not_after),
  };
}

/** The broker CA's trust anchors (GET /v1/ca/bundle), PEM: what mTLS servers trust and check against. */
export async function fetchTrustBundle(brokerUrl: string, f: FetchLike = (...a) => fetch(...a)): Promise<string> {
  const res = await request(f, endpoint(brokerUrl, '/v1/ca/bundle'), { headers: { accept: 'application/x-pem-file' } });
  if (!res.ok) await jsonOrThrow(res);
  const pem = await res.text();
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('the CA bundle is not PEM');
  return pem;
}
