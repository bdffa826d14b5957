/** Real mutual-TLS handshakes (node:tls) between two SVIDs issued by this module from CSRs. */
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDevCa, loadCa, type CertificateAuthority } from '../../../src/x509/ca.js';
import { issueCertificate } from '../../../src/x509/certificate.js';
import { parseCsr } from '../../../src/x509/csr.js';
import { HOUR, Workdir, buildCsr, keyPair, opensslIntermediate, opensslRoot, type KeySpec } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

const SERVER_ID = 'spiffe://example.org/svc/tools';
const CLIENT_ID = 'spiffe://example.org/agents/planner';

function svid(ca: CertificateAuthority, spiffeId: string, spec: KeySpec) {
  const kp = keyPair(spec);
  const csr = parseCsr(buildCsr(kp.privateKey, kp.publicKey));
  const now = Date.now();
  const c = issueCertificate(ca, {
    ...csr, spiffeId, taskId: 'tsk_tls', notBefore: new Date(now - 60_000), notAfter: new Date(now + HOUR), crlUrl: 'http://x/crl',
  });
  return { key: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: c.pem + ca.chainPem.join('') };
}

interface Outcome {
  serverSawClient?: string;
  clientSawServer?: string;
  error?: string;
}

/** SPIFFE-style peer check: the URI SAN is the identity (host names are meaningless here). */
const expectUri = (id: string) => (_host: string, cert: PeerCertificate) =>
  cert.subjectaltname === `URI:${id}` ? undefined : new Error(`unexpected peer ${cert.subjectaltname}`);

async function handshake(root: string, server: { key: string; cert: string }, client: { key: string; cert: string }): Promise<Outcome> {
  const out: Outcome = {};
  const srv = createServer({ ...server, ca: root, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s: TLSSocket) => {
    out.serverSawClient = s.getPeerCertificate().subjectaltname;
    s.end('hello');
  });
  srv.on('tlsClientError', (e) => (out.error ??= `server: ${e.message}`));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    await new Promise<void>((resolve) => {
      const c = connect({ host: '127.0.0.1', port, ...client, ca: root, checkServerIdentity: expectUri(SERVER_ID) }, () => {
        out.clientSawServer = c.getPeerCertificate().subjectaltname;
      });
      c.on('data', () => c.end());
      c.on('error', (e) => {
        out.error ??= `client: ${e.message}`;
        resolve();
      });
      c.on('close', () => resolve());
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
  return out;
}

describe('mutual TLS with issued SVIDs', () => {
  it('dev CA, P-256 server and P-384 client: the handshake succeeds and each side sees the other URI SAN', async () => {
    const ca = generateDevCa('example.org');
    const o = await handshake(ca.cert.pem, svid(ca, SERVER_ID, 'p256'), svid(ca, CLIENT_ID, 'p384'));
    expect(o.error).toBeUndefined();
    expect(o.serverSawClient).toBe(`URI:${CLIENT_ID}`);
    expect(o.clientSawServer).toBe(`URI:${SERVER_ID}`);
  });

  it('an RSA server and an Ed25519 client under an intermediate CA: the chain is sent by both sides', async () => {
    opensslRoot(w, 'troot', 'p256');
    opensslIntermediate(w, 'tint', 'troot', 'p384');
    const ca = loadCa({ certPem: w.readText('tint.pem'), keyPem: w.readText('tint.key'), chainPem: w.readText('troot.pem') });
    const o = await handshake(ca.rootPem!, svid(ca, SERVER_ID, 'rsa2048'), svid(ca, CLIENT_ID, 'ed25519'));
    expect(o.error).toBeUndefined();
    expect(o.serverSawClient).toBe(`URI:${CLIENT_ID}`);
    expect(o.clientSawServer).toBe(`URI:${SERVER_ID}`);
  });

  it('a client certificate from another CA is refused by the server', async () => {
    const ca = generateDevCa('example.org');
    const rogue = generateDevCa('example.org');
    const o = await handshake(ca.cert.pem, svid(ca, SERVER_ID, 'p256'), svid(rogue, CLIENT_ID, 'p256'));
    expect(o.serverSawClient).toBeUndefined();
    expect(o.error).toBeDefined();
  });
});
