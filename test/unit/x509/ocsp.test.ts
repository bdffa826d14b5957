/** OCSP: requests made by `openssl ocsp`, responses checked by `openssl ocsp -respin` and asn1-ocsp. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, OCSPRequest, OCSPResponse, OCSPResponseStatus } from '@peculiar/asn1-ocsp';
import { Extension, Extensions } from '@peculiar/asn1-x509';
import { OctetString } from '@peculiar/asn1-schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDevCa, loadCa, type CertificateAuthority } from '../../../src/x509/ca.js';
import { issueCertificate, type IssuedCertificate } from '../../../src/x509/certificate.js';
import { parseCsr } from '../../../src/x509/csr.js';
import { X509Error } from '../../../src/x509/errors.js';
import { buildOcspResponse, certIdMatchesCa, ocspError, parseOcspRequest, type OcspSingleResponse } from '../../../src/x509/ocsp.js';
import { HOUR, Workdir, opensslCsr, opensslIntermediate, opensslRoot } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

let ca: CertificateAuthority;
const leaves: Record<string, IssuedCertificate> = {};

function issue(name: string, authority = ca): IssuedCertificate {
  const now = Date.now();
  const c = issueCertificate(authority, {
    ...parseCsr(opensslCsr(w, name, 'p256')),
    spiffeId: 'spiffe://example.org/agents/o',
    taskId: 'tsk_ocsp',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + HOUR),
    crlUrl: 'http://x/crl',
  });
  w.write(`${name}.pem`, c.pem);
  return c;
}

beforeAll(() => {
  ca = generateDevCa('example.org');
  w.write('ca.pem', ca.cert.pem);
  leaves.a = issue('a');
  leaves.b = issue('b');
});

/** The responder KeyHash openssl should print: SHA-1 of the CA key bits = the CertID issuerKeyHash. */
function req0KeyHash(): string {
  return parseOcspRequest(w.read('req-good.der')).certIds[0]!.issuerKeyHash.toString('hex').toUpperCase();
}

function answer(reqFile: string, status: (serialHex: string) => OcspSingleResponse['status'], opts: { nonce?: boolean; includeCaCert?: boolean } = {}) {
  const req = parseOcspRequest(w.read(reqFile));
  const now = new Date();
  const responses = req.certIds.map((certId) => ({
    certId,
    status: status(certId.serialHex),
    revokedAt: new Date(now.getTime() - 30_000),
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 300_000),
  }));
  const nonce = opts.nonce === false ? undefined : req.nonce;
  return buildOcspResponse(ca, responses, { nonce, includeCaCert: opts.includeCaCert });
}

