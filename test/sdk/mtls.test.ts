/** mTLS: X509-SVIDs as the broker's CA mints them, checked against a trust bundle and the revocation mirror. */
import { describe, expect, it } from 'vitest';
import { checkClientCertificate, RevocationMirror } from '../../src/sdk/verifier/index.js';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';
import { generateDevCa, issueCertificate, parseCsr, type CertificateAuthority } from '../../src/x509/index.js';

const TD = 'test.local';
const now = Date.now();

function svid(ca: CertificateAuthority, spiffeId = `spiffe://${TD}/agent/a`, o: { taskId?: string; from?: number; to?: number } = {}) {
  const csr = parseCsr(newKeyAndCsr().csrPem);
  return issueCertificate(ca, {
    spkiDer: csr.spkiDer,
    keyType: csr.keyType,
    spiffeId,
    taskId: o.taskId ?? 'tsk_AAAAAAAAAAAAAAAAAAAAAA',
    notBefore: new Date(o.from ?? now - 60_000),
    notAfter: new Date(o.to ?? now + 3_600_000),
    crlUrl: 'http://127.0.0.1/crl',
  });
}

describe('checkClientCertificate', () => {
  const ca = generateDevCa(TD);
  const bundle = ca.cert.pem;

  it('reports serials exactly as the broker does, whatever their first byte', () => {
    for (let i = 0; i < 64; i++) {
      const c = svid(ca);
      const r = checkClientCertificate(c.der, { trustBundle: bundle, now });
      expect(r.ok && r.serial).toBe(c.serialHex);
    }
  });

  it('accepts an SVID of the bundle and reads its SPIFFE ID, serial and task', () => {
    const c = svid(ca);
    const r = checkClientCertificate(c.pem, { trustBundle: bundle, trustDomain: TD, now });
    expect(r).toMatchObject({ ok: true, spiffeId: `spiffe://${TD}/agent/a`, trustDomain: TD, serial: c.serialHex, taskId: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' });
    expect(checkClientCertificate(c.der, { trustBundle: [ca.cert.pem], now }).ok).toBe(true);
  });

  it('refuses other CAs, CA certificates, other trust domains and certificates outside their validity', () => {
    const other = generateDevCa(TD);
    expect(checkClientCertificate(svid(other).pem, { trustBundle: bundle, now })).toMatchObject({ ok: false, code: 'untrusted' });
    expect(checkClientCertificate(ca.cert.pem, { trustBundle: bundle, now })).toMatchObject({ ok: false, code: 'not_a_leaf' });
    expect(checkClientCertificate(svid(ca).pem, { trustBundle: bundle, trustDomain: 'other.local', now })).toMatchObject({ ok: false, code: 'wrong_trust_domain' });
    const c = svid(ca, undefined, { to: now + 60_000 });
    expect(checkClientCertificate(c.pem, { trustBundle: bundle, now: now + 120_000 })).toMatchObject({ ok: false, code: 'expired' });
    expect(checkClientCertificate(c.pem, { trustBundle: bundle, now: now - 600_000 })).toMatchObject({ ok: false, code: 'not_yet_valid' });
    expect(checkClientCertificate('garbage', { trustBundle: bundle, now })).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('refuses a certificate whose serial or task the feed revoked', () => {
    const c1 = svid(ca, undefined, { taskId: 'tsk_BBBBBBBBBBBBBBBBBBBBBB' });
    const c2 = svid(ca, undefined, { taskId: 'tsk_CCCCCCCCCCCCCCCCCCCCCC' });
    const mirror = new RevocationMirror();
    const check = (pem: string) => checkClientCertificate(pem, { trustBundle: bundle, now, revocation: mirror });
    expect(check(c1.pem).ok).toBe(true);
    mirror.apply({ id: '1-0', type: 'certificate.revoked', at: new Date().toISOString(), serial: c1.serialHex.toUpperCase(), task_id: 'tsk_BBBBBBBBBBBBBBBBBBBBBB' });
    expect(check(c1.pem)).toMatchObject({ ok: false, code: 'revoked' });
    expect(check(c2.pem).ok).toBe(true);
    mirror.apply({ id: '2-0', type: 'task.closed', at: new Date().toISOString(), task_id: 'tsk_CCCCCCCCCCCCCCCCCCCCCC' });
    expect(check(c2.pem)).toMatchObject({ ok: false, code: 'revoked', message: expect.stringMatching(/task/) });
  });
});
