/** issueCertificate: X509-SVID content, openssl verification (dev root, openssl roots of every key type,
 * an intermediate), what a CSR asks for is ignored, and input validation. */
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDevCa, loadCa, type CertificateAuthority } from '../../../src/x509/ca.js';
import { issueCertificate, randomSerial, readSvid, serialHexOf, type IssueInput } from '../../../src/x509/certificate.js';
import { parseCsr } from '../../../src/x509/csr.js';
import { X509Error } from '../../../src/x509/errors.js';
import { HOUR, Workdir, opensslCsr, opensslIntermediate, opensslRoot, parseCert, type KeySpec } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

const TASK_OID = '1.3.6.1.4.1.59470.1.1';
const ID = 'spiffe://example.org/agents/builder';
const TASK = 'tsk_0123456789abcdefXYZ';
const CRL = 'http://mayfly.test:8080/v1/crl';

function input(csrPem: string, over: Partial<IssueInput> = {}): IssueInput {
  const { spkiDer, keyType } = parseCsr(csrPem);
  const now = Date.now();
  return { spkiDer, keyType, spiffeId: ID, taskId: TASK, notBefore: new Date(now - 30_000), notAfter: new Date(now + HOUR), crlUrl: CRL, ...over };
}

function code(f: () => unknown): string {
  try {
    f();
    return 'returned';
  } catch (e) {
    return e instanceof X509Error ? e.code : `other: ${(e as Error).message}`;
  }
}

