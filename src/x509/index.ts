/**
 * Mayfly's X.509 layer: CSR parsing, the CA, X509-SVID issuance, CRL and OCSP. Pure functions over
 * DER/PEM and node:crypto keys; no I/O, no store. See each file's header for its contract:
 *   errors.ts       X509Error and its stable codes
 *   csr.ts          parseCsr
 *   ca.ts           loadCa, generateDevCa, CertificateAuthority
 *   certificate.ts  issueCertificate, randomSerial, serialHexOf
 *   crl.ts          buildCrl, encodeCrlEntries, serialKey
 *   ocsp.ts         parseOcspRequest, certIdMatchesCa, buildOcspResponse, ocspError
 *   pem.ts          toPem, pemBlocks, decodePemStrict
 *   algs.ts         OIDs (incl. the task-id extension 1.3.6.1.4.1.59470.1.1), CA signature algorithms
 */
export { X509Error, isX509Error, type X509ErrorCode } from './errors.js';
export { parseCsr, CSR_MAX_INPUT, type ParsedCsr, type CsrKeyType } from './csr.js';
export { loadCa, generateDevCa, type CertificateAuthority, type LoadCaInput, type UriConstraint } from './ca.js';
export { openPemPrivateKey, PrivateKeyError, type PrivateKeyProblem } from './private-key.js';
export {
  issueCertificate,
  randomSerial,
  serialHexOf,
  readSvid,
  type IssueInput,
  type IssuedCertificate,
  type SvidInfo,
} from './certificate.js';
export { buildCrl, encodeCrlEntries, encodeRevokedSlots, serialKey, type CrlEntry, type CrlInput } from './crl.js';
export {
  parseOcspRequest,
  certIdMatchesCa,
  buildOcspResponse,
  ocspError,
  OCSP_MAX_REQUEST,
  OCSP_MAX_CERT_IDS,
  type OcspCertId,
  type OcspRequest,
  type OcspSingleResponse,
  type OcspResponseOptions,
  type OcspHash,
} from './ocsp.js';
export { toPem, pemBlocks, decodePemStrict } from './pem.js';
import { OID } from './algs.js';
export { OID, type CaSignatureAlgorithm } from './algs.js';

/** The OID of Mayfly's task-id extension (non-critical, extnValue = UTF8String task id). */
export const TASK_ID_EXTENSION_OID: string = OID.mayflyTaskId;
