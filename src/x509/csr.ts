/**
 * PKCS#10 certification requests (RFC 2986), parsed for one thing: a public key whose holder proved
 * possession by signing the request. Everything else a CSR can say (subject, requested extensions,
 * challenge password) is checked for DER well-formedness and then ignored; the broker decides the
 * certificate's content. Two requests are read out (`asks`) so that policy can refuse them, since only a
 * hostile or mistaken client sends them: a CA flag and subjectAltNames (policy/certificate.ts `csrRules`).
 *
 * API
 *   parseCsr(input: string | Uint8Array): ParsedCsr
 *     input: PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`; only whitespace around the block)
 *            or DER bytes (a Uint8Array starting with 0x30; other bytes are read as PEM text).
 *   CSR_MAX_INPUT = 16 KiB: larger input is `csr_too_large` before any parsing.
 *
 * Checks, in order (first failure wins, as an `X509Error`):
 *   1. size                                         csr_too_large
 *   2. PEM armour/base64, strict DER of the whole
 *      request (no trailing bytes, minimal lengths,
 *      version 0, exact field layout; an extension
 *      request's basicConstraints and subjectAltName
 *      decoded, no extension twice)                  csr_malformed
 *   3. the key: EC P-256/P-384 (named curve), Ed25519, RSA 2048..8192 bits with an odd exponent > 1;
 *      other key types/curves → csr_unsupported_key, RSA < 2048 or a bad exponent, or an Ed25519
 *      key of small order or non-canonical → csr_weak_key,
 *      a key OpenSSL cannot load (point not on the curve, ...) → csr_malformed
 *   4. the signature algorithm: ECDSA with SHA-256/384/512 (EC keys), Ed25519, RSA PKCS#1 v1.5
 *      SHA-256/384/512, RSASSA-PSS with SHA-256/384/512 and MGF1 of the same hash; it must fit the key
 *      → else csr_unsupported_algorithm (SHA-1, MD5, DSA, ...) or csr_malformed (bad parameters)
 *   5. the signature, against the request's own key                     csr_bad_signature
 *      (EC keys with an uncompressed point through src/native, which loads the point here: one not on
 *      the curve is then csr_malformed at this step rather than at 3; everything else through node:crypto)
 *
 * Returns the key as canonical SPKI DER, which is what goes into the certificate:
 * the request's own SPKI bytes once steps 2-3 have pinned every byte of it (strict DER, exact
 * AlgorithmIdentifier, uncompressed EC point, well-formed RSAPublicKey), or OpenSSL's re-encoding for
 * a compressed EC point (exported uncompressed, which every X.509 stack reads).
 *
 * Cost (Node 20 / OpenSSL 3.0): almost all of it is OpenSSL's. Through node:crypto: loading the key
 * (~75-110 µs for P-256, even through JWK, which is ~2x cheaper than SPKI DER here) and verifying the
 * signature (~75-110 µs for P-256, ~50 µs Ed25519, ~30 µs RSA-2048, ~1 ms P-384). EC keys with an
 * uncompressed point go through src/native instead when it is built: the same OpenSSL, without the
 * KeyObject, ~70 µs for both steps on P-256. The DER walk and checks are a few µs.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  DerError,
  TAG,
  bitStringBytes,
  checkDer,
  children,
  content,
  expectTag,
  oidHex,
  oidKey,
  readSmallInt,
  readWhole,
  whole,
  type Tlv,
} from './der.js';
import { OID } from './algs.js';
import { decodeBasicConstraints, decodeGeneralNames, readExtensions } from './cert-reader.js';
import { X509Error } from './errors.js';
import { decodePemStrict } from './pem.js';
import { nativeEcdsa } from '../native/index.js';

export const CSR_MAX_INPUT = 16 * 1024;
const PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;

export type CsrKeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa';

export interface ParsedCsr {
  /** Canonical SubjectPublicKeyInfo DER of the key (as OpenSSL exports it). */
  spkiDer: Buffer;
  keyType: CsrKeyType;
  /** RSA modulus size, for RSA keys only. */
  rsaBits?: number;
  /** The CSR's signature algorithm, for logs: 'ecdsa-sha256', 'ed25519', 'rsa-pkcs1-sha256', 'rsa-pss-sha256', ... */
  signatureAlgorithm: string;
  /** What its extensionRequest asks for that policy judges (policy/certificate.ts `csrRules`); never copied into a certificate. */
  asks: CsrAsks;
}

