/**
 * The certificate authority that signs X509-SVIDs, CRLs and OCSP responses.
 *
 * API
 *   loadCa({ certPem, keyPem, chainPem?, now? }): CertificateAuthority
 *     certPem: the issuing CA certificate (a root or an intermediate); further CERTIFICATE blocks in the
 *              same text are taken as its chain. chainPem: more chain certificates (any order after
 *              the issuer, e.g. intermediate(s) then optionally the root).
 *     Validates, else `X509Error('ca_invalid')`: the key loads and matches the certificate; the key is
 *     EC P-256/P-384, Ed25519 or RSA >= 2048; the certificate is v3 with basicConstraints cA=TRUE and a
 *     keyUsage with keyCertSign and cRLSign; every certificate is within its validity at `now`; each
 *     chain certificate is a CA (keyCertSign if it has a keyUsage) and issued, and signed, the one
 *     before it; a self-signed certificate can only come last.
 *   generateDevCa(trustDomain, now = new Date(), { validityDays = 365 }?): CertificateAuthority
 *     A fresh EC P-256 self-signed root "O=<trust domain>, CN=Mayfly dev CA": cA=TRUE (pathLen 0),
 *     keyCertSign+cRLSign (critical), SKI, and a critical name constraint permitting only URIs whose
 *     host is the trust domain (RFC 5280 §4.2.1.10: the constraint is the host `<trust-domain>`, which
 *     is how OpenSSL/Go/BoringSSL match `spiffe://<trust-domain>/...` SANs), valid now-5 min .. now+1 y.
 *
 *   CertificateAuthority
 *     cert { der, pem }        the issuing certificate
 *     key                      private KeyObject; publicKey: its public half
 *     signatureAlgorithm       'ES256' (P-256) | 'ES384' (P-384) | 'Ed25519' | 'RS256' (RSA, PKCS#1 v1.5)
 *     ski                      its subject key identifier (the extension's, else SHA-1 of the key bits);
 *                              the AKI of everything it signs
 *     subjectDer               its exact subject Name DER: the issuer of everything it signs
 *     publicKeyBits            its subjectPublicKey bits (OCSP issuerKeyHash / responder KeyHash input)
 *     notBefore, notAfter      its validity (issued certificates never outlive it)
 *     chainPem                 what to serve after a leaf: the issuing cert first, then intermediates,
 *                              never a self-signed root (so [] when the CA is itself a root)
 *     rootPem                  the self-signed root if one was given (the CA itself for a root CA)
 *     uriConstraints           URI name constraints of the CA and its chain; issuance checks SPIFFE IDs
 *                              against them so we never mint a certificate validators would reject
 *     trustDomain              set for dev CAs
 */
