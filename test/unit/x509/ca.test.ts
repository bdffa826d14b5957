/** loadCa and generateDevCa: what a usable CA is, and every way a configured one is refused. */
import { X509Certificate } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDevCa, loadCa, type LoadCaInput } from '../../../src/x509/ca.js';
import { X509Error } from '../../../src/x509/errors.js';
import { Workdir, opensslIntermediate, opensslRoot } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

function caInvalid(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(X509Error);
    expect((e as X509Error).code).toBe('ca_invalid');
    return (e as Error).message;
  }
  throw new Error('expected ca_invalid');
}

describe('generateDevCa', () => {
  it('an EC P-256 self-signed root: CA:TRUE, keyCertSign+cRLSign, URI name constraint, one year', () => {
    const now = new Date('2026-03-01T12:00:00.500Z');
    const ca = generateDevCa('example.org', now);
    expect(ca.signatureAlgorithm).toBe('ES256');
    expect(ca.key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.chainPem).toEqual([]);
    expect(ca.rootPem).toBe(ca.cert.pem);
    expect(ca.trustDomain).toBe('example.org');
    expect(ca.notAfter.getTime() - now.getTime()).toBeGreaterThan(364 * 86_400_000);
    expect(ca.notBefore.getTime()).toBeLessThan(now.getTime());
    expect(ca.uriConstraints).toEqual([{ permitted: ['example.org'], excluded: [] }]);
    const x = new X509Certificate(ca.cert.der);
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    w.write('dev.pem', ca.cert.pem);
    const text = w.openssl(['x509', '-in', 'dev.pem', '-noout', '-text']).out;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Name Constraints: critical\s+Permitted:\s+URI:example\.org/);
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('Subject: O = example.org, CN = Mayfly dev CA');
    // openssl accepts it as a trust anchor in strict mode
    w.openssl(['verify', '-x509_strict', '-check_ss_sig', '-CAfile', 'dev.pem', 'dev.pem']);
    // and two dev CAs are different CAs
    expect(generateDevCa('example.org', now).ski.equals(ca.ski)).toBe(false);
  });

  it('refuses an invalid trust domain', () => {
    for (const td of ['', 'Example.org', 'a/b', 'spiffe://x', 'ex ample']) caInvalid(() => generateDevCa(td));
  });
});

