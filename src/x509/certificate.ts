/**
 * X509-SVID issuance (SPIFFE X509-SVID spec §4, §5; RFC 5280 profile).
 *
 * API
 *   issueCertificate(ca, {
 *     spkiDer, keyType,            // from parseCsr (the only thing taken from the CSR)
 *     spiffeId, taskId,            // identity and task binding
 *     notBefore, notAfter,         // the caller backdates notBefore by its configured skew
 *     crlUrl, ocspUrl?,            // CRL distribution point (required), OCSP AIA (optional)
 *     serial?,                     // default randomSerial()
 *   }): IssuedCertificate { der, pem, serialHex, notBefore, notAfter }
 *   randomSerial(): Buffer         16 random bytes, top bit cleared (positive), never zero: 127 bits
 *   serialHexOf(bytes): string     canonical serial hex: lowercase, the unsigned magnitude without
 *                                  leading zero bytes (OpenSSL prints the same digits upper-case).
 *                                  CRL entries and OCSP CertIDs use this same form.
 *   readSvid(der): SvidInfo        reads back { spiffeId, taskId, serialHex, notBefore, notAfter } from
 *                                  a certificate (URI SAN and the task-id extension); X509Error
 *                                  'issue_invalid' if it is not DER or lacks them.
 *
 * The certificate (v3, signed by the CA key: ES256/ES384/Ed25519/RS256):
 *   subject     O=<trust domain of the SPIFFE ID> (SPIFFE: the subject carries no identity); empty,
 *               with a critical SAN, in the odd case where that is the CA's own subject name
 *   extensions  basicConstraints     critical  cA=FALSE
 *               keyUsage             critical  digitalSignature (+ keyEncipherment for RSA keys)
 *               extKeyUsage                    serverAuth, clientAuth
 *               subjectKeyIdentifier           SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1))
 *               authorityKeyIdentifier         keyIdentifier = the CA's SKI
 *               subjectAltName                 exactly one URI: the SPIFFE ID
 *               cRLDistributionPoints          fullName URI = crlUrl
 *               authorityInfoAccess            OCSP URI (only with ocspUrl)
 *               1.3.6.1.4.1.59470.1.1          Mayfly task id: non-critical, extnValue = UTF8String
 *                                              taskId. The task id appears nowhere else.
 *   validity    notBefore/notAfter floored to the second; notAfter is capped at the CA's notAfter, so
 *               the returned notAfter is ≤ the requested bound.
 *
 * Speed: everything that depends only on the CA (version, signature AlgorithmIdentifier, issuer Name,
 * AKI, basicConstraints, keyUsage, EKU) and on the few CRL/OCSP URLs and trust domains is encoded once
 * and cached per CA; per certificate only serial, validity, subject (cached), SPKI, SKI, SAN and the
 * task extension are encoded, then the TBS is signed (algs.ts sign: src/native for an EC CA key when built,
 * else node:crypto).
 */
import { hash, randomFillSync } from 'node:crypto';
import { parseSpiffeId } from '../ids/spiffe.js';
import { OID, sign, signatureAlgorithmDer } from './algs.js';
import type { CertificateAuthority } from './ca.js';
import { readCertificate, uriHostMatches } from './cert-reader.js';
import type { CsrKeyType } from './csr.js';
import {
  DerError,
  TAG,
  TRUE,
  bitStringBytes,
  bits,
  children,
  ctx,
  ctxPrim,
  expectTag,
  floorSecond,
  intFromMagnitude,
  octets,
  oid,
  oidHex,
  oidKey,
  readWhole,
  seq,
  set,
  time,
  utf8,
} from './der.js';
import { X509Error } from './errors.js';
import { toPem } from './pem.js';

export interface IssueInput {
  spkiDer: Buffer;
  keyType: CsrKeyType;
  spiffeId: string;
  taskId: string;
  notBefore: Date;
  notAfter: Date;
  crlUrl: string;
  ocspUrl?: string;
  serial?: Buffer;
}

export interface IssuedCertificate {
  der: Buffer;
  pem: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

// ------------------------------------------------------------------ serials

const POOL_SERIALS = 256;
let pool = Buffer.alloc(0);
let poolPos = 0;

export function randomSerial(): Buffer {
  for (;;) {
    if (poolPos >= pool.length) {
      pool = randomFillSync(Buffer.allocUnsafe(16 * POOL_SERIALS));
      poolPos = 0;
    }
    const s = Buffer.from(pool.subarray(poolPos, poolPos + 16));
    pool.fill(0, poolPos, poolPos + 16); // a used serial never stays in memory for reuse
    poolPos += 16;
    s[0]! &= 0x7f;
    if (!isZero(s)) return s;
  }
}

export function serialHexOf(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + i, bytes.length - i).toString('hex');
}

// ------------------------------------------------------------------ per-CA template

interface Template {
  version: Buffer;
  sigAlgAndIssuer: Buffer;
  sigAlg: Buffer;
  basicConstraints: Buffer;
  keyUsageSig: Buffer;
  keyUsageRsa: Buffer;
  eku: Buffer;
  aki: Buffer;
  subjects: Map<string, Buffer>;
  crlDps: Map<string, Buffer>;
  aias: Map<string, Buffer>;
}