/** From a CSR's extensionRequest attribute (RFC 2985 §5.4.2; also Microsoft's msExtReq). */
export interface CsrAsks {
  /** basicConstraints with cA TRUE. */
  ca: boolean;
  /** subjectAltName entries as OpenSSL prints them (`URI:spiffe://…`, `DNS:…`), in order. */
  sans: readonly string[];
}

const fail = (code: X509Error['code'], msg: string, cause?: unknown): never => {
  throw new X509Error(code, msg, cause === undefined ? undefined : { cause });
};

function toDer(input: string | Uint8Array): Uint8Array {
  if (typeof input === 'string') {
    if (input.length > CSR_MAX_INPUT) fail('csr_too_large', `CSR larger than ${CSR_MAX_INPUT} bytes`);
    const der = decodePemStrict(input, PEM_LABELS);
    return der ?? fail('csr_malformed', 'not a PEM certificate request');
  }
  if (!(input instanceof Uint8Array)) return fail('csr_malformed', 'CSR must be a string or bytes');
  if (input.length > CSR_MAX_INPUT) fail('csr_too_large', `CSR larger than ${CSR_MAX_INPUT} bytes`);
  if (input.length === 0) fail('csr_malformed', 'empty CSR');
  if (input[0] === TAG.SEQUENCE) return input;
  const der = decodePemStrict(Buffer.from(input.buffer, input.byteOffset, input.length).toString('latin1'), PEM_LABELS);
  return der ?? fail('csr_malformed', 'not a DER or PEM certificate request');
}

const K = {
  ecPublicKey: oidHex(OID.ecPublicKey),
  p256: oidHex(OID.p256),
  p384: oidHex(OID.p384),
  ed25519: oidHex(OID.ed25519),
  rsaEncryption: oidHex(OID.rsaEncryption),
  ecdsaSha256: oidHex(OID.ecdsaSha256),
  ecdsaSha384: oidHex(OID.ecdsaSha384),
  ecdsaSha512: oidHex(OID.ecdsaSha512),
  rsaSha256: oidHex(OID.rsaSha256),
  rsaSha384: oidHex(OID.rsaSha384),
  rsaSha512: oidHex(OID.rsaSha512),
  rsaPss: oidHex(OID.rsaPss),
  mgf1: oidHex(OID.mgf1),
  sha256: oidHex(OID.sha256),
  sha384: oidHex(OID.sha384),
  sha512: oidHex(OID.sha512),
};

/** y of the Ed25519 points of order 1, 2, 4 and 8 (RFC 8032 §5.1; libsodium's blocklist), little-endian hex. */
const ED25519_SMALL_ORDER = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000', // y = 0, order 4
  '0100000000000000000000000000000000000000000000000000000000000000', // y = 1, the identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p - 1, order 2
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
]);
const ED25519_P = (1n << 255n) - 19n;

/**
 * A public key anyone can sign for: a point of small order (the identity verifies an all-zero
 * signature for every message), or y not below p (RFC 8032 §5.1.3 step 1 refuses it; OpenSSL accepts
 * it). The sign bit of x (the top bit) is ignored: it does not change the order.
 */
export function weakEd25519(key: Uint8Array): boolean {
  const y = Buffer.from(key);
  y[31] = y[31]! & 0x7f;
  const hex = y.toString('hex');
  return ED25519_SMALL_ORDER.has(hex) || BigInt(`0x${Buffer.from(y).reverse().toString('hex')}`) >= ED25519_P;
}

const HASH_BY_OID: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  [K.sha256]: 'sha256',
  [K.sha384]: 'sha384',
  [K.sha512]: 'sha512',
};

