/** GET /v1/audit?after=<id>&limit=<n>: operators read the audit stream, oldest first, resumable. */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { requireOperator } from '../auth.js';
import { isValidStreamId } from '../../store/stream-id.js';

export function auditRoutes(app: Hono, b: Broker): void {
  app.get('/v1/audit', async (c) => {
    requireOperator(b, c);
    const after = c.req.query('after') ?? '';
    const limitRaw = c.req.query('limit') ?? '100';
    if ((after !== '' && !isValidStreamId(after)) || !/^\d{1,4}$/.test(limitRaw))
      throw new MayflyError('invalid_request', 'after must be an event id, limit 1-1000', { reason: 'malformed_request' });
    const limit = Math.min(Math.max(Number(limitRaw), 1), 1000);
    const entries = await b.store.readAudit(after, limit);
    return c.json({
      events: entries.map((e) => ({ id: e.id, at: new Date(Number(e.id.split('-')[0])).toISOString(), ...e.event })),
      next: entries.at(-1)?.id ?? (after || null),
    });
  });
}