const templates = new WeakMap<CertificateAuthority, Template>();
const CACHE_MAX = 64;

/** Extension from an encoded OID (`oid(...)`, precomputed: encoding an OID costs BigInt work). */
function ext(id: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(id, TRUE, octets(value)) : seq(id, octets(value));
}

const O = {
  basicConstraints: oid(OID.basicConstraints),
  keyUsage: oid(OID.keyUsage),
  extKeyUsage: oid(OID.extKeyUsage),
  ski: oid(OID.subjectKeyIdentifier),
  aki: oid(OID.authorityKeyIdentifier),
  san: oid(OID.subjectAltName),
  crlDp: oid(OID.cRLDistributionPoints),
  aia: oid(OID.authorityInfoAccess),
  ocsp: oid(OID.ocsp),
  taskId: oid(OID.mayflyTaskId),
  organizationName: oid(OID.organizationName),
};

function template(ca: CertificateAuthority): Template {
  let t = templates.get(ca);
  if (!t) {
    const sigAlg = signatureAlgorithmDer(ca.signatureAlgorithm);
    t = {
      version: ctx(0, Buffer.from([0x02, 0x01, 0x02])),
      sigAlg,
      sigAlgAndIssuer: Buffer.concat([sigAlg, ca.subjectDer]),
      basicConstraints: ext(O.basicConstraints, true, seq()),
      keyUsageSig: ext(O.keyUsage, true, bits(Buffer.from([0x80]), 7)), // digitalSignature
      keyUsageRsa: ext(O.keyUsage, true, bits(Buffer.from([0xa0]), 5)), // + keyEncipherment
      eku: ext(O.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
      aki: ext(O.aki, false, seq(ctxPrim(0, ca.ski))),
      subjects: new Map(),
      crlDps: new Map(),
      aias: new Map(),
    };
    templates.set(ca, t);
  }
  return t;
}

/**
 * `O=<trust domain>`, unless that is exactly the CA's own subject (a configured CA could be named so):
 * then an empty subject, so a leaf never looks self-issued (issuer = subject) to path validation.
 */
function leafSubject(ca: CertificateAuthority, trustDomain: string): Buffer {
  const s = seq(set(seq(O.organizationName, utf8(trustDomain))));
  return s.equals(ca.subjectDer) ? seq() : s;
}

function remember(map: Map<string, Buffer>, key: string, v: Buffer): Buffer {
  if (map.size >= CACHE_MAX) map.clear();
  map.set(key, v);
  return v;
}

// ------------------------------------------------------------------ validation

const TASK_ID = /^[\x21-\x7e]{1,256}$/;
const bad = (msg: string): never => {
  throw new X509Error('issue_invalid', msg);
};

function checkUrl(u: string, what: string): void {
  if (typeof u !== 'string' || u.length > 2048 || !/^https?:\/\/[\x21-\x7e]+$/.test(u))
    bad(`${what} must be an http(s) URL of printable ASCII`);
  try {
    new URL(u);
  } catch {
    bad(`${what} is not a URL`);
  }
}

function checkDate(d: Date, what: string): void {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) bad(`${what} is not a valid date`);
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) bad(`${what} is out of range`);
}

function anyMatch(host: string, bases: readonly string[]): boolean {
  for (const b of bases) if (uriHostMatches(host, b)) return true;
  return false;
}

