/**
 * Client certificates for mTLS resource servers: the presented X.509-SVID chains to a certificate of
 * the trust bundle (through optional intermediates), every certificate on the way is within its
 * validity, the leaf is not a CA, carries exactly one SPIFFE ID as URI SAN, and its serial is not in
 * the revocation mirror.
 */
import { X509Certificate } from 'node:crypto';
import { parseSpiffeId } from '../../ids/spiffe.js';
import { normalizeSerial } from './mirror.js';

export type CertificateInput = X509Certificate | string | Buffer;

export type CertificateCode = 'malformed' | 'untrusted' | 'expired' | 'not_yet_valid' | 'not_a_leaf' | 'no_spiffe_id' | 'wrong_trust_domain' | 'revoked' | 'stale';

export type CertificateResult =
  | { ok: true; spiffeId: string; trustDomain: string; serial: string; notAfter: number; certificate: X509Certificate }
  | { ok: false; code: CertificateCode; message: string };

export interface CertificateCheckOptions {
  /** Trust anchors: PEM text (one or many certificates), or certificates. */
  trustBundle: CertificateInput | CertificateInput[];
  /** Intermediate CAs the client sent along, if any. */
  intermediates?: CertificateInput[];
  /** Only SPIFFE IDs of this trust domain are accepted. */
  trustDomain?: string;
  now?: number;
  /** The revoked-serial check (the verifier passes its mirror). */
  isRevoked?: (serialLowerHex: string) => boolean;
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
  if (o.isRevoked?.(serial)) return { ok: false, code: 'revoked', message: `certificate ${serial} is revoked` };
  return { ok: true, spiffeId: spiffe[0]!, trustDomain: id.trustDomain, serial, notAfter: Date.parse(leaf.validTo), certificate: leaf };
}
