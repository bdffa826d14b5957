/** GET /healthz: the process is up. GET /readyz: the store answers (else 503). */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { errorBody } from '../errors.js';

export function healthRoutes(app: Hono, b: Broker): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await b.store.ping();
      return c.json({ status: 'ready', store: b.store.kind });
    } catch {
      return c.json({ status: 'unavailable', store: b.store.kind, ...errorBody('temporarily_unavailable', 'credential store unreachable') }, 503, { 'Retry-After': '1' });
    }
  });
}
