/**
 * Reads the parts of an X.509 certificate (RFC 5280 §4.1) the CA layer needs, as raw DER slices, with
 * the strict reader of der.ts: exact issuer/subject bytes (an issued certificate's issuer must be
 * byte-identical to its CA's subject), the SPKI and its key bits (SKI and OCSP key hashes), validity,
 * and the extensions by OID, with decoders for the few a CA needs.
 *
 *   readCertificate(der): CertificateParts           throws DerError on anything malformed
 *   readExtensions(der, seq): the extensions of a certificate or of a CSR's extensionRequest
 *   decodeBasicConstraints / decodeKeyUsage / decodeGeneralNames / decodeNameConstraintUris / decodeOctetString
 */
import {
  DerError,
  TAG,
  bitStringBytes,
  checkDer,
  children,
  content,
  expectTag,
  oidKey,
  readSmallInt,
  readTime,
  readWhole,
  whole,
  type Tlv,
} from './der.js';

export interface CertificateExtension {
  critical: boolean;
  /** extnValue content (the DER of the extension's value). */
  value: Buffer;
}

export interface CertificateParts {
  der: Buffer;
  tbsDer: Buffer;
  version: number;
  serial: Buffer;
  issuerDer: Buffer;
  subjectDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** The subjectPublicKey BIT STRING value (no unused-bits octet). */
  publicKeyBits: Buffer;
  /** Keyed by `oidHex(dotted)`. */
  extensions: Map<string, CertificateExtension>;
}

const b = (u: Uint8Array): Buffer => Buffer.from(u);

export function readCertificate(der: Uint8Array): CertificateParts {
  const top = expectTag(readWhole(der), TAG.SEQUENCE, 'Certificate');
  checkDer(der, top);
  const [tbs, , sig] = children(der, top);
  if (!tbs || !sig || children(der, top).length !== 3) throw new DerError('Certificate has 3 fields');
  expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate');
  const f = children(der, tbs);
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) {
    const v = children(der, f[0]);
    if (v.length !== 1) throw new DerError('bad version');
    version = readSmallInt(der, v[0]!);
    i++;
  }
  const serial = expectTag(f[i++], TAG.INTEGER, 'serialNumber');
  expectTag(f[i++], TAG.SEQUENCE, 'signature');
  const issuer = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  const validity = children(der, expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new DerError('bad validity');
  const subject = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const spki = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const spkiParts = children(der, spki);
  if (spkiParts.length !== 2) throw new DerError('bad SubjectPublicKeyInfo');
  const extensions = new Map<string, CertificateExtension>();
  for (; i < f.length; i++) {
    const t = f[i]!;
    if (t.tag === 0xa1 || t.tag === 0x81 || t.tag === 0xa2 || t.tag === 0x82) continue; // unique ids
    if (t.tag !== 0xa3) throw new DerError('unexpected field in TBSCertificate');
    const list = children(der, t);
    if (list.length !== 1) throw new DerError('bad extensions');
    readExtensions(der, list[0]!, extensions);
  }
  return {
    der: b(der),
    tbsDer: b(whole(der, tbs)),
    version,
    serial: b(content(der, serial)),
    issuerDer: b(whole(der, issuer)),
    subjectDer: b(whole(der, subject)),
    notBefore: readTime(der, validity[0]!),
    notAfter: readTime(der, validity[1]!),
    spkiDer: b(whole(der, spki)),
    publicKeyBits: b(bitStringBytes(der, spkiParts[1]!)),
    extensions,
  };
}

/**
 * `Extensions ::= SEQUENCE OF Extension` (RFC 5280 §4.1) into `into`, keyed by `oidHex(dotted)`; a
 * repeated extension is an error (§4.2: at most one instance of each). Also the content of a CSR's
 * extensionRequest attribute (RFC 2985 §5.4.2), which has the same syntax.
 */
export function readExtensions(der: Uint8Array, seq: Tlv, into: Map<string, CertificateExtension> = new Map()): Map<string, CertificateExtension> {
  for (const e of children(der, expectTag(seq, TAG.SEQUENCE, 'Extensions'))) {
    const ef = children(der, expectTag(e, TAG.SEQUENCE, 'Extension'));
    const id = oidKey(der, ef[0] ?? fail());
    let critical = false;
    let j = 1;
    if (ef[j]?.tag === TAG.BOOLEAN) critical = der[ef[j++]!.start] === 0xff;
    const value = expectTag(ef[j++], TAG.OCTET_STRING, 'extnValue');
    if (j !== ef.length) throw new DerError('bad Extension');
    if (into.has(id)) throw new DerError('duplicate extension');
    into.set(id, { critical, value: b(content(der, value)) });
  }
  return into;
}

