/**
 * Client certificates for mTLS resource servers: the presented X.509-SVID chains to a certificate of
 * the trust bundle (through optional intermediates), every certificate on the way is within its
 * validity, the leaf is not a CA, carries exactly one SPIFFE ID as URI SAN, and neither its serial nor
 * its task (Mayfly's task-id extension) is revoked in the mirror.
 */
import { createHash, timingSafeEqual, type X509Certificate } from 'node:crypto';
import { fail, type VerifyFailure } from './result.js';
import { parseSpiffeId } from '../../ids/spiffe.js';
import { chainTo, parseCertificates, taskIdOf, uriSans, type CertificateInput } from '../../x509/peer.js';
import { OID } from '../../x509/algs.js';
import { normalizeSerial } from './mirror.js';

export { parseCertificates, uriSans, taskIdOf, type CertificateInput };

/** Mayfly's task-id certificate extension: non-critical, extnValue = UTF8String task id. */
export const TASK_ID_EXTENSION_OID = OID.mayflyTaskId;

export type CertificateCode = 'malformed' | 'untrusted' | 'expired' | 'not_yet_valid' | 'not_a_leaf' | 'no_spiffe_id' | 'wrong_trust_domain' | 'revoked' | 'stale';

export type CertificateResult =
  | { ok: true; spiffeId: string; trustDomain: string; serial: string; taskId: string | undefined; notAfter: number; certificate: X509Certificate }
  | { ok: false; code: CertificateCode; message: string };

export interface CertificateCheckOptions {
  /** Trust anchors: PEM text (one or many certificates), or certificates. */
  trustBundle: CertificateInput | CertificateInput[];
  /** Intermediate CAs the client sent along, if any. */
  intermediates?: CertificateInput[];
  /** Only SPIFFE IDs of this trust domain are accepted. */
  trustDomain?: string;
  now?: number;
  /** The revocation state (the verifier passes its mirror). */
  revocation?: { isSerialRevoked(serialLowerHex: string): boolean; isTaskClosed(taskId: string): boolean };
}

export function checkClientCertificate(input: CertificateInput, o: CertificateCheckOptions): CertificateResult {
  let leaf: X509Certificate;
  let anchors: X509Certificate[];
  let intermediates: X509Certificate[];
  try {
    leaf = parseCertificates(input)[0]!;
    anchors = parseCertificates(o.trustBundle);
    intermediates = o.intermediates ? parseCertificates(o.intermediates) : [];
    if (!leaf) throw new Error('no certificate');
  } catch (e) {
    return { ok: false, code: 'malformed', message: `not an X.509 certificate: ${(e as Error).message}` };
  }
  const now = o.now ?? Date.now();
  const path = chainTo(leaf, anchors, intermediates, now);
  if (!path.ok) return path;

  const uris = uriSans(leaf);
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
  const id = spiffe.length === 1 ? parseSpiffeId(spiffe[0]) : null;
  if (!id) return { ok: false, code: 'no_spiffe_id', message: 'certificate must carry exactly one valid SPIFFE ID as URI SAN' };
  if (o.trustDomain && id.trustDomain !== o.trustDomain) return { ok: false, code: 'wrong_trust_domain', message: `SPIFFE ID is not in trust domain ${o.trustDomain}` };
  const serial = normalizeSerial(leaf.serialNumber);
  let taskId: string | undefined;
  try {
    taskId = taskIdOf(leaf);
  } catch (e) {
    return { ok: false, code: 'malformed', message: `certificate extensions unreadable: ${(e as Error).message}` };
  }
  if (o.revocation?.isSerialRevoked(serial)) return { ok: false, code: 'revoked', message: `certificate ${serial} is revoked` };
  if (taskId !== undefined && o.revocation?.isTaskClosed(taskId)) return { ok: false, code: 'revoked', message: `task ${taskId} of the certificate is closed` };
  return { ok: true, spiffeId: spiffe[0]!, trustDomain: id.trustDomain, serial, taskId, notAfter: Date.parse(leaf.validTo), certificate: leaf };
}

/**
 * RFC 8705 §3: a certificate-bound token (`cnf.x5t#S256`) is good only with the certificate it is bound
 * to, the one the client presented on this TLS connection. Null when it is; a failure otherwise.
 */
export function checkCertificateBinding(x5t: string, presented: CertificateInput | undefined): VerifyFailure | null {
  if (presented === undefined) return fail('certificate_mismatch', 'token is bound to a client certificate (RFC 8705): present it over mTLS');
  let der: Buffer;
  try {
    der = parseCertificates(presented)[0]!.raw;
  } catch {
    return fail('certificate_mismatch', 'the client certificate presented is not an X.509 certificate');
  }
  const want = Buffer.from(x5t, 'base64url');
  const have = createHash('sha256').update(der).digest();
  return want.length === have.length && timingSafeEqual(want, have) ? null : fail('certificate_mismatch', 'token is bound to another client certificate');
}
