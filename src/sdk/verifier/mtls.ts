/**
 * Client certificates for mTLS resource servers: the presented X.509-SVID chains to a certificate of
 * the trust bundle (through optional intermediates), every certificate on the way is within its
 * validity, the leaf is not a CA, carries exactly one SPIFFE ID as URI SAN, and neither its serial nor
 * its task (Mayfly's task-id extension) is revoked in the mirror.
 */
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { parseSpiffeId } from '../../ids/spiffe.js';
import { normalizeSerial } from './mirror.js';

/** Mayfly's task-id certificate extension: non-critical, extnValue = UTF8String task id. */
export const TASK_ID_EXTENSION_OID = '1.3.6.1.4.1.59470.1.1';

export type CertificateInput = X509Certificate | string | Buffer;

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

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle (or a DER buffer), in order. */
export function parseCertificates(input: CertificateInput | CertificateInput[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const item of Array.isArray(input) ? input : [input]) {
    if (item instanceof X509Certificate) out.push(item);
    else {
      const text = typeof item === 'string' ? item : item.toString('latin1');
      const blocks = text.match(PEM_BLOCK);
      if (blocks) for (const b of blocks) out.push(new X509Certificate(b));
      else out.push(new X509Certificate(typeof item === 'string' ? Buffer.from(item, 'latin1') : item));
    }
  }
  return out;
}

/** URI SANs of a certificate (Node prints them as `URI:...`, JSON-quoted when they contain separators). */
export function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const out: string[] = [];
  const re = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(san); m; m = re.exec(san)) out.push(m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!);
  return out;
}

/** The task id a Mayfly certificate carries, if any. */
export function taskIdOf(cert: X509Certificate): string | undefined {
  const ext = AsnConvert.parse(cert.raw, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === TASK_ID_EXTENSION_OID);
  if (!ext) return undefined;
  const v = Buffer.from(ext.extnValue.buffer);
  // DER UTF8String: tag 0x0C, short or one/two-byte long length
  if (v[0] !== 0x0c || v.length < 2) return undefined;
  let len = v[1]!;
  let off = 2;
  if (len === 0x81) [len, off] = [v[2] ?? 0, 3];
  else if (len === 0x82) [len, off] = [((v[2] ?? 0) << 8) | (v[3] ?? 0), 4];
  return off + len === v.length ? v.subarray(off).toString('utf8') : undefined;
}

const issuedBy = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey);

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
  if (leaf.ca) return { ok: false, code: 'not_a_leaf', message: 'a CA certificate cannot authenticate a workload' };

  // chain: leaf -> (intermediates)* -> anchor, at most 5 links
  const chain: X509Certificate[] = [leaf];
  let current = leaf;
  let anchored = false;
  for (let depth = 0; depth < 5 && !anchored; depth++) {
    const anchor = anchors.find((a) => issuedBy(current, a));
    if (anchor) {
      chain.push(anchor);
      anchored = true;
      break;
    }
    const next = intermediates.find((i) => i.ca && !chain.includes(i) && issuedBy(current, i));
    if (!next) break;
    chain.push(next);
    current = next;
  }
  if (!anchored) return { ok: false, code: 'untrusted', message: 'certificate does not chain to the trust bundle' };
  for (const c of chain) {
    if (Date.parse(c.validFrom) > now) return { ok: false, code: 'not_yet_valid', message: `certificate ${c === leaf ? '' : `in the chain (${c.subject}) `}is not valid yet` };
    if (Date.parse(c.validTo) <= now) return { ok: false, code: 'expired', message: `certificate ${c === leaf ? '' : `in the chain (${c.subject}) `}has expired` };
  }

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