/** AlgorithmIdentifier → [OID key, parameters TLV or undefined]. */
function algId(buf: Uint8Array, t: Tlv): [string, Tlv | undefined] {
  const c = children(buf, expectTag(t, TAG.SEQUENCE, 'AlgorithmIdentifier'));
  if (c.length < 1 || c.length > 2) throw new DerError('bad AlgorithmIdentifier');
  return [oidKey(buf, c[0]!), c[1]];
}

interface KeyClass {
  keyType: CsrKeyType;
}

/** Step 3a: what the SPKI says it is, before OpenSSL loads it. */
function classifySpki(buf: Uint8Array, spki: Tlv): KeyClass {
  const c = children(buf, expectTag(spki, TAG.SEQUENCE, 'SubjectPublicKeyInfo'));
  if (c.length !== 2) throw new DerError('bad SubjectPublicKeyInfo');
  const [alg, params] = algId(buf, c[0]!);
  const keyBits = bitStringBytes(buf, c[1]!);
  if (alg === K.ecPublicKey) {
    if (!params || params.tag !== TAG.OID) return fail('csr_unsupported_key', 'EC keys must use a named curve (P-256 or P-384)');
    const curve = oidKey(buf, params);
    if (curve === K.p256) return { keyType: 'ec-p256' };
    if (curve === K.p384) return { keyType: 'ec-p384' };
    return fail('csr_unsupported_key', 'unsupported EC curve (only P-256 and P-384 are accepted)');
  }
  if (alg === K.ed25519) {
    if (params) throw new DerError('Ed25519 key with parameters');
    if (keyBits.length !== 32) throw new DerError('bad Ed25519 key length');
    if (weakEd25519(keyBits)) return fail('csr_weak_key', 'Ed25519 key of small order or not canonically encoded: signatures for it need no private key');
    return { keyType: 'ed25519' };
  }
  if (alg === K.rsaEncryption) {
    if (!params || params.tag !== TAG.NULL) throw new DerError('rsaEncryption key without NULL parameters');
    return { keyType: 'rsa' };
  }
  return fail('csr_unsupported_key', 'unsupported key type (accepted: EC P-256/P-384, Ed25519, RSA >= 2048)');
}

interface SigCheck {
  name: string;
  hash: string | null;
  options: { padding?: number; saltLength?: number; dsaEncoding?: 'der' };
}

/** Step 4: the signature algorithm, which must fit the key. */
function signatureCheck(buf: Uint8Array, t: Tlv, keyType: CsrKeyType): SigCheck {
  const [alg, params] = algId(buf, t);
  const isEc = keyType === 'ec-p256' || keyType === 'ec-p384';
  const ecdsa = alg === K.ecdsaSha256 ? 'sha256' : alg === K.ecdsaSha384 ? 'sha384' : alg === K.ecdsaSha512 ? 'sha512' : null;
  if (ecdsa) {
    if (params) throw new DerError('ECDSA signature algorithm with parameters');
    if (!isEc) return fail('csr_malformed', 'ECDSA signature on a non-EC key');
    return { name: `ecdsa-${ecdsa}`, hash: ecdsa, options: { dsaEncoding: 'der' } };
  }
  if (alg === K.ed25519) {
    if (params) throw new DerError('Ed25519 signature algorithm with parameters');
    if (keyType !== 'ed25519') return fail('csr_malformed', 'Ed25519 signature on a non-Ed25519 key');
    return { name: 'ed25519', hash: null, options: {} };
  }
  const pkcs1 = alg === K.rsaSha256 ? 'sha256' : alg === K.rsaSha384 ? 'sha384' : alg === K.rsaSha512 ? 'sha512' : null;
  if (pkcs1) {
    // RFC 4055 §5: NULL parameters; some encoders omit them, which is unambiguous, so accept both.
    if (params && params.tag !== TAG.NULL) throw new DerError('RSA signature algorithm with bad parameters');
    if (keyType !== 'rsa') return fail('csr_malformed', 'RSA signature on a non-RSA key');
    return { name: `rsa-pkcs1-${pkcs1}`, hash: pkcs1, options: { padding: constants.RSA_PKCS1_PADDING } };
  }
  if (alg === K.rsaPss) {
    if (keyType !== 'rsa') return fail('csr_malformed', 'RSA-PSS signature on a non-RSA key');
    const { hash, saltLength } = pssParams(buf, params);
    return { name: `rsa-pss-${hash}`, hash, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength } };
  }
  return fail('csr_unsupported_algorithm', 'unsupported CSR signature algorithm');
}

