/**
 * OCSP (RFC 6960) for certificates of one CA, the CA itself signing the responses (§4.2.2.2 case 1).
 *
 * API
 *   parseOcspRequest(der: Uint8Array): OcspRequest { certIds: OcspCertId[], nonce?: Buffer }
 *     Strict DER OCSPRequest, ≤ 16 KiB, 1..32 CertIDs; a request signature, if any, is ignored.
 *     Each CertID: hashAlg ('sha1'|'sha256'|'sha384'|'sha512', or 'unsupported'), issuerNameHash,
 *     issuerKeyHash, serialHex (canonical form of certificate.ts serialHexOf; '-'-prefixed for a
 *     negative INTEGER, so it never matches a real serial) and `der`, the CertID exactly as sent (the
 *     response echoes it byte for byte so clients match it).
 *     `nonce` is the nonce extension's extnValue content (RFC 8954: an OCTET STRING of 1..32 octets),
 *     echoed verbatim by buildOcspResponse. Anything malformed: X509Error('ocsp_malformed'), to be
 *     answered with ocspError('malformedRequest').
 *   certIdMatchesCa(ca, certId): boolean     issuerNameHash/issuerKeyHash are this CA's (SHA-1/256/384/512)
 *   buildOcspResponse(ca, responses: OcspSingleResponse[], opts?: { nonce?, producedAt?, includeCaCert? }): Buffer
 *     A successful OCSPResponse with a BasicOCSPResponse signed by the CA key, responderID byKey
 *     (SHA-1 of the CA key bits), one SingleResponse per entry (status 'unknown' is forced for a CertID
 *     that is not this CA's), the nonce extension if given, and the CA certificate in `certs` when
 *     includeCaCert (default false: clients hold the issuer already). Times are GeneralizedTime.
 *   ocspError(status): Buffer   an OCSPResponse with only responseStatus
 *     ('malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized').
 */
import { createHash } from 'node:crypto';
import { OID, sign, signatureAlgorithmDer } from './algs.js';
import type { CertificateAuthority } from './ca.js';
import { serialHexOf } from './certificate.js';
import {
  DerError,
  TAG,
  bits,
  checkDer,
  children,
  content,
  ctx,
  expectTag,
  floorSecond,
  generalizedTime,
  octets,
  oid,
  oidHex,
  oidKey,
  readSmallInt,
  readTlv,
  readWhole,
  seq,
  tlv,
  whole,
  type Tlv,
} from './der.js';
import { X509Error } from './errors.js';

export const OCSP_MAX_REQUEST = 16 * 1024;
export const OCSP_MAX_CERT_IDS = 32;

export type OcspHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface OcspCertId {
  hashAlg: OcspHash | 'unsupported';
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serialHex: string;
  der: Buffer;
}

export interface OcspRequest {
  certIds: OcspCertId[];
  nonce?: Buffer;
}

