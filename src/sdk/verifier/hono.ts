/**
 * hono middleware: `app.use('/api/*', mayflyAuth(verifier, { audience: 'https://api.example' }))`, then
 * `c.get('mayfly')` holds the verified claims. Refusals are answered here with RFC 6750 challenges.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { MayflyClaims } from './result.js';
import { verifyRequest, type RequestOptions } from './request.js';
import type { Verifier } from './verifier.js';
import type { X509Certificate } from 'node:crypto';
import type { CertificateInput } from './mtls.js';

export type MayflyEnv = { Variables: { mayfly: MayflyClaims } };

export interface MayflyAuthOptions extends Omit<RequestOptions, 'tool' | 'method' | 'url' | 'clientCertificate'> {
  /** The tool this route serves, or a function of the request that names it. */
  tool?: string | ((c: Context) => string | undefined);
  /** The request URL as the client addressed it (for DPoP `htu` behind a proxy). Default `c.req.url`. */
  publicUrl?: (c: Context) => string;
  /**
   * The client certificate of the request, for certificate-bound tokens (RFC 8705). Default: the peer
   * certificate of the TLS socket under @hono/node-server (https with requestCert).
   */
  clientCertificate?: (c: Context) => CertificateInput | undefined;
}

function socketCertificate(c: Context): CertificateInput | undefined {
  const socket = (c.env as { incoming?: { socket?: { getPeerX509Certificate?: () => X509Certificate | undefined } } } | undefined)?.incoming?.socket;
  return typeof socket?.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
}

export function mayflyAuth(verifier: Verifier, opts: MayflyAuthOptions): MiddlewareHandler<MayflyEnv> {
  return async (c, next) => {
    const tool = typeof opts.tool === 'function' ? opts.tool(c) : opts.tool;
    const cert = (opts.clientCertificate ?? socketCertificate)(c);
    const r = await verifyRequest(verifier, (n) => c.req.header(n), {
      audience: opts.audience,
      ...(opts.scopes ? { scopes: opts.scopes } : {}),
      ...(tool !== undefined ? { tool } : {}),
      ...(opts.realm ? { realm: opts.realm } : {}),
      ...(cert !== undefined ? { clientCertificate: cert } : {}),
      method: c.req.method,
      url: opts.publicUrl ? opts.publicUrl(c) : c.req.url,
    });
    if (!r.ok) return c.json(r.body, r.status, r.headers);
    c.set('mayfly', r.claims);
    await next();
    for (const [k, v] of Object.entries(r.headers)) c.header(k, v); // the next DPoP-Nonce, with resource-server nonces
  };
}