describe('X509-SVIDs from the dev CA', () => {
  let ca: CertificateAuthority;
  beforeAll(() => {
    ca = generateDevCa('example.org');
    w.write('dev-ca.pem', ca.cert.pem);
  });

  for (const spec of ['p256', 'p384', 'ed25519', 'rsa2048'] as KeySpec[]) {
    it(`${spec}: openssl verifies it and shows exactly the SVID profile`, () => {
      const csr = opensslCsr(w, `leaf-${spec}`, spec);
      const c = issueCertificate(ca, input(csr));
      w.write(`leaf-${spec}.pem`, c.pem);
      expect(w.openssl(['verify', '-x509_strict', '-CAfile', 'dev-ca.pem', `leaf-${spec}.pem`]).out).toContain(`leaf-${spec}.pem: OK`);
      // also as a TLS client and server certificate
      w.openssl(['verify', '-CAfile', 'dev-ca.pem', '-purpose', 'sslclient', `leaf-${spec}.pem`]);
      w.openssl(['verify', '-CAfile', 'dev-ca.pem', '-purpose', 'sslserver', `leaf-${spec}.pem`]);

      const text = w.openssl(['x509', '-in', `leaf-${spec}.pem`, '-noout', '-text']).out;
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
      expect(text).toMatch(
        spec === 'rsa2048' ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /X509v3 Key Usage: critical\s+Digital Signature\n/,
      );
      expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
      expect(text).toMatch(/X509v3 Subject Key Identifier/);
      expect(text).toMatch(/X509v3 Authority Key Identifier/);
      expect(text).toMatch(/X509v3 Subject Alternative Name:\s*\n\s+URI:spiffe:\/\/example\.org\/agents\/builder\n/);
      expect(text.match(/URI:/g)).toHaveLength(2); // the SAN and the CRL DP, nothing else
      expect(text).toMatch(/X509v3 CRL Distribution Points:\s*\n\s+Full Name:\s*\n\s+URI:http:\/\/mayfly\.test:8080\/v1\/crl/);
      expect(text).toContain(`${TASK_OID}: \n`);
      expect(text).toContain('Subject: O = example.org\n');
      expect(text).toContain('Issuer: O = example.org, CN = Mayfly dev CA');
      expect(text).toContain(ca.signatureAlgorithm === 'ES256' ? 'ecdsa-with-SHA256' : '?');
      expect(text).not.toContain('agent\n'); // the CSR's CN=agent is not carried over

      const serial = text.match(/Serial Number:\s*\n\s+([0-9a-f:]+)/)![1]!.replace(/:/g, '');
      expect(serial).toBe(c.serialHex);
      expect(serial.length).toBeGreaterThanOrEqual(16); // ≥ 64 bits
    });
  }

  it('the extensions, decoded by asn1-x509: order, criticality, values; AKI = CA SKI; SKI = SHA-1 of the key', () => {
    const csr = opensslCsr(w, 'ext', 'p256');
    const c = issueCertificate(ca, input(csr));
    const cert = parseCert(c.der);
    const exts = cert.tbsCertificate.extensions!;
    expect(exts.map((e) => [e.extnID, e.critical])).toEqual([
      ['2.5.29.19', true],
      ['2.5.29.15', true],
      ['2.5.29.37', false],
      ['2.5.29.14', false],
      ['2.5.29.35', false],
      ['2.5.29.17', false],
      ['2.5.29.31', false],
      [TASK_OID, false],
    ]);
    const val = (i: number) => exts[i]!.extnValue.buffer;
    expect(AsnConvert.parse(val(0), BasicConstraints).cA).toBe(false);
    const ku = AsnConvert.parse(val(1), KeyUsage);
    expect(ku.toNumber()).toBe(KeyUsageFlags.digitalSignature);
    expect([...AsnConvert.parse(val(2), ExtendedKeyUsage)]).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const ski = Buffer.from(AsnConvert.parse(val(3), SubjectKeyIdentifier).buffer);
    const aki = AsnConvert.parse(val(4), AuthorityKeyIdentifier);
    expect(Buffer.from(aki.keyIdentifier!.buffer).equals(ca.ski)).toBe(true);
    const san = AsnConvert.parse(val(5), SubjectAlternativeName);
    expect(san.length).toBe(1);
    expect(san[0]!.uniformResourceIdentifier).toBe(ID);
    const dp = AsnConvert.parse(val(6), CRLDistributionPoints);
    expect(dp[0]!.distributionPoint!.fullName![0]!.uniformResourceIdentifier).toBe(CRL);
    // task extension: extnValue is exactly a DER UTF8String of the task id
    expect(Buffer.from(val(7)).equals(Buffer.concat([Buffer.from([0x0c, TASK.length]), Buffer.from(TASK)]))).toBe(true);
    // the task id appears once in the whole certificate
    expect(c.der.toString('latin1').split(TASK).length - 1).toBe(1);
    // SKI = SHA-1(subjectPublicKey) (RFC 5280 §4.2.1.2 method 1), same as openssl's subjectKeyIdentifier=hash
    const x = new X509Certificate(c.der);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBe(`URI:${ID}`);
    expect(x.checkIssued(new X509Certificate(ca.cert.der))).toBe(true);
    expect(x.verify(ca.publicKey)).toBe(true);
    w.write('ext.pem', c.pem);
    const sslSki = w.openssl(['x509', '-in', 'ext.pem', '-noout', '-ext', 'subjectKeyIdentifier']).out;
    expect(sslSki.replace(/[^0-9A-F:]/g, '').replace(/:/g, '').endsWith(ski.toString('hex').toUpperCase())).toBe(true);
    expect(cert.tbsCertificate.version).toBe(2);
    // read back
    expect(readSvid(c.der)).toEqual({ spiffeId: ID, taskId: TASK, serialHex: c.serialHex, notBefore: c.notBefore, notAfter: c.notAfter });
    expect(code(() => readSvid(ca.cert.der))).toBe('issue_invalid');
    expect(code(() => readSvid(c.der.subarray(1)))).toBe('issue_invalid');
  });

  it('a CSR asking for CA:TRUE, keyCertSign, extra SANs and another subject gets none of it', () => {
    const csr = opensslCsr(w, 'evil', 'p256', [
      '-subj', '/CN=evil.example.com/O=Other Org',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', 'subjectAltName=DNS:evil.example.com,URI:spiffe://other.org/admin,email:a@b.c',
      '-addext', 'extendedKeyUsage=codeSigning',
    ]);
    expect(w.openssl(['req', '-in', 'evil.csr', '-noout', '-text']).out).toContain('CA:TRUE');
    const c = issueCertificate(ca, input(csr));
    w.write('evil.pem', c.pem);
    const text = w.openssl(['x509', '-in', 'evil.pem', '-noout', '-text']).out;
    for (const s of ['evil', 'Other Org', 'other.org', 'CA:TRUE', 'Certificate Sign', 'CRL Sign', 'Code Signing', 'email', 'DNS:'])
      expect(text, s).not.toContain(s);
    expect(text).toContain('CA:FALSE');
    expect(new X509Certificate(c.der).subjectAltName).toBe(`URI:${ID}`);
  });

  it('serials: 16 random bytes, positive, distinct; serialHex is canonical', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = randomSerial();
      expect(s.length).toBe(16);
      expect(s[0]! & 0x80).toBe(0);
      seen.add(s.toString('hex'));
    }
    expect(seen.size).toBe(2000);
    expect(serialHexOf(Buffer.from([0, 0, 0x12, 0xab]))).toBe('12ab');
    expect(serialHexOf(Buffer.from([0x80]))).toBe('80');
    const csr = opensslCsr(w, 'ser', 'p256');
    const c = issueCertificate(ca, input(csr, { serial: Buffer.from('00007f01020304050607080910111213', 'hex') }));
    expect(c.serialHex).toBe('7f01020304050607080910111213');
    expect(new X509Certificate(c.der).serialNumber.toLowerCase()).toBe(c.serialHex);
  });

  it('validity: floored to the second, notAfter capped at the CA notAfter, UTCTime/GeneralizedTime by year', () => {
    const csr = opensslCsr(w, 'val', 'p256');
    const nb = new Date('2030-01-01T00:00:00.900Z');
    const late = generateDevCa('example.org', new Date('2049-12-31T12:00:00Z'), { validityDays: 30 });
    const c = issueCertificate(late, input(csr, { notBefore: nb, notAfter: new Date('2050-01-02T03:04:05.999Z') }));
    expect(c.notBefore.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(c.notAfter.toISOString()).toBe('2050-01-02T03:04:05.000Z');
    w.write('late-ca.pem', late.cert.pem);
    w.write('late.pem', c.pem);
    const text = w.openssl(['x509', '-in', 'late.pem', '-noout', '-text']).out;
    expect(text).toContain('Not Before: Jan  1 00:00:00 2030 GMT');
    expect(text).toContain('Not After : Jan  2 03:04:05 2050 GMT');
    expect(parseCert(c.der).tbsCertificate.validity.notAfter.generalTime).toBeInstanceOf(Date);
    const at = String(Math.floor(new Date('2050-01-01T00:00:00Z').getTime() / 1000));
    w.openssl(['verify', '-attime', at, '-CAfile', 'late-ca.pem', 'late.pem']);
    // capped at the CA's notAfter
    const capped = issueCertificate(ca, input(csr, { notAfter: new Date(ca.notAfter.getTime() + 10 * HOUR) }));
    expect(capped.notAfter.getTime()).toBe(ca.notAfter.getTime());
  });

  it('AIA OCSP URL when given', () => {
    const c = issueCertificate(ca, input(opensslCsr(w, 'aia', 'p256'), { ocspUrl: 'http://mayfly.test/v1/ocsp' }));
    w.write('aia.pem', c.pem);
    expect(w.openssl(['x509', '-in', 'aia.pem', '-noout', '-ocsp_uri']).out.trim()).toBe('http://mayfly.test/v1/ocsp');
  });

  it('bad issuance input: issue_invalid; a SPIFFE ID outside the name constraints: spiffe_id_not_permitted', () => {
    const csr = opensslCsr(w, 'bad', 'p256');
    const base = input(csr);
    expect(code(() => issueCertificate(ca, { ...base, spiffeId: 'spiffe://other.org/agents/x' }))).toBe('spiffe_id_not_permitted');
    expect(code(() => issueCertificate(ca, { ...base, spiffeId: 'spiffe://sub.example.org/x' }))).toBe('spiffe_id_not_permitted');
    for (const spiffeId of ['https://example.org/x', 'spiffe://example.org', 'spiffe://example.org/a/../b', 'spiffe://Example.org/x', 'spiffe://example.org/é'])
      expect(code(() => issueCertificate(ca, { ...base, spiffeId })), spiffeId).toBe('issue_invalid');
    for (const taskId of ['', 'a b', 'x'.repeat(257), 'tâche', 'a\nb'])
      expect(code(() => issueCertificate(ca, { ...base, taskId })), JSON.stringify(taskId)).toBe('issue_invalid');
    for (const crlUrl of ['', 'ftp://x/crl', 'http://exa mple/crl', 'http://ex\u00e4mple/'])
      expect(code(() => issueCertificate(ca, { ...base, crlUrl })), crlUrl).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, notAfter: base.notBefore }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, notAfter: new Date(NaN) }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, serial: Buffer.from([0x80, 1]) }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, serial: Buffer.alloc(4) }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, serial: Buffer.alloc(21, 1) }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, keyType: 'rsa' }))).toBe('issue_invalid');
    expect(code(() => issueCertificate(ca, { ...base, spkiDer: Buffer.from([0x30, 0x00]) }))).toBe('issue_invalid');
  });
});

