/**
 * GET /v1/audit?after=<id>&limit=<n>[&task_id=<id>]: operators read the audit stream, oldest first,
 * resumable; with task_id, only that task's events (a scan of at most 10,000 events per call: follow
 * `next` until it stops moving for the rest).
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { requireOperator } from '../auth.js';
import { isValidStreamId } from '../../store/stream-id.js';
import type { AuditEntry } from '../../store/store.js';
import { TASK_ID } from '../../tasks/tasks.js';

async function page(b: Broker, after: string, limit: number) {
  const entries = await b.store.readAudit(after, limit);
  return { entries, next: entries.at(-1)?.id };
}

/** SCAN_MAX: how many events one call reads at most looking for a task's; `next` resumes the scan. */
const SCAN_MAX = 10_000;

/** One task's events (from its open to its close, and what resource servers reported), oldest first. */
async function taskPage(b: Broker, after: string, limit: number, taskId: string) {
  const entries: AuditEntry[] = [];
  let cursor = after;
  for (let scanned = 0; scanned < SCAN_MAX && entries.length < limit; ) {
    const batch = await b.store.readAudit(cursor, 1000);
    if (batch.length === 0) break;
    for (const e of batch) {
      cursor = e.id;
      scanned++;
      if (e.event.task_id === taskId && entries.push(e) >= limit) break;
    }
  }
  return { entries, next: cursor || undefined };
}

export function auditRoutes(app: Hono, b: Broker): void {
  app.get('/v1/audit', async (c) => {
    requireOperator(b, c);
    const after = c.req.query('after') ?? '';
    const limitRaw = c.req.query('limit') ?? '100';
    if ((after !== '' && !isValidStreamId(after)) || !/^\d{1,4}$/.test(limitRaw))
      throw new MayflyError('invalid_request', 'after must be an event id, limit 1-1000', { reason: 'malformed_request' });
    const limit = Math.min(Math.max(Number(limitRaw), 1), 1000);
    const taskId = c.req.query('task_id');
    if (taskId !== undefined && !TASK_ID.test(taskId)) throw new MayflyError('invalid_request', 'task_id must be a task id', { reason: 'malformed_request' });
    const { entries, next } = taskId === undefined ? await page(b, after, limit) : await taskPage(b, after, limit, taskId);
    return c.json({
      events: entries.map((e) => ({ id: e.id, at: new Date(Number(e.id.split('-')[0])).toISOString(), ...e.event })),
      next: next ?? (after || null),
    });
  });
}
