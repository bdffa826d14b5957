/**
 * Task lifecycle: open (policy/task-open), show, close. Closing is one state change in the store, O(1)
 * in the task's credentials; from then on none of them is active (revoke/active.ts) and none can be
 * minted (the store's check-and-record refuses).
 */
import type { Broker } from '../broker.js';
import { certificateStatus } from '../ca/status.js';
import { MayflyError } from '../errors.js';
import { decideTaskOpen } from '../policy/task-open.js';
import type { Opener } from '../policy/task-context.js';
import { principalRevokedAt, type TaskRecord, type TaskSpec } from '../store/store.js';
import { taskStatus } from '../revoke/task-status.js';
import { taskView, type ShownStatus } from './view.js';
import { publishRevocation } from '../feed/publish.js';

export const TASK_ID = /^tsk_[A-Za-z0-9_-]{16,64}$/;

export const openerName = (o: Opener) => (o.kind === 'operator' ? `operator:${o.name}` : o.identity.spiffeId);

export async function openTask(b: Broker, opener: Opener, spec: TaskSpec, requestedTtlMs?: number) {
  const decision = decideTaskOpen({
    opener,
    spec,
    ...(requestedTtlMs !== undefined ? { requestedTtlMs } : {}),
    trustDomain: b.config.trustDomain,
    tasks: b.config.tasks,
  });
  if ('refusal' in decision) {
    const r = decision.refusal;
    b.audit.record('task.denied', { by: openerName(opener), reason: r.reason, on_behalf_of: spec.onBehalfOf });
    throw new MayflyError(r.code, r.description, { reason: r.reason });
  }
  const now = b.clock.now();
  const task: TaskRecord = {
    id: `tsk_${b.ids(16)}`,
    state: 'open',
    openedBy: openerName(opener),
    createdAt: now,
    expiresAt: now + decision.draft.ttlMs,
    ...spec,
  };
  // audited before it exists: a task is never opened without its event (an event whose task could not
  // be written is the side to err on)
  await b.audit.grant('task.opened', {
    task_id: task.id,
    by: task.openedBy,
    on_behalf_of: task.onBehalfOf,
    agents: task.agents,
    scopes: task.scopes,
    tools: task.tools,
    audiences: task.audiences,
    expires_at: new Date(task.expiresAt).toISOString(),
  });
  await b.store.createTask(task, task.expiresAt + Math.max(b.config.tasks.retentionMs, b.config.tokens.maxTtlMs));
  return taskView(task, { open: true });
}

/** Operators see every task; an orchestrator sees (and closes) the tasks it opened. */
const mayManage = (task: TaskRecord, opener: Opener): boolean => opener.kind === 'operator' || task.openedBy === opener.identity.spiffeId;

function authorize(b: Broker, task: TaskRecord, opener: Opener): void {
  if (mayManage(task, opener)) return;
  b.audit.record('auth.denied', { task_id: task.id, caller: openerName(opener), reason: 'not_task_owner' });
  throw new MayflyError('access_denied', 'only the orchestrator that opened this task, or an operator, may do this', { reason: 'not_task_owner' });
}

async function loadTask(b: Broker, id: string): Promise<TaskRecord> {
  const task = TASK_ID.test(id) ? await b.store.getTask(id) : null;
  if (!task) throw new MayflyError('not_found', 'unknown task', { reason: 'task_unknown' });
  return task;
}

/** The task's status, with when it ended if it has: its close, its principal's revocation, or its deadline. */
async function statusOf(b: Broker, task: TaskRecord, now: number): Promise<ShownStatus> {
  const cutoff = task.onBehalfOf ? await b.store.principalRevokedBefore(task.onBehalfOf) : 0;
  const status = taskStatus(task, cutoff, now);
  if (status.open) return status;
  if (status.reason === 'principal_revoked') {
    // the first revocation after it opened; one that came after its deadline found it ended already
    const revokedAt = principalRevokedAt(await b.store.principalCutoffs(task.onBehalfOf!), task.createdAt);
    return revokedAt < task.expiresAt ? { ...status, endedAt: revokedAt } : { open: false, reason: 'expired', endedAt: task.expiresAt };
  }
  const endedAt = status.reason === 'closed' ? task.closedAt : task.expiresAt;
  return endedAt === undefined ? status : { ...status, endedAt };
}

export async function showTask(b: Broker, opener: Opener, id: string) {
  const task = await loadTask(b, id);
  authorize(b, task, opener);
  return fullView(b, task, b.clock.now());
}

/** A task with its state and credential counts, its locked agents named. */
async function fullView(b: Broker, task: TaskRecord, now: number) {
  const [status, counts] = await Promise.all([statusOf(b, task, now), b.store.taskCounts(task.id, now)]);
  const agents = Object.keys(counts.byAgent);
  const states = await Promise.all(agents.map((a) => b.store.identityState(a)));
  const locked = agents.filter((_, i) => states[i]!.locked);
  // tokens an identity's lock made inactive (issued up to its revoked_before, lifted since or not) are not active
  const cutoffs = Object.fromEntries(agents.flatMap((a, i) => (states[i]!.revokedBefore >= task.createdAt ? [[a, states[i]!.revokedBefore]] : [])));
  if (Object.keys(cutoffs).length > 0 && status.open) {
    const inactive = Object.values(await b.store.revokedByIdentity(task.id, cutoffs, now)).reduce((n, x) => n + x, 0);
    return taskView(task, status, { ...counts, unexpired: Math.max(0, counts.unexpired - inactive) }, locked);
  }
  return taskView(task, status, counts, locked);
}