import {
  X509Certificate,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { OID, caSignatureAlgorithm, sign, signatureAlgorithmDer, type CaSignatureAlgorithm } from './algs.js';
import {
  decodeBasicConstraints,
  decodeKeyUsage,
  decodeNameConstraintUris,
  decodeOctetString,
  readCertificate,
  type CertificateParts,
} from './cert-reader.js';
import { TRUE, bits, ctx, ctxPrim, floorSecond, intFromMagnitude, octets, oid, oidHex, seq, set, time, utf8 } from './der.js';
import { X509Error } from './errors.js';
import { pemBlocks, toPem } from './pem.js';
import { openPemPrivateKey, PrivateKeyError } from './private-key.js';

export interface UriConstraint {
  /** Permitted URI hosts (null: URIs not constrained by a permitted list). */
  permitted: string[] | null;
  excluded: string[];
}

export interface CertificateAuthority {
  readonly cert: { readonly der: Buffer; readonly pem: string };
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: CaSignatureAlgorithm;
  readonly ski: Buffer;
  readonly subjectDer: Buffer;
  readonly publicKeyBits: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly chainPem: readonly string[];
  readonly rootPem: string | undefined;
  readonly uriConstraints: readonly UriConstraint[];
  readonly trustDomain?: string;
}

export interface LoadCaInput {
  certPem: string;
  /** PKCS#8, SEC1 or PKCS#1 PEM; encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`) with `keyPassword`. */
  keyPem: string;
  keyPassword?: string;
  chainPem?: string;
  now?: Date;
}

const bad = (msg: string, cause?: unknown): never => {
  throw new X509Error('ca_invalid', msg, cause === undefined ? undefined : { cause });
};

const X = {
  basicConstraints: oidHex(OID.basicConstraints),
  keyUsage: oidHex(OID.keyUsage),
  ski: oidHex(OID.subjectKeyIdentifier),
  nameConstraints: oidHex(OID.nameConstraints),
};

const KU_KEY_CERT_SIGN = 5;
const KU_CRL_SIGN = 6;

function readOrBad(der: Buffer, what: string): CertificateParts {
  try {
    return readCertificate(der);
  } catch (e) {
    return bad(`${what} is not a valid DER certificate: ${(e as Error).message}`, e);
  }
}

function checkValidity(p: CertificateParts, now: Date, what: string): void {
  if (now < p.notBefore) bad(`${what} is not valid before ${p.notBefore.toISOString()}`);
  if (now > p.notAfter) bad(`${what} expired at ${p.notAfter.toISOString()}`);
}

/**
 * The issuing CA needs keyCertSign and cRLSign (it signs leaves and the CRL); a chain certificate only
 * needs to be a CA, with keyCertSign if it has a keyUsage at all (RFC 5280 §4.2.1.3, §4.2.1.9).
 */
function checkIsCa(p: CertificateParts, what: string, issuing: boolean): void {
  if (p.version !== 2) bad(`${what} is not an X.509 v3 certificate`);
  const bc = p.extensions.get(X.basicConstraints);
  let cA = false;
  try {
    cA = bc ? decodeBasicConstraints(bc.value).cA : false;
  } catch (e) {
    bad(`${what} has a malformed basicConstraints extension`, e);
  }
  if (!cA) bad(`${what} is not a CA certificate (basicConstraints cA is not TRUE)`);
  const ku = p.extensions.get(X.keyUsage);
  if (!ku) {
    if (issuing) bad(`${what} has no keyUsage extension (keyCertSign and cRLSign are needed)`);
    return;
  }
  let usages = new Set<number>();
  try {
    usages = decodeKeyUsage(ku.value);
  } catch (e) {
    bad(`${what} has a malformed keyUsage extension`, e);
  }
  if (!usages.has(KU_KEY_CERT_SIGN)) bad(`${what} keyUsage lacks keyCertSign`);
  if (issuing && !usages.has(KU_CRL_SIGN)) bad(`${what} keyUsage lacks cRLSign (needed to sign the CRL)`);
}

function uriConstraint(p: CertificateParts, what: string): UriConstraint | null {
  const nc = p.extensions.get(X.nameConstraints);
  if (!nc) return null;
  try {
    const c = decodeNameConstraintUris(nc.value);
    return c.permitted || c.excluded.length ? c : null;
  } catch (e) {
    return bad(`${what} has a malformed nameConstraints extension`, e);
  }
}

export function loadCa(input: LoadCaInput): CertificateAuthority {
  const now = input.now ?? new Date();
  let certs: Buffer[];
  try {
    certs = [...pemBlocks(input.certPem), ...(input.chainPem ? pemBlocks(input.chainPem) : [])]
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => b.der);
  } catch (e) {
    return bad(`CA certificate PEM is malformed: ${(e as Error).message}`, e);
  }
  if (certs.length === 0) bad('no CERTIFICATE block in the CA certificate PEM');

  let key: KeyObject;
  try {
    key = openPemPrivateKey(input.keyPem, input.keyPassword);
  } catch (e) {
    const problem = e instanceof PrivateKeyError ? e.problem : 'not_a_key';
    if (problem === 'needs_password') return bad('CA private key is encrypted: give its password (config ca.key_password_file)', e);
    if (problem === 'wrong_password') return bad('CA private key cannot be decrypted with the password given (config ca.key_password_file)', e);
    return bad('CA private key cannot be loaded (PEM PKCS#8, SEC1 or PKCS#1, encrypted or not)', e);
  }
  const alg = caSignatureAlgorithm(key);
  if (!alg) bad(`unsupported CA key (${key.asymmetricKeyType}); use EC P-256/P-384, Ed25519 or RSA >= 2048`);

  const parts = certs.map((d, i) => readOrBad(d, i === 0 ? 'the CA certificate' : `chain certificate #${i}`));
  let x509s: X509Certificate[];
  try {
    x509s = certs.map((d) => new X509Certificate(d));
  } catch (e) {
    return bad('a CA certificate cannot be loaded by OpenSSL', e);
  }
  const ca = parts[0]!;
  checkIsCa(ca, 'the CA certificate', true);
  if (!x509s[0]!.checkPrivateKey(key)) bad('the CA private key does not match the CA certificate');

  const pems = certs.map((d) => toPem('CERTIFICATE', d));
  const selfSigned = (i: number) => parts[i]!.issuerDer.equals(parts[i]!.subjectDer) && x509s[i]!.verify(x509s[i]!.publicKey);
  for (let i = 0; i < parts.length; i++) {
    const what = i === 0 ? 'the CA certificate' : `chain certificate #${i}`;
    checkValidity(parts[i]!, now, what);
    if (i > 0) {
      checkIsCa(parts[i]!, what, false);
      const child = x509s[i - 1]!;
      if (!parts[i - 1]!.issuerDer.equals(parts[i]!.subjectDer) || !child.verify(x509s[i]!.publicKey))
        bad(`chain certificate #${i} did not issue ${i === 1 ? 'the CA certificate' : `chain certificate #${i - 1}`}`);
    }
    if (selfSigned(i) && i !== parts.length - 1) bad('a self-signed certificate can only end the chain');
  }
  const last = parts.length - 1;
  const rootPem = selfSigned(last) ? pems[last] : undefined;
  const chainPem = rootPem === undefined ? pems : pems.slice(0, last);

  const uriConstraints: UriConstraint[] = [];
  parts.forEach((p, i) => {
    const c = uriConstraint(p, i === 0 ? 'the CA certificate' : `chain certificate #${i}`);
    if (c) uriConstraints.push(c);
  });

  const skiExt = ca.extensions.get(X.ski);
  let ski: Buffer;
  try {
    ski = skiExt ? decodeOctetString(skiExt.value) : createHash('sha1').update(ca.publicKeyBits).digest();
  } catch (e) {
    return bad('the CA subjectKeyIdentifier is malformed', e);
  }

  return Object.freeze({
    cert: Object.freeze({ der: ca.der, pem: pems[0]! }),
    key,
    publicKey: createPublicKey(key),
    signatureAlgorithm: alg!,
    ski,
    subjectDer: ca.subjectDer,
    publicKeyBits: ca.publicKeyBits,
    notBefore: ca.notBefore,
    notAfter: ca.notAfter,
    chainPem: Object.freeze(chainPem),
    rootPem,
    uriConstraints: Object.freeze(uriConstraints),
  });
}

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const DAY = 86_400_000;

export function generateDevCa(trustDomain: string, now: Date = new Date(), opts: { validityDays?: number } = {}): CertificateAuthority {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new X509Error('ca_invalid', `invalid SPIFFE trust domain "${trustDomain}"`);
  const days = opts.validityDays ?? 365;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const keyBits = spki.subarray(spki.length - 65); // uncompressed P-256 point ends the SPKI
  const ski = createHash('sha1').update(keyBits).digest();
  const name = seq(
    set(seq(oid(OID.organizationName), utf8(trustDomain))),
    set(seq(oid(OID.commonName), utf8('Mayfly dev CA'))),
  );
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x01;
  const nb = floorSecond(new Date(now.getTime() - 5 * 60_000));
  const na = floorSecond(new Date(now.getTime() + days * DAY));
  const ext = (id: string, critical: boolean, value: Buffer) =>
    critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
  const extensions = seq(
    ext(OID.basicConstraints, true, seq(TRUE, Buffer.from([0x02, 0x01, 0x00]))),
    ext(OID.keyUsage, true, bits(Buffer.from([0x06]), 1)), // keyCertSign (5) + cRLSign (6)
    ext(OID.subjectKeyIdentifier, false, octets(ski)),
    ext(OID.nameConstraints, true, seq(ctx(0, seq(ctxPrim(6, Buffer.from(trustDomain, 'latin1')))))),
  );
  const alg = signatureAlgorithmDer('ES256');
  const tbs = seq(
    ctx(0, Buffer.from([0x02, 0x01, 0x02])),
    intFromMagnitude(serial),
    alg,
    name,
    seq(time(nb), time(na)),
    name,
    spki,
    ctx(3, extensions),
  );
  const der = seq(tbs, alg, bits(sign('ES256', privateKey, tbs)));
  const ca = loadCa({
    certPem: toPem('CERTIFICATE', der),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    now,
  });
  return Object.freeze({ ...ca, trustDomain });
}