/** RSASSA-PSS-params (RFC 4055 §3.1); SHA-1 defaults are refused. */
function pssParams(buf: Uint8Array, params: Tlv | undefined): { hash: string; saltLength: number } {
  if (!params || params.tag !== TAG.SEQUENCE) return fail('csr_unsupported_algorithm', 'RSA-PSS with default (SHA-1) parameters');
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  let last = -1;
  for (const f of children(buf, params)) {
    const n = f.tag - 0xa0;
    if (n < 0 || n > 3 || n <= last) throw new DerError('bad RSASSA-PSS-params');
    last = n;
    const inner = children(buf, f);
    if (inner.length !== 1) throw new DerError('bad RSASSA-PSS-params');
    const v = inner[0]!;
    if (n === 0) {
      const [h, hp] = algId(buf, v);
      if (hp && hp.tag !== TAG.NULL) throw new DerError('bad hash parameters');
      hash = HASH_BY_OID[h];
      if (!hash) return fail('csr_unsupported_algorithm', 'RSA-PSS hash must be SHA-256/384/512');
    } else if (n === 1) {
      const [m, mp] = algId(buf, v);
      if (m !== K.mgf1 || !mp) return fail('csr_unsupported_algorithm', 'RSA-PSS mask generation must be MGF1');
      const [mh, mhp] = algId(buf, mp);
      if (mhp && mhp.tag !== TAG.NULL) throw new DerError('bad MGF1 hash parameters');
      mgfHash = HASH_BY_OID[mh];
    } else if (n === 2) {
      saltLength = readSmallInt(buf, v);
    } else if (readSmallInt(buf, v) !== 1) throw new DerError('bad RSA-PSS trailer field');
  }
  if (!hash) return fail('csr_unsupported_algorithm', 'RSA-PSS with default (SHA-1) hash');
  if (mgfHash !== hash) return fail('csr_unsupported_algorithm', 'RSA-PSS MGF1 hash must equal the message hash');
  if (saltLength > 1024) throw new DerError('RSA-PSS salt too long');
  return { hash, saltLength };
}

function b64u(u: Uint8Array): string {
  return Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64url');
}

/** An unsigned INTEGER's magnitude (without the sign-padding 0x00). */
function strip(x: Uint8Array): Uint8Array {
  return x[0] === 0 && x.length > 1 ? x.subarray(1) : x;
}

/** An EC key left for src/native to load and use in one call (no KeyObject). */
interface NativeEcKey {
  curve: 0 | 1;
  point: Uint8Array;
}
type CsrKey = KeyObject | NativeEcKey;

/**
 * Step 3b: loads the key into OpenSSL. Through JWK rather than DER: with Node 20's OpenSSL 3.0,
 * `createPublicKey` of SPKI DER goes through the slow OSSL_DECODER machinery (~2x the cost of the
 * JWK import, which still validates an EC point on the curve). The SPKI we already checked is
 * canonical (strict DER, exact AlgorithmIdentifier, uncompressed point), so it is returned as is; a
 * compressed EC point is decompressed by OpenSSL and re-encoded.
 */