export interface OcspSingleResponse {
  certId: OcspCertId;
  status: 'good' | 'revoked' | 'unknown';
  revokedAt?: Date;
  /** CRLReason code (RFC 5280 §5.3.1), only for 'revoked'. */
  revocationReason?: number;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export interface OcspResponseOptions {
  nonce?: Buffer;
  producedAt?: Date;
  includeCaCert?: boolean;
}

const HASHES: Record<string, OcspHash> = {
  [oidHex(OID.sha1)]: 'sha1',
  [oidHex(OID.sha256)]: 'sha256',
  [oidHex(OID.sha384)]: 'sha384',
  [oidHex(OID.sha512)]: 'sha512',
};
const HASH_LEN: Record<OcspHash, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const NONCE = oidHex(OID.ocspNonce);

const malformed = (msg: string, cause?: unknown): never => {
  throw new X509Error('ocsp_malformed', msg, cause === undefined ? undefined : { cause });
};

function parseCertId(buf: Uint8Array, t: Tlv): OcspCertId {
  const f = children(buf, expectTag(t, TAG.SEQUENCE, 'CertID'));
  if (f.length !== 4) throw new DerError('CertID has 4 fields');
  const alg = children(buf, expectTag(f[0], TAG.SEQUENCE, 'hashAlgorithm'));
  if (alg.length < 1 || alg.length > 2) throw new DerError('bad hashAlgorithm');
  const hashAlg = HASHES[oidKey(buf, alg[0]!)] ?? 'unsupported';
  if (alg[1] && alg[1].tag !== TAG.NULL) throw new DerError('bad hashAlgorithm parameters');
  const nameHash = Buffer.from(content(buf, expectTag(f[1], TAG.OCTET_STRING, 'issuerNameHash')));
  const keyHash = Buffer.from(content(buf, expectTag(f[2], TAG.OCTET_STRING, 'issuerKeyHash')));
  if (nameHash.length > 64 || keyHash.length > 64) throw new DerError('hash too long');
  const serial = content(buf, expectTag(f[3], TAG.INTEGER, 'serialNumber'));
  if (serial.length > 32) throw new DerError('serial too long');
  const serialHex = serial[0]! & 0x80 ? '-' + Buffer.from(serial).toString('hex') : serialHexOf(serial);
  return { hashAlg, issuerNameHash: nameHash, issuerKeyHash: keyHash, serialHex, der: Buffer.from(whole(buf, t)) };
}

function parseNonce(buf: Uint8Array, exts: Tlv): Buffer | undefined {
  const list = children(buf, exts);
  if (list.length !== 1) throw new DerError('bad requestExtensions');
  let nonce: Buffer | undefined;
  for (const e of children(buf, expectTag(list[0], TAG.SEQUENCE, 'Extensions'))) {
    const f = children(buf, expectTag(e, TAG.SEQUENCE, 'Extension'));
    const id = oidKey(buf, f[0] ?? e);
    const value = f[f.length - 1];
    if (f.length < 2 || f.length > 3 || !value || value.tag !== TAG.OCTET_STRING) throw new DerError('bad Extension');
    // unknown request extensions are ignored (§4.4), unless marked critical (RFC 5280 §4.2: then the
    // request cannot be processed without it, and it is refused)
    const critical = f.length === 3 && f[1]!.tag === TAG.BOOLEAN && content(buf, f[1]!)[0] !== 0;
    if (id !== NONCE) {
      if (critical) throw new DerError('unsupported critical request extension');
      continue;
    }
    if (nonce) throw new DerError('duplicate nonce');
    const v = content(buf, value);
    // RFC 8954: the nonce is an OCTET STRING of 1..32 octets (some old clients send the raw bytes).
    let n = v.length;
    if (v[0] === TAG.OCTET_STRING) {
      try {
        const inner = readTlv(v, 0, v.length);
        if (inner.end === v.length) n = inner.end - inner.start;
      } catch {
        /* raw nonce */
      }
    }
    if (n < 1 || n > 32) throw new DerError('nonce must be 1..32 octets');
    nonce = Buffer.from(v);
  }
  return nonce;
}

export function parseOcspRequest(der: Uint8Array): OcspRequest {
  if (!(der instanceof Uint8Array)) return malformed('OCSP request must be bytes');
  if (der.length > OCSP_MAX_REQUEST) malformed(`OCSP request larger than ${OCSP_MAX_REQUEST} bytes`);
  try {
    const top = expectTag(readWhole(der), TAG.SEQUENCE, 'OCSPRequest');
    checkDer(der, top);
    const parts = children(der, top);
    if (parts.length < 1 || parts.length > 2 || (parts[1] && parts[1].tag !== 0xa0)) throw new DerError('bad OCSPRequest');
    const f = children(der, expectTag(parts[0], TAG.SEQUENCE, 'TBSRequest'));
    let i = 0;
    if (f[i]?.tag === 0xa0) {
      const v = children(der, f[i++]!);
      if (v.length !== 1 || readSmallInt(der, v[0]!) !== 0) throw new DerError('unsupported OCSP request version');
    }
    if (f[i]?.tag === 0xa1) i++; // requestorName
    const list = children(der, expectTag(f[i++], TAG.SEQUENCE, 'requestList'));
    if (list.length < 1) throw new DerError('empty requestList');
    if (list.length > OCSP_MAX_CERT_IDS) throw new DerError(`more than ${OCSP_MAX_CERT_IDS} CertIDs`);
    let nonce: Buffer | undefined;
    if (f[i]?.tag === 0xa2) nonce = parseNonce(der, f[i++]!);
    if (i !== f.length) throw new DerError('unexpected field in TBSRequest');
    const certIds = list.map((r) => {
      const rf = children(der, expectTag(r, TAG.SEQUENCE, 'Request'));
      if (rf.length < 1 || rf.length > 2 || (rf[1] && rf[1].tag !== 0xa0)) throw new DerError('bad Request');
      return parseCertId(der, rf[0]!);
    });
    return nonce ? { certIds, nonce } : { certIds };
  } catch (e) {
    if (e instanceof X509Error) throw e;
    return malformed(`malformed OCSP request: ${(e as Error).message}`, e);
  }
}

// ------------------------------------------------------------------ responses

interface CaHashes {
  name: Record<OcspHash, Buffer>;
  key: Record<OcspHash, Buffer>;
}
const caHashes = new WeakMap<CertificateAuthority, CaHashes>();

function hashesOf(ca: CertificateAuthority): CaHashes {
  let h = caHashes.get(ca);
  if (!h) {
    const all = (data: Buffer) =>
      Object.fromEntries(
        (['sha1', 'sha256', 'sha384', 'sha512'] as const).map((a) => [a, createHash(a).update(data).digest()]),
      ) as Record<OcspHash, Buffer>;
    h = { name: all(ca.subjectDer), key: all(ca.publicKeyBits) };
    caHashes.set(ca, h);
  }
  return h;
}

export function certIdMatchesCa(ca: CertificateAuthority, certId: OcspCertId): boolean {
  if (certId.hashAlg === 'unsupported') return false;
  const h = hashesOf(ca);
  return (
    certId.issuerNameHash.length === HASH_LEN[certId.hashAlg] &&
    certId.issuerNameHash.equals(h.name[certId.hashAlg]) &&
    certId.issuerKeyHash.equals(h.key[certId.hashAlg])
  );
}

const GOOD = Buffer.from([0x80, 0x00]);
const UNKNOWN = Buffer.from([0x82, 0x00]);

function checkDate(d: Date | undefined, what: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1950 || d.getUTCFullYear() > 9999)
    throw new X509Error('issue_invalid', `${what} is not a valid date`);
  return floorSecond(d);
}

