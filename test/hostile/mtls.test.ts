/**
 * Hostile client certificates over mTLS: forged X509-SVIDs (self-signed copies with the same SPIFFE ID
 * and task extension, another broker's SVID), a CA certificate or a certificate signed by a leaf posing
 * as a workload, an expired certificate, a locked identity's SVID, a DPoP proof on top of a
 * certificate. Each is refused, and nothing is issued in the task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, exportJWK, SignJWT } from 'jose';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { bearer, id, OPERATOR, TOKEN_EXCHANGE, WIDE_TASK, type Res, type TestBroker } from '../helpers/broker.js';
import { CERT_TYPE, corpPki, form, json, startTlsBroker, svidByJwt, thumbprint, type Pair } from '../helpers/mtls.js';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';
import { generateDevCa, issueCertificate, parseCsr } from '../../src/x509/index.js';
import type { ManualClock } from '../../src/clock.js';

const { p, corpCa: CORP_CA, build: BUILD, call } = corpPki('mayfly-hostile-mtls-');
// a certificate "issued" by a leaf (CA:FALSE), claiming the same identity
const UNDER_LEAF = p.signed('under-leaf', 'build', 'build-7', 'URI:spiffe://corp.example/build/7');
// the same identity on a TLS *server* certificate of the corporate CA (extended key usage serverAuth only)
const SERVER_ONLY = p.signed('server-only', 'corp-ca', 'build-7', 'URI:spiffe://corp.example/build/7', [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
]);

describe.each(['redis', 'memory'] as const)('hostile client certificates (%s)', (store) => {
  let b: TestBroker;
  let url: string;
  let taskId: string;
  let svid: Pair;

  const exchange = (client: Pair, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: thumbprint(client.cert), subject_token_type: CERT_TYPE, task_id: taskId, ...extra }, headers), client });
  const issued = async () => (await call(`${url}/v1/tasks/${taskId}`, { headers: bearer(OPERATOR.token) })).body.credentials.issued as number;
  const refusedNothingIssued = async (r: Res, status = 400) => {
    expect(r.status, r.text).toBe(status);
    expect(typeof r.body.error).toBe('string');
    expect(typeof r.body.error_description).toBe('string');
  };

  beforeAll(async () => {
    b = await startTlsBroker(store, p, [
      { spiffe_id: id('agent/build'), attestor: 'corp', match: { spiffe_id: 'spiffe://corp.example/build/7' }, owner: 'ci@example.com', roles: ['agent'], scopes: ['read'], tools: ['search'], audiences: ['https://api.test'] },
    ]);
    url = b.url;
    taskId = (await call(`${url}/v1/tasks`, json(WIDE_TASK, bearer(OPERATOR.token)))).body.task_id;
    svid = await svidByJwt(call, url, taskId, await b.attest('agent-b'));
  });
  afterAll(() => b.close());

  it('a self-signed copy of an SVID (same SPIFFE ID, same task extension) is refused', async () => {
    const before = await issued();
    const forged = p.selfSigned(`forged-${store}`, '/O=test.local', [
      `subjectAltName=URI:${id('agent/b')}`,
      'basicConstraints=critical,CA:FALSE',
      `1.3.6.1.4.1.59470.1.1=ASN1:UTF8String:${taskId}`,
    ]);
    await refusedNothingIssued(await exchange(forged));
    const renew = await call(`${url}/v1/certificates`, { ...json({ task_id: taskId, csr: newKeyAndCsr().csrPem }), client: forged });
    await refusedNothingIssued(renew, 401);
    expect(await issued()).toBe(before);
  });

  it("another broker's SVID for the same SPIFFE ID and task is refused", async () => {
    const before = await issued();
    const other = generateDevCa('test.local');
    const k = newKeyAndCsr();
    const csr = parseCsr(k.csrPem);
    const cert = issueCertificate(other, {
      spkiDer: csr.spkiDer, keyType: csr.keyType, spiffeId: id('agent/b'), taskId,
      notBefore: new Date(b.clock.now() - 60_000), notAfter: new Date(b.clock.now() + 300_000), crlUrl: 'http://127.0.0.1/crl',
    });
    await refusedNothingIssued(await exchange({ cert: cert.pem, key: k.keyPem }));
    expect(await issued()).toBe(before);
  });

  it('a CA certificate, or a certificate signed by a leaf, cannot pose as a workload', async () => {
    const before = await issued();
    const ca = await exchange(CORP_CA);
    await refusedNothingIssued(ca);
    expect(ca.body.error_description).toMatch(/CA certificate/);
    const underLeaf = await exchange(UNDER_LEAF);
    await refusedNothingIssued(underLeaf);
    expect(underLeaf.body.error_description).toMatch(/does not chain/);
    expect(await issued()).toBe(before);
  });

  it('with a DPoP proof on top of a certificate, the token is bound to the proof key only', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const proof = await new SignJWT({ htm: 'POST', htu: `${b.running.broker.config.issuer}/oauth/token`, jti: randomUUID(), iat: Math.floor(b.clock.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    const r = await exchange(BUILD, {}, { dpop: proof });
    expect(r.status, r.text).toBe(200);
    expect(r.body.token_type).toBe('DPoP');
    expect(Object.keys(decodeJwt(r.body.access_token).cnf as object)).toEqual(['jkt']);
  });

  it('a certificate whose extended key usage leaves out clientAuth (a server certificate) attests nothing', async () => {
    const before = await issued();
    const r = await exchange(SERVER_ONLY);
    await refusedNothingIssued(r);
    expect(r.body.error_description).toMatch(/client authentication/);
    const cert = await call(`${url}/v1/certificates`, { ...json({ task_id: taskId, csr: newKeyAndCsr().csrPem }), client: SERVER_ONLY });
    expect(cert.status).toBe(401); // at a Bearer endpoint, RFC 6750 invalid_token
    expect(await issued()).toBe(before);
    // each refusal audited as what was asked for, naming the certificate that tried
    const events = (await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<Record<string, string>>;
    const tried = events.filter((e) => e.certificate === thumbprint(SERVER_ONLY.cert)).map((e) => `${e.type}:${e.reason}`);
    expect(tried).toEqual(['token.denied:attestation_invalid', 'certificate.denied:attestation_invalid']);
  });

  it("a locked identity's SVID attests nothing; the expired certificates of another PKI neither", async () => {
    const lock = await call(`${url}/v1/identities/${encodeURIComponent(id('agent/b'))}/lock`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(lock.status).toBe(200);
    const before = await issued();
    await refusedNothingIssued(await exchange(svid));
    expect(await issued()).toBe(before);
    expect((await exchange(BUILD)).status).toBe(200);
    (b.clock as ManualClock).advance(3 * 24 * 3_600_000); // past the corp certificate's notAfter (1 day)
    const expired = await exchange(BUILD);
    await refusedNothingIssued(expired);
    expect(expired.body.error_description).toMatch(/expired/);
  });
});