describe('X509-SVIDs from openssl-made CAs', () => {
  for (const spec of ['p256', 'p384', 'ed25519', 'rsa2048'] as KeySpec[]) {
    it(`a ${spec} root loaded with loadCa signs SVIDs openssl verifies`, () => {
      opensslRoot(w, `root-${spec}`, spec);
      const ca = loadCa({ certPem: w.readText(`root-${spec}.pem`), keyPem: w.readText(`root-${spec}.key`) });
      expect(ca.signatureAlgorithm).toBe({ p256: 'ES256', p384: 'ES384', ed25519: 'Ed25519', rsa2048: 'RS256' }[spec]);
      expect(ca.chainPem).toEqual([]);
      expect(ca.rootPem).toBe(ca.cert.pem);
      for (const leaf of ['p256', 'ed25519'] as KeySpec[]) {
        const c = issueCertificate(ca, input(opensslCsr(w, `l-${spec}-${leaf}`, leaf)));
        w.write(`l-${spec}-${leaf}.pem`, c.pem);
        expect(w.openssl(['verify', '-x509_strict', '-CAfile', `root-${spec}.pem`, `l-${spec}-${leaf}.pem`]).out).toContain(': OK');
        // the issuer is byte-identical to the CA subject (openssl made that Name, we copied it)
        expect(parseCert(c.der).tbsCertificate.issuer).toEqual(parseCert(ca.cert.der).tbsCertificate.subject);
      }
    });
  }

  it('a CA named exactly O=<trust domain>: leaves get an empty subject and a critical SAN, never issuer = subject', () => {
    opensslRoot(w, 'samename', 'p256', { subj: '/O=example.org' });
    const ca = loadCa({ certPem: w.readText('samename.pem'), keyPem: w.readText('samename.key') });
    const c = issueCertificate(ca, input(opensslCsr(w, 'samename-leaf', 'p256')));
    w.write('samename-leaf.pem', c.pem);
    const text = w.openssl(['x509', '-in', 'samename-leaf.pem', '-noout', '-text']).out;
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/agents\/builder/);
    expect(w.openssl(['verify', '-x509_strict', '-CAfile', 'samename.pem', 'samename-leaf.pem']).out).toContain(': OK');
  });

  it('an intermediate (P-384, URI name constraint) under a P-256 root: chain served, openssl verifies with -untrusted', () => {
    opensslRoot(w, 'iroot', 'p256');
    opensslIntermediate(w, 'inter', 'iroot', 'p384');
    const ca = loadCa({ certPem: w.readText('inter.pem'), keyPem: w.readText('inter.key'), chainPem: w.readText('iroot.pem') });
    expect(ca.chainPem).toEqual([ca.cert.pem]);
    expect(ca.rootPem).toBe(w.readText('iroot.pem'));
    expect(ca.signatureAlgorithm).toBe('ES384');
    const c = issueCertificate(ca, input(opensslCsr(w, 'ileaf', 'p256')));
    w.write('ileaf.pem', c.pem);
    w.write('ichain.pem', ca.chainPem.join(''));
    expect(w.openssl(['verify', '-x509_strict', '-CAfile', 'iroot.pem', '-untrusted', 'ichain.pem', 'ileaf.pem']).out).toContain('ileaf.pem: OK');
    // without the intermediate the chain does not build
    expect(w.openssl(['verify', '-CAfile', 'iroot.pem', 'ileaf.pem'], { allowFail: true }).ok).toBe(false);
    // the intermediate's permitted URI subtree (example.org) is enforced before signing
    expect(code(() => issueCertificate(ca, input(opensslCsr(w, 'ileaf2', 'p256'), { spiffeId: 'spiffe://other.org/a' })))).toBe(
      'spiffe_id_not_permitted',
    );
  });
});
