/** POST /oauth/introspect: RFC 7662, for configured clients (HTTP Basic) or operators. */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { introspect } from '../../revoke/introspect.js';
import { requireClientOrOperator } from '../auth.js';
import { param, readForm } from '../body.js';

export function introspectRoute(app: Hono, b: Broker): void {
  app.post('/oauth/introspect', async (c) => {
    requireClientOrOperator(b, c);
    const form = await readForm(c);
    const token = param(form, 'token');
    if (!token) throw new MayflyError('invalid_request', 'missing token', { reason: 'malformed_request' });
    return c.json(await introspect(b, token), 200, { 'Cache-Control': 'no-store' });
  });
}
