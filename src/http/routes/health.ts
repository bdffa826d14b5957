/**
 * GET /healthz: the process is up. GET /readyz: the store answers (else 503), and the CA's validity
 * (`ca.status` valid | expiring: within a day | expired: no certificate is issued, tokens still are, so
 * the broker stays ready; monitoring alerts on it).
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { caValidity } from '../../ca/authority.js';
import { errorBody } from '../errors.js';

export function healthRoutes(app: Hono, b: Broker): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const ca = { status: caValidity(b.ca, b.clock.now()), not_after: b.ca.notAfter.toISOString() };
    try {
      await b.store.ping();
      return c.json({ status: 'ready', store: b.store.kind, ca });
    } catch {
      return c.json({ status: 'unavailable', store: b.store.kind, ca, ...errorBody('temporarily_unavailable', 'credential store unreachable') }, 503, { 'Retry-After': '1' });
    }
  });
}