/**
 * The unexpired certificates recorded in a task, soonest to expire first: `limit` from `offset`, each
 * with its holder, expiry and status (good, or revoked with the reason).
 */
export async function taskCertificates(b: Broker, opener: Opener, id: string, page: { offset: number; limit: number }) {
  const task = await loadTask(b, id);
  authorize(b, task, opener);
  const serials = await b.store.taskCertificates(id, b.clock.now());
  const shown = await Promise.all(serials.slice(page.offset, page.offset + page.limit).map(async (serial) => ({ serial, s: await certificateStatus(b, serial) })));
  const certificates = shown.flatMap(({ serial, s }) =>
    s.status === 'unknown'
      ? []
      : [{ serial, spiffe_id: s.record.agent, not_after: new Date(s.record.notAfter).toISOString(), status: s.status, ...(s.status === 'revoked' ? { reason: s.reason } : {}) }],
  );
  return { task_id: id, certificates, total: serials.length, offset: page.offset, limit: page.limit, more: page.offset + page.limit < serials.length };
}

export interface TaskFilter {
  state?: 'open' | 'closed' | 'all';
  /** Only tasks this SPIFFE ID holds credentials in. */
  agent?: string;
  /** Only tasks acting for this principal. */
  onBehalfOf?: string;
  offset: number;
  limit: number;
}

/**
 * The inventory: tasks not yet purged (open, or finished within `tasks.retention`), latest deadline
 * first, as GET /v1/tasks/{id} shows each. An operator sees every task, an orchestrator the ones it
 * opened. Filters apply to the page read from the index, so a page may hold fewer than `limit`.
 * `total` (operators only; null for an orchestrator) is the number of tasks in the inventory.
 */
export async function listTasks(b: Broker, opener: Opener, f: TaskFilter) {
  const now = b.clock.now();
  const { ids, total } = await b.store.listTasks(now, f.offset, f.limit);
  const tasks = (await Promise.all(ids.map((id) => b.store.getTask(id)))).filter(
    (t): t is TaskRecord =>
      t !== null && mayManage(t, opener) && (f.onBehalfOf === undefined || t.onBehalfOf === f.onBehalfOf),
  );
  const views = (await Promise.all(tasks.map((t) => fullView(b, t, now)))).filter(
    (v) => (f.state === undefined || f.state === 'all' || v.state === f.state) && (f.agent === undefined || (v.credentials?.by_agent[f.agent] ?? 0) > 0),
  );
  // `total` is the whole inventory's size: an operator's to know, not an orchestrator's (it would tell
  // each one how busy the broker is); `more` says whether the inventory goes on past this page
  return { tasks: views, total: opener.kind === 'operator' ? total : null, offset: f.offset, limit: f.limit, more: f.offset + ids.length < total };
}

export async function closeTask(b: Broker, opener: Opener, id: string) {
  const task = await loadTask(b, id);
  authorize(b, task, opener);
  const reason = opener.kind === 'operator' ? 'closed_by_operator' : 'closed_by_orchestrator';
  const now = b.clock.now();
  const status = await statusOf(b, task, now);
  if (!status.open && status.reason !== 'closed') {
    // already ended by its principal's revocation or its deadline: nothing left to revoke and nothing
    // to record; the same answer every time, as for a repeated close
    return { task_id: id, state: 'closed' as const, revoked: 0, closed_at: new Date(status.endedAt ?? now).toISOString() };
  }
  if (task.state === 'open') {
    // both before the state change (fail closed), sent together: one round trip
    // (concurrent closes publish it once)
    await Promise.all([publishRevocation(b, 'task.closed', { task_id: id }, { key: `task:${id}`, until: task.expiresAt }), b.store.addCrlScope('task', id, task.expiresAt)]);
  }
  const out = await b.store.closeTask(id, now, reason);
  // one more round trip, O(1): a certificate recorded in a race with the close is in every CRL after the answer
  // (a store failure here is logged, not answered: the close itself stands, and a retry would find it done)
  if (!out?.alreadyClosed) await b.crl.revoked().catch((e: unknown) => b.log.warn({ err: (e as Error).message }, 'CRL version not bumped after a close'));
  if (!out) throw new MayflyError('not_found', 'unknown task', { reason: 'task_unknown' });
  if (!out.alreadyClosed) b.audit.record('task.closed', { task_id: id, by: openerName(opener), reason, revoked: out.revoked });
  return { task_id: id, state: 'closed' as const, revoked: out.revoked, closed_at: new Date(out.record.closedAt ?? b.clock.now()).toISOString() };
}