function importKey(der: Uint8Array, spki: Tlv, keyType: CsrKeyType): { publicKey: CsrKey; spkiDer: Buffer } {
  const keyBits = bitStringBytes(der, children(der, spki)[1]!);
  if (keyType === 'ed25519') {
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(keyBits) }, format: 'jwk' });
    return { publicKey, spkiDer: Buffer.from(whole(der, spki)) };
  }
  if (keyType === 'rsa') {
    const seqT = expectTag(readWhole(keyBits), TAG.SEQUENCE, 'RSAPublicKey');
    checkDer(keyBits, seqT);
    const f = children(keyBits, seqT);
    if (f.length !== 2) throw new DerError('bad RSAPublicKey');
    const n = content(keyBits, expectTag(f[0], TAG.INTEGER, 'modulus'));
    const e = content(keyBits, expectTag(f[1], TAG.INTEGER, 'publicExponent'));
    if (n[0]! & 0x80 || e[0]! & 0x80) throw new DerError('negative RSA integer');
    const publicKey = createPublicKey({ key: { kty: 'RSA', n: b64u(strip(n)), e: b64u(strip(e)) }, format: 'jwk' });
    return { publicKey, spkiDer: Buffer.from(whole(der, spki)) };
  }
  const size = keyType === 'ec-p256' ? 32 : 48;
  const crv = keyType === 'ec-p256' ? 'P-256' : 'P-384';
  if (keyBits.length === 1 + 2 * size && keyBits[0] === 0x04) {
    if (nativeEcdsa) return { publicKey: { curve: keyType === 'ec-p256' ? 0 : 1, point: keyBits }, spkiDer: Buffer.from(whole(der, spki)) };
    const jwk = { kty: 'EC', crv, x: b64u(keyBits.subarray(1, 1 + size)), y: b64u(keyBits.subarray(1 + size)) };
    return { publicKey: createPublicKey({ key: jwk, format: 'jwk' }), spkiDer: Buffer.from(whole(der, spki)) };
  }
  if (keyBits.length === 1 + size && (keyBits[0] === 0x02 || keyBits[0] === 0x03)) {
    // Compressed point (RFC 5480 §2.2 allows it; Go's crypto/x509 and others reject it in
    // certificates): let OpenSSL decompress it, then re-import through JWK so it exports uncompressed.
    const viaDer = createPublicKey({ key: Buffer.from(whole(der, spki)), format: 'der', type: 'spki' });
    const publicKey = createPublicKey({ key: viaDer.export({ format: 'jwk' }), format: 'jwk' });
    return { publicKey, spkiDer: publicKey.export({ type: 'spki', format: 'der' }) };
  }
  throw new DerError('bad EC point encoding');
}

const NATIVE_HASH = { sha256: 0, sha384: 1, sha512: 2 } as const;

/** Step 5. For a NativeEcKey this is also where its point is checked (on the curve, or 'bad_key'). */
function checkSignature(key: CsrKey, check: SigCheck, message: Uint8Array, sig: Uint8Array): boolean | 'bad_key' {
  try {
    if ('point' in key) {
      const r = nativeEcdsa!.verify(key.curve, key.point, NATIVE_HASH[check.hash as keyof typeof NATIVE_HASH], message, sig);
      return r === -1 ? 'bad_key' : r === 1;
    }
    return verify(check.hash, message, { key, ...check.options }, sig);
  } catch {
    return false;
  }
}

const NOTHING_ASKED: CsrAsks = Object.freeze({ ca: false, sans: Object.freeze([]) });
const EXTENSION_REQUESTS = new Set([oidHex(OID.extensionRequest), oidHex(OID.msExtensionRequest)]);
const BASIC_CONSTRAINTS = oidHex(OID.basicConstraints);
const SUBJECT_ALT_NAME = oidHex(OID.subjectAltName);

/**
 * The attributes' extension requests, read for the two things policy refuses rather than ignores: a CA
 * flag and subjectAltNames (RFC 2986 §4.1: attributes [0] SET OF Attribute; RFC 2985 §5.4.2: a single
 * Extensions value). Every other attribute and extension stays unread.
 */