describe('OCSP with openssl', () => {
  it('parses an openssl request (SHA-1 CertID, no nonce) and matches it to the CA', () => {
    w.openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'a.pem', '-reqout', 'req.der', '-no_nonce']);
    const req = parseOcspRequest(w.read('req.der'));
    expect(req.nonce).toBeUndefined();
    expect(req.certIds).toHaveLength(1);
    expect(req.certIds[0]!.hashAlg).toBe('sha1');
    expect(req.certIds[0]!.serialHex).toBe(leaves.a!.serialHex);
    expect(certIdMatchesCa(ca, req.certIds[0]!)).toBe(true);
    expect(certIdMatchesCa(generateDevCa('example.org'), req.certIds[0]!)).toBe(false);
  });

  it('good: openssl verifies the signature (responder = the issuing CA, byKey) and reads the status', () => {
    w.openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'a.pem', '-reqout', 'req-good.der', '-no_nonce']);
    w.write('resp-good.der', answer('req-good.der', () => 'good'));
    const r = w.opensslAll(['ocsp', '-respin', 'resp-good.der', '-issuer', 'ca.pem', '-CAfile', 'ca.pem', '-cert', 'a.pem', '-resp_text', '-no_nonce']);
    expect(r.ok).toBe(true);
    expect(r.out).toContain('Response verify OK');
    expect(r.out).toContain('a.pem: good');
    expect(r.out).toContain(`Responder Id: ${req0KeyHash()}`);
    expect(r.out).toContain('OCSP Response Status: successful (0x0)');
    // with -VAfile too (the CA as the trusted responder)
    const v = w.opensslAll(['ocsp', '-respin', 'resp-good.der', '-issuer', 'ca.pem', '-VAfile', 'ca.pem', '-cert', 'a.pem', '-no_nonce']);
    expect(v.out).toContain('Response verify OK');
    expect(v.out).toContain('a.pem: good');
  });

  it('revoked and good in one request with a nonce, SHA-256 CertIDs; the nonce is echoed and checked', () => {
    w.openssl(['ocsp', '-sha256', '-issuer', 'ca.pem', '-cert', 'a.pem', '-cert', 'b.pem', '-reqout', 'req-n.der']);
    const req = parseOcspRequest(w.read('req-n.der'));
    expect(req.certIds.map((c) => c.hashAlg)).toEqual(['sha256', 'sha256']);
    expect(req.nonce?.length).toBe(18); // OCTET STRING(16 random bytes), as openssl sends it
    expect(req.certIds.every((c) => certIdMatchesCa(ca, c))).toBe(true);
    w.write('resp-n.der', answer('req-n.der', (s) => (s === leaves.b!.serialHex ? 'revoked' : 'good')));
    // statuses by certificate (openssl builds its own request from -cert, so no nonce check here)
    const r = w.opensslAll(['ocsp', '-respin', 'resp-n.der', '-issuer', 'ca.pem', '-CAfile', 'ca.pem', '-sha256', '-cert', 'a.pem', '-cert', 'b.pem', '-no_nonce']);
    expect(r.out).toContain('Response verify OK');
    expect(r.out).toContain('a.pem: good');
    expect(r.out).toMatch(/b\.pem: revoked\n\s+This Update: .*\n\s+Next Update: .*\n\s+Revocation Time: /);
    // the nonce, checked against the request it answers (-reqin)
    const n = w.opensslAll(['ocsp', '-reqin', 'req-n.der', '-respin', 'resp-n.der', '-issuer', 'ca.pem', '-CAfile', 'ca.pem', '-resp_text']);
    expect(n.out).toContain('Response verify OK');
    expect(n.out).not.toContain('WARNING');
    expect(n.out).not.toContain('Nonce Verify error');
    expect(n.out).toContain('OCSP Nonce');
    expect(n.out).toContain(req.nonce!.toString('hex').toUpperCase());
    // a response without the nonce draws openssl's warning
    w.write('resp-nn.der', answer('req-n.der', () => 'good', { nonce: false }));
    const m = w.opensslAll(['ocsp', '-reqin', 'req-n.der', '-respin', 'resp-nn.der', '-issuer', 'ca.pem', '-CAfile', 'ca.pem']);
    expect(m.out).toContain('WARNING: no nonce in response');
  });

  it('a CertID of another issuer is answered unknown whatever the caller says; certs included when asked', () => {
    const other = generateDevCa('example.org');
    w.write('other.pem', other.cert.pem);
    w.openssl(['ocsp', '-issuer', 'other.pem', '-cert', 'a.pem', '-reqout', 'req-o.der', '-no_nonce']);
    expect(certIdMatchesCa(ca, parseOcspRequest(w.read('req-o.der')).certIds[0]!)).toBe(false);
    w.write('resp-o.der', answer('req-o.der', () => 'good', { includeCaCert: true }));
    // openssl refuses our CA as an authority for the other CA's certificates (RFC 6960 §4.2.2.2)...
    const r = w.opensslAll(['ocsp', '-respin', 'resp-o.der', '-issuer', 'other.pem', '-CAfile', 'ca.pem', '-cert', 'a.pem', '-no_nonce']);
    expect(r.out).toContain('Response Verify Failure');
    // ...and, trusting it explicitly as a responder, reads the signature as valid and the status unknown
    const v = w.opensslAll(['ocsp', '-respin', 'resp-o.der', '-issuer', 'other.pem', '-VAfile', 'ca.pem', '-cert', 'a.pem', '-no_nonce']);
    expect(v.out).toContain('Response verify OK');
    expect(v.out).toContain('a.pem: unknown');
    const parsed = AsnConvert.parse(AsnConvert.parse(w.read('resp-o.der'), OCSPResponse).responseBytes!.response, BasicOCSPResponse);
    expect(parsed.certs).toHaveLength(1);
    expect(parsed.tbsResponseData.responses[0]!.certStatus.unknown).toBeNull();
  });

  it('an intermediate CA answers for its own leaves (openssl checks the chain)', () => {
    opensslRoot(w, 'oroot', 'p256');
    opensslIntermediate(w, 'oint', 'oroot', 'ed25519');
    const inter = loadCa({ certPem: w.readText('oint.pem'), keyPem: w.readText('oint.key'), chainPem: w.readText('oroot.pem') });
    const leaf = issue('ileaf', inter);
    w.openssl(['ocsp', '-issuer', 'oint.pem', '-cert', 'ileaf.pem', '-reqout', 'req-i.der']);
    const req = parseOcspRequest(w.read('req-i.der'));
    expect(req.certIds[0]!.serialHex).toBe(leaf.serialHex);
    const now = new Date();
    const resp = buildOcspResponse(inter, [{ certId: req.certIds[0]!, status: 'revoked', revokedAt: now, revocationReason: 1, thisUpdate: now }], { nonce: req.nonce });
    w.write('resp-i.der', resp);
    const r = w.opensslAll(['ocsp', '-reqin', 'req-i.der', '-respin', 'resp-i.der', '-issuer', 'oint.pem', '-CAfile', 'oroot.pem', '-resp_text']);
    expect(r.out).toContain('Response verify OK');
    expect(r.out).not.toContain('Nonce Verify error');
    expect(r.out).toContain('Cert Status: revoked');
    expect(r.out).toContain('Revocation Reason: keyCompromise (0x1)');
    expect(r.out).toContain('Signature Algorithm: ED25519');
    const s = w.opensslAll(['ocsp', '-respin', 'resp-i.der', '-issuer', 'oint.pem', '-CAfile', 'oroot.pem', '-cert', 'ileaf.pem', '-no_nonce']);
    expect(s.out).toContain('Response verify OK');
    expect(s.out).toContain('ileaf.pem: revoked');
  });

  it('the response decodes with asn1-ocsp: successful, basic, byKey responder, GeneralizedTime', () => {
    w.openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'a.pem', '-reqout', 'req-p.der', '-no_nonce']);
    const der = answer('req-p.der', () => 'revoked');
    const resp = AsnConvert.parse(der, OCSPResponse);
    expect(resp.responseStatus).toBe(OCSPResponseStatus.successful);
    expect(resp.responseBytes!.responseType).toBe('1.3.6.1.5.5.7.48.1.1');
    const basic = AsnConvert.parse(resp.responseBytes!.response, BasicOCSPResponse);
    expect(Buffer.from(basic.tbsResponseData.responderID.byKey!.buffer).length).toBe(20);
    expect(basic.tbsResponseData.responses[0]!.certStatus.revoked).toBeDefined();
    expect(basic.certs).toBeUndefined();
  });
});