function fail(): never {
  throw new DerError('bad Extension');
}

function one(value: Buffer, tag: number, what: string): Tlv {
  return expectTag(readWhole(value), tag, what);
}

export function decodeBasicConstraints(value: Buffer): { cA: boolean; pathLen?: number } {
  const t = one(value, TAG.SEQUENCE, 'BasicConstraints');
  checkDer(value, t);
  const c = children(value, t);
  let cA = false;
  let k = 0;
  if (c[k]?.tag === TAG.BOOLEAN) cA = value[c[k++]!.start] === 0xff;
  const out: { cA: boolean; pathLen?: number } = { cA };
  if (c[k]) out.pathLen = readSmallInt(value, c[k++]!);
  if (k !== c.length) throw new DerError('bad BasicConstraints');
  return out;
}

/** KeyUsage bits as a set of bit numbers (0 = digitalSignature … 5 = keyCertSign, 6 = cRLSign). */
export function decodeKeyUsage(value: Buffer): Set<number> {
  const t = one(value, TAG.BIT_STRING, 'KeyUsage');
  checkDer(value, t);
  const out = new Set<number>();
  const bytes = value.subarray(t.start + 1, t.end);
  for (let n = 0; n < bytes.length * 8; n++) if (bytes[n >> 3]! & (0x80 >> (n & 7))) out.add(n);
  return out;
}

export function decodeOctetString(value: Buffer): Buffer {
  const t = one(value, TAG.OCTET_STRING, 'OCTET STRING');
  return b(content(value, t));
}

/**
 * GeneralNames (RFC 5280 §4.2.1.6), each as OpenSSL prints it: `URI:…`, `DNS:…`, `email:…`, `IP:…`
 * (dotted IPv4, or IPv6 as hex groups), and the other forms by kind only (`othername`, `DirName`,
 * `X400Name`, `EdiPartyName`, `RID`). Strings are read as Latin-1 (IA5String is ASCII).
 */
export function decodeGeneralNames(value: Buffer): string[] {
  const t = one(value, TAG.SEQUENCE, 'GeneralNames');
  checkDer(value, t);
  const out: string[] = [];
  for (const n of children(value, t)) {
    const text = () => Buffer.from(content(value, n)).toString('latin1');
    switch (n.tag) {
      case 0x86: out.push(`URI:${text()}`); break;
      case 0x82: out.push(`DNS:${text()}`); break;
      case 0x81: out.push(`email:${text()}`); break;
      case 0x87: out.push(`IP:${ipText(content(value, n))}`); break;
      case 0xa0: out.push('othername'); break;
      case 0xa3: out.push('X400Name'); break;
      case 0xa4: out.push('DirName'); break;
      case 0xa5: out.push('EdiPartyName'); break;
      case 0x88: out.push('RID'); break;
      default: throw new DerError('bad GeneralName');
    }
  }
  if (out.length === 0) throw new DerError('empty GeneralNames');
  return out;
}

function ipText(a: Uint8Array): string {
  if (a.length === 4) return [...a].join('.');
  if (a.length === 16) return Array.from({ length: 8 }, (_, i) => ((a[2 * i]! << 8) | a[2 * i + 1]!).toString(16)).join(':');
  return `<${a.length} bytes>`;
}

/** URI name constraints (RFC 5280 §4.2.1.10): host names; a leading '.' means "any subdomain of". */
export function decodeNameConstraintUris(value: Buffer): { permitted: string[] | null; excluded: string[] } {
  const t = one(value, TAG.SEQUENCE, 'NameConstraints');
  checkDer(value, t);
  let permitted: string[] | null = null;
  const excluded: string[] = [];
  for (const part of children(value, t)) {
    if (part.tag !== 0xa0 && part.tag !== 0xa1) throw new DerError('bad NameConstraints');
    const uris: string[] = [];
    for (const sub of children(value, part)) {
      const base = children(value, expectTag(sub, TAG.SEQUENCE, 'GeneralSubtree'))[0];
      if (base?.tag === 0x86) uris.push(Buffer.from(content(value, base)).toString('latin1'));
    }
    if (part.tag === 0xa0) {
      if (uris.length) permitted = uris;
    } else excluded.push(...uris);
  }
  return { permitted, excluded };
}

/** RFC 5280 §4.2.1.10 URI matching on the host part, as OpenSSL and Go do it. */
export function uriHostMatches(host: string, base: string): boolean {
  const h = host.toLowerCase();
  const c = base.toLowerCase();
  if (c.startsWith('.')) return h.endsWith(c) && h.length > c.length;
  return h === c;
}