describe('loadCa', () => {
  it('a root with its key: chain [] and rootPem; a key in SEC1/PKCS#8 form both load', () => {
    opensslRoot(w, 'r1', 'p256');
    const ca = loadCa({ certPem: w.readText('r1.pem'), keyPem: w.readText('r1.key') });
    expect(ca.rootPem).toBe(ca.cert.pem);
    w.openssl(['ec', '-in', 'r1.key', '-out', 'r1.sec1.key']);
    expect(w.readText('r1.sec1.key')).toContain('BEGIN EC PRIVATE KEY');
    expect(loadCa({ certPem: w.readText('r1.pem'), keyPem: w.readText('r1.sec1.key') }).ski.equals(ca.ski)).toBe(true);
  });

  it('an encrypted key (PKCS#8 and OpenSSL legacy PEM) loads with its password; without it, or with another, a clear ca_invalid', () => {
    opensslRoot(w, 'r5', 'p256');
    const plain = loadCa({ certPem: w.readText('r5.pem'), keyPem: w.readText('r5.key') });
    w.openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', 'r5.key', '-out', 'r5.p8.key', '-passout', 'pass:s3cret pass']);
    w.openssl(['ec', '-aes256', '-in', 'r5.key', '-out', 'r5.legacy.key', '-passout', 'pass:s3cret pass']);
    expect(w.readText('r5.p8.key')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(w.readText('r5.legacy.key')).toContain('Proc-Type: 4,ENCRYPTED');
    for (const f of ['r5.p8.key', 'r5.legacy.key']) {
      const keyPem = w.readText(f);
      const ca = loadCa({ certPem: w.readText('r5.pem'), keyPem, keyPassword: 's3cret pass' });
      expect(ca.ski.equals(plain.ski)).toBe(true);
      expect(ca.signatureAlgorithm).toBe('ES256');
      expect(caInvalid(() => loadCa({ certPem: w.readText('r5.pem'), keyPem }))).toMatch(/encrypted: give its password/);
      expect(caInvalid(() => loadCa({ certPem: w.readText('r5.pem'), keyPem, keyPassword: 'wrong' }))).toMatch(/cannot be decrypted/);
      expect(caInvalid(() => loadCa({ certPem: w.readText('r5.pem'), keyPem, keyPassword: '' }))).toMatch(/cannot be decrypted/);
    }
    // a password given for a key that is not encrypted is not needed, and harmless
    expect(loadCa({ certPem: w.readText('r5.pem'), keyPem: w.readText('r5.key'), keyPassword: 'unused' }).ski.equals(plain.ski)).toBe(true);
  });

  it('an intermediate: chain given in the cert file or in chainPem; the root is never served', () => {
    opensslRoot(w, 'r2', 'rsa2048');
    opensslIntermediate(w, 'i2', 'r2', 'p256');
    const a = loadCa({ certPem: w.readText('i2.pem') + w.readText('r2.pem'), keyPem: w.readText('i2.key') });
    const b = loadCa({ certPem: w.readText('i2.pem'), keyPem: w.readText('i2.key'), chainPem: w.readText('r2.pem') });
    for (const ca of [a, b]) {
      expect(ca.chainPem).toEqual([w.readText('i2.pem')]);
      expect(ca.rootPem).toBe(w.readText('r2.pem'));
      expect(ca.signatureAlgorithm).toBe('ES256');
    }
    // without the root: the intermediate is the whole served chain and there is no rootPem
    const c = loadCa({ certPem: w.readText('i2.pem'), keyPem: w.readText('i2.key') });
    expect(c.chainPem).toEqual([w.readText('i2.pem')]);
    expect(c.rootPem).toBeUndefined();
  });

  it('refuses: key mismatch, not a CA, no cRLSign, expired, not yet valid, broken chain, bad PEM, bad key', () => {
    opensslRoot(w, 'ok', 'p256');
    opensslRoot(w, 'other', 'p256');
    opensslRoot(w, 'noca', 'p256', { section: 'v3_noca' });
    opensslRoot(w, 'nocrl', 'p256', { section: 'v3_nocrl' });
    const base: LoadCaInput = { certPem: w.readText('ok.pem'), keyPem: w.readText('ok.key') };
    expect(caInvalid(() => loadCa({ ...base, keyPem: w.readText('other.key') }))).toMatch(/does not match/);
    expect(caInvalid(() => loadCa({ certPem: w.readText('noca.pem'), keyPem: w.readText('noca.key') }))).toMatch(/not a CA/);
    expect(caInvalid(() => loadCa({ certPem: w.readText('nocrl.pem'), keyPem: w.readText('nocrl.key') }))).toMatch(/cRLSign/);
    expect(caInvalid(() => loadCa({ ...base, now: new Date(Date.now() + 31 * 86_400_000) }))).toMatch(/expired/);
    expect(caInvalid(() => loadCa({ ...base, now: new Date(Date.now() - 86_400_000) }))).toMatch(/not valid before/);
    expect(caInvalid(() => loadCa({ ...base, chainPem: w.readText('other.pem') }))).toMatch(/self-signed|did not issue/);
    opensslIntermediate(w, 'i3', 'ok', 'p256');
    expect(caInvalid(() => loadCa({ certPem: w.readText('i3.pem'), keyPem: w.readText('i3.key'), chainPem: w.readText('other.pem') }))).toMatch(
      /did not issue/,
    );
    caInvalid(() => loadCa({ ...base, certPem: '' }));
    caInvalid(() => loadCa({ ...base, certPem: '-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n' }));
    caInvalid(() => loadCa({ ...base, certPem: '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n' }));
    caInvalid(() => loadCa({ ...base, keyPem: 'not a key' }));
    // a weak RSA CA key
    w.openssl(['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', 'weak.key', '-subj', '/CN=weak', '-days', '3', '-config', 'ca-ext.cnf', '-extensions', 'v3_ca', '-out', 'weak.pem']);
    expect(caInvalid(() => loadCa({ certPem: w.readText('weak.pem'), keyPem: w.readText('weak.key') }))).toMatch(/unsupported CA key/);
  });
});
