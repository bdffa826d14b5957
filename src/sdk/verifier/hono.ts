/**
 * hono middleware: `app.use('/api/*', mayflyAuth(verifier, { audience: 'https://api.example' }))`, then
 * `c.get('mayfly')` holds the verified claims. Refusals are answered here with RFC 6750 challenges.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { MayflyClaims } from './result.js';
import { verifyRequest, type RequestOptions } from './request.js';
import type { Verifier } from './verifier.js';

export type MayflyEnv = { Variables: { mayfly: MayflyClaims } };

export interface MayflyAuthOptions extends Omit<RequestOptions, 'tool' | 'method' | 'url'> {
  /** The tool this route serves, or a function of the request that names it. */
  tool?: string | ((c: Context) => string | undefined);
  /** The request URL as the client addressed it (for DPoP `htu` behind a proxy). Default `c.req.url`. */
  publicUrl?: (c: Context) => string;
}

export function mayflyAuth(verifier: Verifier, opts: MayflyAuthOptions): MiddlewareHandler<MayflyEnv> {
  return async (c, next) => {
    const tool = typeof opts.tool === 'function' ? opts.tool(c) : opts.tool;
    const r = await verifyRequest(verifier, (n) => c.req.header(n), {
      audience: opts.audience,
      ...(opts.scopes ? { scopes: opts.scopes } : {}),
      ...(tool !== undefined ? { tool } : {}),
      ...(opts.realm ? { realm: opts.realm } : {}),
      method: c.req.method,
      url: opts.publicUrl ? opts.publicUrl(c) : c.req.url,
    });
    if (!r.ok) return c.json(r.body, r.status, r.headers);
    c.set('mayfly', r.claims);
    await next();
  };
}
