/**
 * Certificates presented by a peer (a TLS client): parsing PEM/DER into node:crypto X509Certificate,
 * the URI SANs and Mayfly task id of a leaf, and the path from a leaf to a trust anchor (RFC 5280 §6,
 * reduced to what a workload certificate needs: signatures, CA flags of issuers, validity of every
 * link, at most 5 links). Shared by the broker's certificate attestation (attest/client-certificate.ts)
 * and the resource-server SDK (sdk/verifier/mtls.ts).
 */
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { OID } from './algs.js';
import { expectTag, readWhole, TAG } from './der.js';

export type CertificateInput = X509Certificate | string | Buffer;

export type ChainFailure = 'untrusted' | 'expired' | 'not_yet_valid' | 'not_a_leaf';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle (or a DER buffer), in order. Throws on anything else. */
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
  return sans(cert, 'URI');
}

/** DNS SANs of a certificate. */
export function dnsSans(cert: X509Certificate): string[] {
  return sans(cert, 'DNS');
}

function sans(cert: X509Certificate, kind: 'URI' | 'DNS'): string[] {
  const san = cert.subjectAltName ?? '';
  const out: string[] = [];
  const re = new RegExp(`(?:^|, )${kind}:("(?:[^"\\\\]|\\\\.)*"|[^,]*)`, 'g');
  for (let m = re.exec(san); m; m = re.exec(san)) out.push(m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!);
  return out;
}

/** The task id a Mayfly certificate carries (extension 1.3.6.1.4.1.59470.1.1, a UTF8String), if any. */
export function taskIdOf(cert: X509Certificate): string | undefined {
  const ext = AsnConvert.parse(cert.raw, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === OID.mayflyTaskId);
  if (!ext) return undefined;
  const v = Buffer.from(ext.extnValue.buffer);
  try {
    const t = expectTag(readWhole(v), TAG.UTF8String, 'task id UTF8String');
    return v.subarray(t.start, t.end).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * A serial in the broker's one spelling (lowercase hex, whole bytes, no leading zero byte), from any
 * common one: upper case, `:`-separated, an odd digit count, leading zero bytes (node prints `00A1...`).
 */
export function normalizeSerial(s: string): string {
  let h = s.toLowerCase().replace(/:/g, '');
  if (h.length % 2) h = `0${h}`;
  while (h.length > 2 && h.startsWith('00')) h = h.slice(2);
  return h;
}

/** Whether `parent` issued `child`: names and key identifiers line up, and its key verifies the signature. */
export const issuedBy = (child: X509Certificate, parent: X509Certificate): boolean => child.checkIssued(parent) && child.verify(parent.publicKey);

/**
 * The path leaf -> (intermediates)* -> one of `anchors`, every link signed by the next, every issuer a
 * CA, every certificate within its validity at `now`. The leaf must not be a CA.
 */
export function chainTo(
  leaf: X509Certificate,
  anchors: readonly X509Certificate[],
  intermediates: readonly X509Certificate[],
  now: number,
): { ok: true; chain: X509Certificate[]; anchor: X509Certificate } | { ok: false; code: ChainFailure; message: string } {
  if (leaf.ca) return { ok: false, code: 'not_a_leaf', message: 'a CA certificate cannot authenticate a workload' };
  const chain: X509Certificate[] = [leaf];
  let current = leaf;
  let anchor: X509Certificate | undefined;
  for (let depth = 0; depth < 5; depth++) {
    anchor = anchors.find((a) => a.ca && issuedBy(current, a));
    if (anchor) break;
    const next = intermediates.find((i) => i.ca && !chain.includes(i) && issuedBy(current, i));
    if (!next) break;
    chain.push(next);
    current = next;
  }
  if (!anchor) return { ok: false, code: 'untrusted', message: 'certificate does not chain to the trust bundle' };
  chain.push(anchor);
  for (const c of chain) {
    const where = c === leaf ? '' : `in the chain (${c.subject}) `;
    if (Date.parse(c.validFrom) > now) return { ok: false, code: 'not_yet_valid', message: `certificate ${where}is not valid yet` };
    if (Date.parse(c.validTo) <= now) return { ok: false, code: 'expired', message: `certificate ${where}has expired` };
  }
  return { ok: true, chain, anchor };
}
