/**
 * mTLS end to end: an agent gets an X.509-SVID for its task from the real broker (client.certificate),
 * presents it to a TLS server that requires client certificates, and the server's verifier accepts it
 * until the serial is revoked or the task closes (learned from the revocation feed).
 */
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, fetchTrustBundle, type AttestationSource } from '../../src/sdk/client/index.js';
import { createVerifier, type Verifier } from '../../src/sdk/verifier/index.js';
import { api, basic, CLIENT, http, id, startTestBroker, TD, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { eventually } from './support.js';

describe('mTLS with broker-issued SVIDs', () => {
  let b: TestBroker;
  let v: Verifier;
  let bundle: string;
  let server: Server;
  let port: number;
  const agentB: AttestationSource = { kind: 'test', token: () => b.attest('agent-b') };

  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
    v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed: 'stream', clock: b.clock });
    await v.start({ timeoutMs: 5000 });
    bundle = await fetchTrustBundle(b.url);
    // the server's own certificate is an SVID too (serverAuth), from a long-lived task
    const serverTask = (await api(b).openTask({ ...WIDE_TASK, ttl: '2h' })).body.task_id;
    const own = await createClient({ brokerUrl: b.url, attestation: agentB }).certificate({ task: serverTask });
    server = createServer({ key: own.keyPem, cert: own.certificatePem + own.chainPem, ca: bundle, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      const r = peer ? v.checkCertificate(peer, { trustBundle: bundle, trustDomain: TD }) : { ok: false as const, code: 'no_certificate', message: 'none' };
      res.writeHead(r.ok ? 200 : 403, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.ok ? { spiffe_id: r.spiffeId, task_id: r.taskId, serial: r.serial } : { code: r.code, message: r.message }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    v.close();
    await new Promise<void>((r) => server.close(() => r()));
    await b.close();
  });

  const call = (key: string, cert: string) =>
    new Promise<{ status: number; body: Record<string, string> }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/', key, cert, ca: bundle, checkServerIdentity: () => undefined }, (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(data) }));
      });
      req.on('error', reject);
      req.end();
    });

  it('accepts the SVID of an open task, refuses it once its serial is revoked', async () => {
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const c = await createClient({ brokerUrl: b.url, attestation: agentB }).certificate({ task });
    expect(c).toMatchObject({ spiffeId: id('agent/b'), taskId: task });
    expect(c.serial).toMatch(/^[0-9a-f]+$/);
    expect(c.expiresAt).toBeGreaterThan(b.clock.now());
    expect(await call(c.keyPem, c.certificatePem + c.chainPem)).toEqual({ status: 200, body: { spiffe_id: id('agent/b'), task_id: task, serial: c.serial } });

    expect((await http(`${b.url}/v1/certificates/${c.serial}/revoke`, { method: 'POST', headers: basic() })).status).toBe(200);
    const after = await eventually(() => call(c.keyPem, c.certificatePem + c.chainPem), (r) => r.status !== 200);
    expect(after).toMatchObject({ status: 403, body: { code: 'revoked' } });
  });

  it('refuses the SVID once its task is closed', async () => {
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const c = await createClient({ brokerUrl: b.url, attestation: agentB }).certificate({ task });
    expect((await call(c.keyPem, c.certificatePem)).status).toBe(200);
    await api(b).close(task);
    const after = await eventually(() => call(c.keyPem, c.certificatePem), (r) => r.status !== 200);
    expect(after).toMatchObject({ status: 403, body: { code: 'revoked', message: expect.stringMatching(/task .* is closed/) } });
  });

  it('an agent whose registration does not allow certificates is refused by the broker', async () => {
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const agentA: AttestationSource = { kind: 'test', token: () => b.attest('agent-a') };
    await expect(createClient({ brokerUrl: b.url, attestation: agentA }).certificate({ task })).rejects.toMatchObject({ name: 'BrokerError' });
  });
});