function requestedExtensions(der: Uint8Array, attributes: Tlv): CsrAsks {
  let asks = NOTHING_ASKED;
  let seen = false;
  for (const a of children(der, attributes)) {
    const [type, values, extra] = children(der, expectTag(a, TAG.SEQUENCE, 'Attribute'));
    if (!type || !values || extra) throw new DerError('Attribute has 2 fields');
    expectTag(values, TAG.SET, 'Attribute values');
    if (!EXTENSION_REQUESTS.has(oidKey(der, type))) continue;
    const v = children(der, values);
    if (v.length !== 1 || seen) throw new DerError('one extension request, with one value');
    seen = true;
    const ext = readExtensions(der, v[0]!);
    const bc = ext.get(BASIC_CONSTRAINTS);
    const san = ext.get(SUBJECT_ALT_NAME);
    asks = { ca: bc ? decodeBasicConstraints(bc.value).cA : false, sans: san ? decodeGeneralNames(san.value) : [] };
  }
  return asks;
}

export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = toDer(input);
  let top: Tlv, cri: Tlv, spki: Tlv, sigAlg: Tlv, sig: Uint8Array, kc: KeyClass, asks: CsrAsks;
  try {
    top = expectTag(readWhole(der), TAG.SEQUENCE, 'CertificationRequest');
    checkDer(der, top);
    const parts = children(der, top);
    if (parts.length !== 3) throw new DerError('CertificationRequest has 3 fields');
    cri = expectTag(parts[0], TAG.SEQUENCE, 'CertificationRequestInfo');
    sigAlg = parts[1]!;
    sig = bitStringBytes(der, parts[2]!);
    const f = children(der, cri);
    if (f.length < 3 || f.length > 4) throw new DerError('CertificationRequestInfo has 3 or 4 fields');
    if (readSmallInt(der, expectTag(f[0], TAG.INTEGER, 'version')) !== 0) throw new DerError('CSR version must be 0 (v1)');
    expectTag(f[1], TAG.SEQUENCE, 'subject Name');
    spki = expectTag(f[2], TAG.SEQUENCE, 'SubjectPublicKeyInfo');
    asks = f[3] ? requestedExtensions(der, expectTag(f[3], 0xa0, 'attributes [0]')) : NOTHING_ASKED;
    kc = classifySpki(der, spki);
  } catch (e) {
    if (e instanceof X509Error) throw e;
    return fail('csr_malformed', `malformed CSR: ${(e as Error).message}`, e);
  }

  let publicKey: CsrKey;
  let spkiDer: Buffer;
  try {
    ({ publicKey, spkiDer } = importKey(der, spki, kc.keyType));
  } catch (e) {
    if (e instanceof X509Error) throw e;
    return fail('csr_malformed', 'the CSR public key cannot be loaded', e);
  }
  let rsaBits: number | undefined;
  if (kc.keyType === 'rsa') {
    const d = (publicKey as KeyObject).asymmetricKeyDetails ?? {};
    rsaBits = d.modulusLength ?? 0;
    const e = d.publicExponent ?? 0n;
    if (rsaBits < 2048) fail('csr_weak_key', `RSA key of ${rsaBits} bits (minimum 2048)`);
    if (rsaBits > 8192) fail('csr_unsupported_key', `RSA key of ${rsaBits} bits (maximum 8192)`);
    if (e <= 1n || e % 2n === 0n) fail('csr_weak_key', 'RSA public exponent must be odd and greater than 1');
  }

  let check: SigCheck;
  try {
    check = signatureCheck(der, sigAlg, kc.keyType);
  } catch (e) {
    if (e instanceof X509Error) throw e;
    return fail('csr_malformed', `malformed CSR signature algorithm: ${(e as Error).message}`, e);
  }

  const ok = checkSignature(publicKey, check, whole(der, cri), sig);
  if (ok === 'bad_key') fail('csr_malformed', 'the CSR public key cannot be loaded');
  if (!ok) fail('csr_bad_signature', 'the CSR signature does not verify with its public key');

  const out: ParsedCsr = { spkiDer, keyType: kc.keyType, signatureAlgorithm: check.name, asks };
  if (rsaBits !== undefined) out.rsaBits = rsaBits;
  return out;
}
