/** POST /oauth/revoke: RFC 7009, for configured clients (HTTP Basic) or operators. Always 200 for a well-formed request. */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { revokeToken } from '../../revoke/revocations.js';
import { requireClientOrOperator } from '../auth.js';
import { param, readForm } from '../body.js';

export function revokeRoute(app: Hono, b: Broker): void {
  app.post('/oauth/revoke', async (c) => {
    const by = requireClientOrOperator(b, c);
    const form = await readForm(c);
    const token = param(form, 'token');
    if (!token) throw new MayflyError('invalid_request', 'missing token', { reason: 'malformed_request' });
    await revokeToken(b, token, by);
    return c.body(null, 200, { 'Cache-Control': 'no-store' });
  });
}