function certStatus(ca: CertificateAuthority, r: OcspSingleResponse): Buffer {
  const status = certIdMatchesCa(ca, r.certId) ? r.status : 'unknown';
  if (status === 'good') return GOOD;
  if (status === 'unknown') return UNKNOWN;
  if (status !== 'revoked') throw new X509Error('issue_invalid', `bad OCSP status ${String(status)}`);
  const parts = [generalizedTime(checkDate(r.revokedAt, 'revokedAt'))];
  if (r.revocationReason !== undefined) {
    if (!Number.isInteger(r.revocationReason) || r.revocationReason < 0 || r.revocationReason > 10 || r.revocationReason === 7)
      throw new X509Error('issue_invalid', 'bad revocationReason');
    parts.push(ctx(0, tlv(TAG.ENUMERATED, Buffer.from([r.revocationReason]))));
  }
  return ctx(1, ...parts);
}

export function buildOcspResponse(
  ca: CertificateAuthority,
  responses: readonly OcspSingleResponse[],
  opts: OcspResponseOptions = {},
): Buffer {
  if (responses.length === 0) throw new X509Error('issue_invalid', 'an OCSP response needs at least one SingleResponse');
  const singles = responses.map((r) => {
    const parts = [r.certId.der, certStatus(ca, r), generalizedTime(checkDate(r.thisUpdate, 'thisUpdate'))];
    if (r.nextUpdate !== undefined) parts.push(ctx(0, generalizedTime(checkDate(r.nextUpdate, 'nextUpdate'))));
    return seq(...parts);
  });
  const data: Buffer[] = [
    ctx(2, octets(hashesOf(ca).key.sha1)), // responderID byKey
    generalizedTime(checkDate(opts.producedAt ?? new Date(), 'producedAt')),
    seq(...singles),
  ];
  if (opts.nonce) data.push(ctx(1, seq(seq(oid(OID.ocspNonce), octets(opts.nonce)))));
  const tbs = seq(...data);
  const sigAlg = signatureAlgorithmDer(ca.signatureAlgorithm);
  const basicParts = [tbs, sigAlg, bits(sign(ca.signatureAlgorithm, ca.key, tbs))];
  if (opts.includeCaCert) basicParts.push(ctx(0, seq(ca.cert.der)));
  const basic = seq(...basicParts);
  return seq(tlv(TAG.ENUMERATED, Buffer.from([0])), ctx(0, seq(oid(OID.ocspBasic), octets(basic))));
}

const STATUS = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;

export function ocspError(status: keyof typeof STATUS): Buffer {
  return seq(tlv(TAG.ENUMERATED, Buffer.from([STATUS[status]])));
}
