/**
 * mTLS for tests: small PKIs made with the openssl CLI (a CA, client certificates it signs), the
 * broker's own TLS server certificate, and one HTTPS request per connection presenting a client
 * certificate (node:https; the client verifies the broker's certificate).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';
import { readIncoming, startTestBroker, type Res, type StoreKind, type TestBroker } from './broker.js';

export const CERT_TYPE = 'urn:mayfly:params:oauth:token-type:tls-client-certificate';

export interface Pair {
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export const thumbprint = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');

/** A directory of openssl-made certificates. */
export function pki(prefix = 'mayfly-mtls-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ossl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const file = (name: string, content?: string | Buffer) => {
    const p = join(dir, name);
    if (content !== undefined) writeFileSync(p, content);
    return p;
  };
  const pair = (name: string): Pair => ({ cert: readFileSync(file(`${name}.pem`), 'utf8'), key: readFileSync(file(`${name}.key`), 'utf8') });
  return {
    file,
    /** A self-signed certificate: a CA, or (ca = false) a lone leaf with these extensions. */
    selfSigned(name: string, subject: string, exts: string[] = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']): Pair {
      ossl('req', '-x509', ...EC, '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '2', '-subj', subject, ...exts.flatMap((e) => ['-addext', e]));
      return pair(name);
    },
    /** A certificate signed by `issuer` (openssl x509 -req) with these extension lines (default: a client leaf with `san`). */
    signed(name: string, issuer: string, cn: string, san: string, extLines?: string[]): Pair {
      ossl('req', '-new', ...EC, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
      const lines = extLines ?? ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'];
      file(`${name}.ext`, [`subjectAltName=${san}`, ...lines].join('\n') + '\n');
      ossl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${issuer}.pem`), '-CAkey', file(`${issuer}.key`), '-set_serial', `0x${randomBytes(16).toString('hex')}`,
        '-days', '1', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`));
      return pair(name);
    },
  };
}

/** One HTTPS request on its own connection, trusting `serverCa`, presenting `client` (or no certificate). */
export function call(url: string, serverCa: string, o: { method?: string; headers?: Record<string, string>; body?: string; client?: Pair } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: o.method ?? 'GET', headers: o.headers ?? {}, ca: serverCa, agent: false, ...(o.client ? { cert: o.client.cert, key: o.client.key } : {}) },
      (res) => readIncoming(res).then(resolve, reject),
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * What the mTLS tests share: the broker's TLS certificate (for 127.0.0.1), a corporate CA and its
 * workload certificate `build` (CN build-7, URI SAN spiffe://corp.example/build/7), and `call`
 * trusting the broker's certificate.
 */
export function corpPki(prefix: string) {
  const p = pki(prefix);
  const serverCa = p.selfSigned('server', '/CN=127.0.0.1', ['subjectAltName=IP:127.0.0.1']).cert;
  const corpCa = p.selfSigned('corp-ca', '/CN=corp-ca');
  const build = p.signed('build', 'corp-ca', 'build-7', 'URI:spiffe://corp.example/build/7');
  const callBroker = (url: string, o: Parameters<typeof call>[2] = {}): Promise<Res> => call(url, serverCa, o);
  return { p, serverCa, corpCa, build, call: callBroker };
}

/** An X509-SVID for the task, asked with a JWT attestation over TLS (no client certificate), and its key. */
export async function svidByJwt(callBroker: (url: string, o?: Parameters<typeof call>[2]) => Promise<Res>, url: string, taskId: string, jwt: string): Promise<Pair> {
  const k = newKeyAndCsr();
  const r = await callBroker(`${url}/v1/certificates`, json({ task_id: taskId, csr: k.csrPem }, { authorization: `Bearer ${jwt}` }));
  if (r.status !== 201) throw new Error(`certificate refused: ${r.status} ${r.text}`);
  return { cert: r.body.certificate as string, key: k.keyPem };
}

/**
 * A test broker serving HTTPS with the TLS certificate made by `p.selfSigned('server', ...)`, an
 * x509 attestor `corp` trusting `corp-ca.pem` of the same PKI, and these extra registrations.
 */
export function startTlsBroker(store: StoreKind, p: ReturnType<typeof pki>, registrations: unknown[]): Promise<TestBroker> {
  return startTestBroker({
    store,
    edit: (doc) => {
      Object.assign(doc.listen, { tls: { cert_file: p.file('server.pem'), key_file: p.file('server.key') } });
      (doc.attestors as unknown[]).push({ name: 'corp', type: 'x509', trust_bundle_file: p.file('corp-ca.pem') });
      (doc.registrations as unknown[]).push(...registrations);
    },
  });
}

export const form = (p: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(p).toString(),
});
export const json = (v: unknown, headers: Record<string, string> = {}) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(v) });
