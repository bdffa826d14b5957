/**
 * Algorithm identifiers and signing for the X.509 layer.
 *
 * - `OID`                                  the dotted OIDs used across the module (one place)
 * - `CaSignatureAlgorithm`                 'ES256' | 'ES384' | 'Ed25519' | 'RS256', chosen from the CA key
 * - `caSignatureAlgorithm(key)`            picks it from a private or public KeyObject (null if unsupported)
 * - `signatureAlgorithmDer(alg)`           the AlgorithmIdentifier DER (ECDSA and Ed25519 without
 *                                          parameters, RSA with NULL, RFC 5758 §3.2 / RFC 8410 §3 / RFC 4055)
 * - `sign(alg, key, data)`                 the signature in X.509 form (ECDSA as DER Ecdsa-Sig-Value):
 *                                          ES256/ES384 through src/native when it is built (the key is
 *                                          loaded there once per KeyObject), else node:crypto
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { NULL, oid, seq } from './der.js';
import { nativeEcdsa, type NativeSigner } from '../native/index.js';

export const OID = {
  // public keys
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  ed25519: '1.3.101.112',
  rsaEncryption: '1.2.840.113549.1.1.1',
  // signatures
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
  rsaSha512: '1.2.840.113549.1.1.13',
  rsaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  // hashes
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  // names
  organizationName: '2.5.4.10',
  commonName: '2.5.4.3',
  // CSR attributes carrying requested extensions: PKCS#9 extensionRequest (RFC 2985 §5.4.2), Microsoft's msExtReq
  extensionRequest: '1.2.840.113549.1.9.14',
  msExtensionRequest: '1.3.6.1.4.1.311.2.1.14',
  // extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  nameConstraints: '2.5.29.30',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocsp: '1.3.6.1.5.5.7.48.1',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  /**
   * Mayfly's task-id certificate extension (private enterprise arc 1.3.6.1.4.1.59470, `.1` = X.509
   * extensions, `.1.1` = task id). Non-critical; extnValue is a DER UTF8String holding the task id.
   */
  mayflyTaskId: '1.3.6.1.4.1.59470.1.1',
} as const;

export type CaSignatureAlgorithm = 'ES256' | 'ES384' | 'Ed25519' | 'RS256';

export function caSignatureAlgorithm(key: KeyObject): CaSignatureAlgorithm | null {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      return d.namedCurve === 'prime256v1' ? 'ES256' : d.namedCurve === 'secp384r1' ? 'ES384' : null;
    case 'ed25519':
      return 'Ed25519';
    case 'rsa':
      return (d.modulusLength ?? 0) >= 2048 && (d.modulusLength ?? 0) <= 16384 ? 'RS256' : null;
    default:
      return null;
  }
}

const ALG_DER: Record<CaSignatureAlgorithm, Buffer> = {
  ES256: seq(oid(OID.ecdsaSha256)),
  ES384: seq(oid(OID.ecdsaSha384)),
  Ed25519: seq(oid(OID.ed25519)),
  RS256: seq(oid(OID.rsaSha256), NULL),
};

export const signatureAlgorithmDer = (alg: CaSignatureAlgorithm): Buffer => ALG_DER[alg];

const HASH: Record<CaSignatureAlgorithm, string | null> = { ES256: 'sha256', ES384: 'sha384', Ed25519: null, RS256: 'sha256' };

/** The addon's handle for each CA key (null: not an EC key it can hold; node:crypto signs). */
const nativeSigners = new WeakMap<KeyObject, NativeSigner | null>();

function nativeSigner(alg: CaSignatureAlgorithm, key: KeyObject): NativeSigner | null {
  if (!nativeEcdsa || (alg !== 'ES256' && alg !== 'ES384') || key.type !== 'private') return null;
  let s = nativeSigners.get(key);
  if (s === undefined) {
    const sec1 = key.export({ type: 'sec1', format: 'der' });
    try {
      s = nativeEcdsa.signer(alg === 'ES256' ? 0 : 1, sec1);
    } catch {
      s = null;
    } finally {
      sec1.fill(0); // the addon holds its own copy
    }
    nativeSigners.set(key, s);
  }
  return s;
}

export function sign(alg: CaSignatureAlgorithm, key: KeyObject, data: Uint8Array): Buffer {
  const signer = nativeSigner(alg, key);
  if (signer) {
    const sig = nativeEcdsa!.sign(signer, alg === 'ES256' ? 0 : 1, data);
    if (sig) return sig;
  }
  return cryptoSign(HASH[alg], data, key);
}