describe('OCSP errors', () => {
  it('ocspError: a bare responseStatus openssl reads', () => {
    for (const [s, n, label] of [
      ['malformedRequest', 1, 'malformedrequest'],
      ['internalError', 2, 'internalerror'],
      ['unauthorized', 6, 'unauthorized'],
    ] as const) {
      const der = ocspError(s);
      expect(AsnConvert.parse(der, OCSPResponse).responseStatus).toBe(n);
      w.write(`err-${s}.der`, der);
      expect(w.opensslAll(['ocsp', '-respin', `err-${s}.der`, '-resp_text']).out.toLowerCase()).toContain(label);
    }
  });

  it('an unknown request extension is ignored, unless it is marked critical (RFC 6960 §4.4, RFC 5280 §4.2)', () => {
    w.openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'a.pem', '-reqout', 'req-x.der', '-no_nonce']);
    const withExtension = (critical: boolean) => {
      const r = AsnConvert.parse(w.read('req-x.der'), OCSPRequest);
      r.tbsRequest.requestExtensions = new Extensions([new Extension({ extnID: '1.3.6.1.4.1.59470.99', critical, extnValue: new OctetString(Buffer.from('x')) })]);
      return new Uint8Array(AsnConvert.serialize(r));
    };
    expect(parseOcspRequest(withExtension(false)).certIds).toHaveLength(1);
    let err: unknown;
    try {
      parseOcspRequest(withExtension(true));
    } catch (e) {
      err = e;
    }
    expect((err as X509Error).code).toBe('ocsp_malformed');
  });

  it('malformed requests raise ocsp_malformed (to answer with malformedRequest)', () => {
    w.openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'a.pem', '-reqout', 'req-m.der']);
    const good = w.read('req-m.der');
    const bad: Uint8Array[] = [
      Buffer.alloc(0),
      Buffer.from('hello'),
      good.subarray(0, good.length - 3),
      Buffer.concat([good, Buffer.from([0])]),
      Buffer.concat([good, Buffer.alloc(17 * 1024)]),
      Buffer.from([0x30, 0x03, 0x30, 0x01, 0x30]), // empty-ish
      Buffer.from([0x30, 0x04, 0x30, 0x02, 0x30, 0x00]), // empty requestList
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        parseOcspRequest(b);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(X509Error);
      expect((err as X509Error).code).toBe('ocsp_malformed');
    }
    // every single-byte change either still parses or is ocsp_malformed, never another exception
    for (let i = 0; i < good.length; i++) {
      for (const d of [1, 0x80]) {
        const m = Buffer.from(good);
        m[i] = (m[i]! + d) & 0xff;
        try {
          parseOcspRequest(m);
        } catch (e) {
          expect((e as X509Error).code).toBe('ocsp_malformed');
        }
      }
    }
  });
});
