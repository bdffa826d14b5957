/**
 * GET /v1/audit?after=<id>&limit=<n>[&log=audit|usage][&task_id=<id>]: operators read the broker's
 * decisions (`audit`, the default) or what resource servers reported (`usage`), oldest first,
 * resumable; with task_id, that task's story from both logs merged (a scan of at most 10,000 events of
 * each per call: follow `next` until it stops moving for the rest).
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { rejectRepeated } from '../query.js';
import { requireOperator } from '../auth.js';
import { compareIds, isValidStreamId, parseId } from '../../store/stream-id.js';
import type { AuditEntry, AuditLog } from '../../store/store.js';
import { TASK_ID } from '../../tasks/tasks.js';

async function page(b: Broker, after: string, limit: number, log: AuditLog) {
  const entries = await b.store.readAudit(after, limit, log);
  return { entries, next: entries.at(-1)?.id };
}

/** SCAN_MAX: how many events of each log one call reads at most looking for a task's; `next` resumes. */
const SCAN_MAX = 10_000;

/** A log's events for `taskId` after `after`, and how far it was read (undefined: to its end). */
async function scan(b: Broker, log: AuditLog, after: string, limit: number, taskId: string) {
  const found: AuditEntry[] = [];
  let cursor = after;
  for (let scanned = 0; scanned < SCAN_MAX; ) {
    const batch = await b.store.readAudit(cursor, 1000, log);
    for (const e of batch) {
      cursor = e.id;
      scanned++;
      if (e.event.task_id === taskId && found.push(e) >= limit) return { found, upTo: cursor };
    }
    if (batch.length < 1000) return { found, upTo: undefined };
  }
  return { found, upTo: cursor };
}

const byId = (a: AuditEntry, b: AuditEntry) => compareIds(parseId(a.id), parseId(b.id));

/**
 * One task's story, oldest first: the broker's decisions (opened, granted, denied, closed) merged with
 * what resource servers reported doing with its credentials. Both logs are read from `after`; the page
 * stops where the less advanced of them stopped, so `next` never skips an event of either.
 */
async function taskPage(b: Broker, after: string, limit: number, taskId: string) {
  const scans = await Promise.all([scan(b, 'audit', after, limit, taskId), scan(b, 'usage', after, limit, taskId)]);
  // how far both logs were read: the lesser of where each stopped (none when both reached their end)
  const horizon = scans
    .map((x) => x.upTo)
    .filter((x): x is string => x !== undefined)
    .sort((x, y) => compareIds(parseId(x), parseId(y)))[0];
  const merged = scans
    .flatMap((x) => x.found)
    .filter((e) => horizon === undefined || compareIds(parseId(e.id), parseId(horizon)) <= 0)
    .sort(byId);
  const entries = merged.slice(0, limit);
  // a full page resumes after its last event; a partial one after what both logs were read up to
  return { entries, next: entries.length === limit ? entries.at(-1)!.id : (horizon ?? entries.at(-1)?.id) };
}

const AUDIT_QUERY = ['after', 'limit', 'log', 'task_id'];

export function auditRoutes(app: Hono, b: Broker): void {
  app.get('/v1/audit', async (c) => {
    await requireOperator(b, c);
    rejectRepeated(c, AUDIT_QUERY);
    const after = c.req.query('after') ?? '';
    const limitRaw = c.req.query('limit') ?? '100';
    const limit = /^[1-9]\d{0,3}$/.test(limitRaw) ? Number(limitRaw) : 0;
    if ((after !== '' && !isValidStreamId(after)) || limit < 1 || limit > 1000)
      throw new MayflyError('invalid_request', 'after must be an event id, limit 1-1000', { reason: 'malformed_request' });
    const taskId = c.req.query('task_id');
    if (taskId !== undefined && !TASK_ID.test(taskId)) throw new MayflyError('invalid_request', 'task_id must be a task id', { reason: 'malformed_request' });
    const log = c.req.query('log') ?? 'audit';
    if (log !== 'audit' && log !== 'usage') throw new MayflyError('invalid_request', 'log must be audit or usage', { reason: 'malformed_request' });
    const { entries, next } = taskId === undefined ? await page(b, after, limit, log) : await taskPage(b, after, limit, taskId);
    return c.json({
      events: entries.map((e) => ({ id: e.id, at: new Date(Number(e.id.split('-')[0])).toISOString(), ...e.event })),
      next: next ?? (after || null),
    });
  });
}
