/**
 * Typed errors of the X.509 layer. Every failure of `parseCsr`, `loadCa`, `generateDevCa`,
 * `issueCertificate`, `buildCrl`, `parseOcspRequest` and `buildOcspResponse` is an `X509Error` with one
 * of these stable codes (never a raw asn1/crypto exception), so the HTTP layer can map each code once:
 *
 * - `csr_malformed`             not PEM/DER of a PKCS#10 request, non-DER encoding, trailing bytes,
 *                               wrong version, a key the algorithm OID does not describe, ...  → 400
 * - `csr_too_large`             input above the size cap (16 KiB)                               → 413
 * - `csr_bad_signature`         the request's self-signature does not verify with its own key  → 400
 * - `csr_unsupported_key`       a key type or curve we do not issue for (DSA, P-192, P-521,
 *                               secp256k1, Ed448, X25519, RSA-PSS keys, RSA > 8192 bits, ...)  → 400
 * - `csr_weak_key`              RSA below 2048 bits or with a bad public exponent, an Ed25519
 *                               key of small order or not canonically encoded                  → 400
 * - `csr_unsupported_algorithm` a signature algorithm we do not accept (SHA-1, MD5, DSA, ...)  → 400
 * - `issue_invalid`             bad input from the caller of issueCertificate/buildOcspResponse
 *                               (SPIFFE ID, task id, validity, serial, URL, status): a programming or
 *                               config error rather than a client one                          → 500
 * - `spiffe_id_not_permitted`   the SPIFFE ID is outside the CA's URI name constraints         → 403
 * - `ca_invalid`                CA cert/key unusable: not a CA, no keyCertSign/cRLSign, key does
 *                               not match, expired, unsupported key, malformed PEM, broken chain
 * - `ocsp_malformed`            an OCSP request that is not DER of RFC 6960 OCSPRequest; answer it
 *                               with `ocspError('malformedRequest')`
 * - `crl_invalid`               bad CRL input (serial, dates)
 */
export type X509ErrorCode =
  | 'csr_malformed'
  | 'csr_too_large'
  | 'csr_bad_signature'
  | 'csr_unsupported_key'
  | 'csr_weak_key'
  | 'csr_unsupported_algorithm'
  | 'issue_invalid'
  | 'spiffe_id_not_permitted'
  | 'ca_invalid'
  | 'ocsp_malformed'
  | 'crl_invalid';

export class X509Error extends Error {
  readonly code: X509ErrorCode;
  constructor(code: X509ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'X509Error';
    this.code = code;
  }
}

export const isX509Error = (e: unknown, code?: X509ErrorCode): e is X509Error =>
  e instanceof X509Error && (code === undefined || e.code === code);
