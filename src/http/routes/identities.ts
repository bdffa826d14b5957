/**
 * Operator revocations of whole identities and principals:
 * POST|DELETE /v1/identities/{url-encoded SPIFFE ID}/lock, GET /v1/identities/{id}, GET /v1/identities
 * (the identities locked right now),
 * POST /v1/principals/{url-encoded principal}/revoke, GET /v1/principals (the revoked ones still in force).
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { identityStatus, lockedIdentities, lockIdentity, revokedPrincipals, revokePrincipal, unlockIdentity } from '../../revoke/revocations.js';
import { requireOperator } from '../auth.js';
import { errorBody } from '../errors.js';

function decoded(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new MayflyError('invalid_request', 'path parameter is not valid percent-encoding', { reason: 'malformed_request' });
  }
}

/** hono decodes path params itself; read the raw segment so an encoded "/" stays inside the ID. */
function rawParam(path: string, prefix: string, suffix: string): string {
  return decoded(path.slice(prefix.length, path.length - suffix.length));
}

export function identityRoutes(app: Hono, b: Broker): void {
  app.get('/v1/identities', async (c) => {
    await requireOperator(b, c);
    return c.json(await lockedIdentities(b), 200, { 'Cache-Control': 'no-store' });
  });
  app.post('/v1/identities/:id{.+}/lock', async (c) => {
    const op = await requireOperator(b, c);
    return c.json(await lockIdentity(b, rawParam(c.req.path, '/v1/identities/', '/lock'), `operator:${op}`), 200);
  });
  app.delete('/v1/identities/:id{.+}/lock', async (c) => {
    const op = await requireOperator(b, c);
    return c.json(await unlockIdentity(b, rawParam(c.req.path, '/v1/identities/', '/lock'), `operator:${op}`), 200);
  });
  app.get('/v1/identities/:id{.+}', async (c) => {
    // `…/lock` (its "/" not encoded) is the lock itself, which GET does not read: not an identity whose
    // SPIFFE ID ends in /lock (that one's "/" would be encoded)
    if (c.req.path.endsWith('/lock'))
      return c.json(errorBody('method_not_allowed', `${c.req.path} answers DELETE, OPTIONS, POST, not GET`), 405, { Allow: 'DELETE, OPTIONS, POST' });
    await requireOperator(b, c);
    return c.json(await identityStatus(b, rawParam(c.req.path, '/v1/identities/', '')), 200);
  });
  app.get('/v1/principals', async (c) => {
    await requireOperator(b, c);
    return c.json(await revokedPrincipals(b), 200, { 'Cache-Control': 'no-store' });
  });
  app.post('/v1/principals/:principal{.+}/revoke', async (c) => {
    const op = await requireOperator(b, c);
    return c.json(await revokePrincipal(b, rawParam(c.req.path, '/v1/principals/', '/revoke'), `operator:${op}`), 200);
  });
}