function checkConstraints(ca: CertificateAuthority, host: string, spiffeId: string): void {
  for (const c of ca.uriConstraints) {
    if (c.permitted && !anyMatch(host, c.permitted))
      throw new X509Error('spiffe_id_not_permitted', `${spiffeId} is outside the CA's permitted URI name constraints`);
    if (anyMatch(host, c.excluded))
      throw new X509Error('spiffe_id_not_permitted', `${spiffeId} is in the CA's excluded URI name constraints`);
  }
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

const RSA_KEY = oidHex(OID.rsaEncryption);

/** The subjectPublicKey bits of an SPKI (for the SKI), checking its shape and that keyType fits. */
function spkiKeyBits(spkiDer: Buffer, keyType: CsrKeyType): Uint8Array {
  try {
    const top = expectTag(readWhole(spkiDer), TAG.SEQUENCE, 'SubjectPublicKeyInfo');
    const c = children(spkiDer, top);
    if (c.length !== 2) throw new DerError('bad SubjectPublicKeyInfo');
    const alg = children(spkiDer, expectTag(c[0], TAG.SEQUENCE, 'AlgorithmIdentifier'));
    if ((oidKey(spkiDer, alg[0] ?? c[0]!) === RSA_KEY) !== (keyType === 'rsa')) throw new DerError('keyType does not match the key');
    return bitStringBytes(spkiDer, c[1]!);
  } catch (e) {
    return bad(`spkiDer: ${(e as Error).message}`);
  }
}

// ------------------------------------------------------------------ issuance

export function issueCertificate(ca: CertificateAuthority, input: IssueInput): IssuedCertificate {
  const id = parseSpiffeId(input.spiffeId);
  if (!id) bad('spiffeId is not a SPIFFE workload ID');
  if (typeof input.taskId !== 'string' || !TASK_ID.test(input.taskId)) bad('taskId must be 1-256 printable ASCII characters');
  checkDate(input.notBefore, 'notBefore');
  checkDate(input.notAfter, 'notAfter');
  const notBefore = floorSecond(input.notBefore);
  let notAfter = floorSecond(input.notAfter);
  if (notAfter > ca.notAfter) notAfter = ca.notAfter;
  if (!(notAfter > notBefore)) bad('notAfter must be after notBefore (and before the CA expires)');
  if (input.keyType !== 'ec-p256' && input.keyType !== 'ec-p384' && input.keyType !== 'ed25519' && input.keyType !== 'rsa')
    bad('unknown keyType');
  checkConstraints(ca, id!.trustDomain, input.spiffeId);

  const serial = input.serial ?? randomSerial();
  if (!(serial instanceof Uint8Array) || serial.length === 0 || serial.length > 20 || serial[0]! & 0x80 || isZero(serial))
    bad('serial must be 1-20 bytes, positive and non-zero');
  const serialDer = intFromMagnitude(serial);
  if (serialDer.length - 2 > 20) bad('serial longer than 20 octets');

  const t = template(ca);
  const keyBits = spkiKeyBits(input.spkiDer, input.keyType);
  const ski = hash('sha1', keyBits, 'buffer');
  // (no closures on this path: tsx/esbuild's keepNames wraps every closure creation in a __name call)
  let subject = t.subjects.get(id!.trustDomain);
  if (!subject) subject = remember(t.subjects, id!.trustDomain, leafSubject(ca, id!.trustDomain));
  let crlDp = t.crlDps.get(input.crlUrl);
  if (!crlDp) {
    checkUrl(input.crlUrl, 'crlUrl'); // validated once per URL (the cache only holds valid ones)
    crlDp = remember(
      t.crlDps,
      input.crlUrl,
      ext(O.crlDp, false, seq(seq(ctx(0, ctx(0, ctxPrim(6, Buffer.from(input.crlUrl, 'latin1'))))))),
    );
  }
  const exts = [
    t.basicConstraints,
    input.keyType === 'rsa' ? t.keyUsageRsa : t.keyUsageSig,
    t.eku,
    ext(O.ski, false, octets(ski)),
    t.aki,
    // RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical
    ext(O.san, subject.length === 2, seq(ctxPrim(6, Buffer.from(input.spiffeId, 'latin1')))),
    crlDp,
  ];
  if (input.ocspUrl !== undefined) {
    const u = input.ocspUrl;
    const known = t.aias.get(u);
    if (!known) checkUrl(u, 'ocspUrl');
    exts.push(known ?? remember(t.aias, u, ext(O.aia, false, seq(seq(O.ocsp, ctxPrim(6, Buffer.from(u, 'latin1')))))));
  }
  exts.push(ext(O.taskId, false, utf8(input.taskId)));

  const tbs = seq(
    t.version,
    serialDer,
    t.sigAlgAndIssuer,
    seq(time(notBefore), time(notAfter)),
    subject,
    input.spkiDer,
    ctx(3, seq(...exts)),
  );
  const der = seq(tbs, t.sigAlg, bits(sign(ca.signatureAlgorithm, ca.key, tbs)));
  return { der, pem: toPem('CERTIFICATE', der), serialHex: serialHexOf(serial), notBefore, notAfter };
}

// ------------------------------------------------------------------ reading back

export interface SvidInfo {
  spiffeId: string;
  taskId: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

const SAN_KEY = oidHex(OID.subjectAltName);
const TASK_KEY = oidHex(OID.mayflyTaskId);

/** The identity, task and validity of an X509-SVID (issued here or elsewhere); not a verification. */
export function readSvid(der: Uint8Array): SvidInfo {
  try {
    const c = readCertificate(der);
    const san = c.extensions.get(SAN_KEY);
    const task = c.extensions.get(TASK_KEY);
    if (!san || !task) throw new DerError('no URI SAN or no task-id extension');
    const names = children(san.value, expectTag(readWhole(san.value), TAG.SEQUENCE, 'GeneralNames'));
    const uris = names.filter((n) => n.tag === 0x86);
    if (uris.length !== 1) throw new DerError('an X509-SVID has exactly one URI SAN');
    const t = expectTag(readWhole(task.value), TAG.UTF8String, 'task id UTF8String');
    if (c.serial[0]! & 0x80) throw new DerError('negative serial');
    return {
      spiffeId: san.value.subarray(uris[0]!.start, uris[0]!.end).toString('latin1'),
      taskId: task.value.subarray(t.start, t.end).toString('utf8'),
      serialHex: serialHexOf(c.serial),
      notBefore: c.notBefore,
      notAfter: c.notAfter,
    };
  } catch (e) {
    if (e instanceof X509Error) throw e;
    return bad(`not an X509-SVID with a task id: ${(e as Error).message}`);
  }
}
