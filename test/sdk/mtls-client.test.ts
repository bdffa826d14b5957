/**
 * The agent's client over mTLS: `mtlsFetch` presents the agent's certificate, `clientCertificate` makes
 * it the attestation. An agent that got its X509-SVID with its JWT renews it and gets tokens with the
 * certificate alone; the tokens are bound to it, and the verifier accepts them only with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { bearer, id, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { pki } from '../helpers/mtls.js';
import { certificateThumbprint, clientCertificate, createClient, createVerifier, mtlsFetch, staticToken } from '../../src/sdk/index.js';

const p = pki('mayfly-sdk-mtls-');
const SERVER_CA = p.selfSigned('server', '/CN=127.0.0.1', ['subjectAltName=IP:127.0.0.1']).cert;

describe('SDK client over mTLS', () => {
  let b: TestBroker;
  let task: string;
  beforeAll(async () => {
    b = await startTestBroker({
      store: 'memory',
      edit: (doc) => Object.assign(doc.listen, { tls: { cert_file: p.file('server.pem'), key_file: p.file('server.key') } }),
    });
    const orch = createClient({ brokerUrl: b.url, attestation: staticToken(OPERATOR.token), operatorToken: OPERATOR.token, fetch: httpsOnly() });
    task = (await orch.openTask(WIDE_TASK)).task_id;
  });
  afterAll(() => b.close());

  /** A fetch trusting the broker's TLS certificate, presenting no client certificate. */
  function httpsOnly() {
    return mtlsFetch({ ca: SERVER_CA });
  }

  it('gets a certificate with the JWT, then renews it and gets bound tokens with the certificate alone', async () => {
    const byJwt = createClient({ brokerUrl: b.url, attestation: staticToken(await b.attest('agent-b')), fetch: httpsOnly() });
    const first = await byJwt.certificate({ task });
    expect(first.spiffeId).toBe(id('agent/b'));

    const byCert = createClient({ brokerUrl: b.url, attestation: clientCertificate(first.certificatePem), fetch: mtlsFetch({ cert: first.certificatePem, key: first.keyPem, ca: SERVER_CA }) });
    const renewed = await byCert.certificate({ task });
    expect(renewed.serial).not.toBe(first.serial);
    expect(renewed.taskId).toBe(task);

    const t = await byCert.token({ task, scope: 'read' });
    expect(decodeJwt(t.token).cnf).toEqual({ 'x5t#S256': certificateThumbprint(first.certificatePem) });

    const v = createVerifier({ issuer: b.running.broker.config.issuer, brokerUrl: b.url, feed: 'none', clientId: 'rs', clientSecret: 'rs-secret-0123456789', introspectionFallback: true, fetch: httpsOnly() });
    expect((await v.verify(t.token, { audience: 'https://api.test', clientCertificate: first.certificatePem })).ok).toBe(true);
    expect(await v.verify(t.token, { audience: 'https://api.test', clientCertificate: renewed.certificatePem })).toMatchObject({ ok: false, code: 'certificate_mismatch' });
    v.close();
  });

  it('a certificate attests nothing for another task, and the operator sees it refused', async () => {
    const byJwt = createClient({ brokerUrl: b.url, attestation: staticToken(await b.attest('agent-b')), fetch: httpsOnly() });
    const cert = await byJwt.certificate({ task });
    const other = (await createClient({ brokerUrl: b.url, attestation: staticToken(OPERATOR.token), operatorToken: OPERATOR.token, fetch: httpsOnly() }).openTask(WIDE_TASK)).task_id;
    const byCert = createClient({ brokerUrl: b.url, attestation: clientCertificate(cert.certificatePem), fetch: mtlsFetch({ cert: cert.certificatePem, key: cert.keyPem, ca: SERVER_CA }) });
    await expect(byCert.token({ task: other })).rejects.toMatchObject({ status: 400 });
    const audit = await httpsOnly()(`${b.url}/v1/audit?limit=500`, { headers: bearer(OPERATOR.token) });
    const events = ((await audit.json()) as { events: { type: string; reason?: string }[] }).events;
    expect(events.some((e) => e.type === 'token.denied' && e.reason === 'proof_for_other_task')).toBe(true);
  });
});
