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
import type { Res } from './broker.js';

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
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers, body, text });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

export const form = (p: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(p).toString(),
});
export const json = (v: unknown, headers: Record<string, string> = {}) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(v) });
