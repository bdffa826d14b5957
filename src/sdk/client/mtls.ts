/**
 * mTLS for the agent's client (a broker with listen.tls): `mtlsFetch` presents the agent's certificate
 * on every connection (node:https, kept alive), and `clientCertificate` makes that certificate the
 * agent's attestation. Tokens it gets are bound to the certificate (RFC 8705, `cnf.x5t#S256`), so the
 * agent presents the same certificate to resource servers.
 *
 *   const c = createClient({ brokerUrl, fetch: mtlsFetch({ cert, key, ca }), attestation: clientCertificate(cert) });
 */
import { createHash, X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:https';
import type { FetchLike } from '../http.js';
import type { AttestationSource } from './attestation.js';

export interface MtlsOptions {
  /** The client certificate (PEM; a chain may follow the leaf) and its private key (PEM); omit both to present none. */
  cert?: string;
  key?: string;
  /** The broker's TLS trust anchors (PEM); default: Node's. */
  ca?: string;
}

/** RFC 8705 §3.1: base64url SHA-256 of the certificate's DER; what a bound token's `cnf.x5t#S256` holds. */
export function certificateThumbprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

/** The agent's own certificate as its attestation: the exchange names it by thumbprint; the handshake proves it. */
export function clientCertificate(certPem: string): AttestationSource {
  const thumbprint = certificateThumbprint(certPem);
  return { kind: 'client-certificate', token: async () => thumbprint };
}

/** An attestation that is a certificate thumbprint (43 base64url characters): sent in the handshake, not as a Bearer. */
export const isCertificateThumbprint = (t: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(t);

/** How an attestation goes with an API call: as Bearer, except a certificate (it went in the handshake). */
export const attestationHeader = (t: string): Record<string, string> => (isCertificateThumbprint(t) ? {} : { authorization: `Bearer ${t}` });

/** A fetch over one kept-alive https agent that presents the client certificate (and trusts `ca`). */
export function mtlsFetch(o: MtlsOptions): FetchLike {
  if ((o.cert === undefined) !== (o.key === undefined)) throw new TypeError('mtlsFetch: cert and key go together');
  const agent = new Agent({ keepAlive: true, ...(o.cert ? { cert: o.cert, key: o.key } : {}), ...(o.ca ? { ca: o.ca } : {}) });
  return async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('https:')) throw new TypeError(`mtlsFetch needs an https URL: ${url}`);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : init.body instanceof Uint8Array ? Buffer.from(init.body) : undefined;
    if (init.body instanceof URLSearchParams && !headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
    if (init.body !== undefined && init.body !== null && body === undefined) throw new TypeError('mtlsFetch sends string, URLSearchParams or Uint8Array bodies');
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const x of [v ?? []].flat()) h.append(k, x);
          const status = res.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  };
}
