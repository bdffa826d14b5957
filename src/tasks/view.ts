/** The JSON shape of a task as the API shows it. */
import type { TaskCounts, TaskRecord } from '../store/store.js';
import type { TaskStatus } from '../revoke/task-status.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** A task's status as shown: when it ended, for a task that has (its close, principal revocation or deadline). */
export type ShownStatus = TaskStatus & { endedAt?: number };

/**
 * `credentials.active` counts the unexpired credentials (tokens and certificates) of an open task that
 * were neither revoked one by one nor covered by their identity's lock (issued up to its revoked_before,
 * lifted since or not; the agents locked right now are named in `credentials.locked_agents`). Not counted
 * out: delegated tokens whose ancestor was revoked or whose ancestor's agent was locked; introspection
 * (and a certificate's status) is exact for every credential.
 */
export function taskView(t: TaskRecord, status: ShownStatus, counts?: TaskCounts, lockedAgents: string[] = []) {
  return {
    task_id: t.id,
    state: status.open ? ('open' as const) : ('closed' as const),
    ...(status.open ? {} : { close_reason: status.reason === 'closed' ? (t.closeReason ?? 'closed') : status.reason }),
    on_behalf_of: t.onBehalfOf ?? null,
    agents: t.agents,
    scopes: t.scopes,
    tools: t.tools,
    audiences: t.audiences,
    purpose: t.purpose ?? null,
    opened_by: t.openedBy,
    created_at: iso(t.createdAt),
    expires_at: iso(t.expiresAt),
    ...(status.endedAt !== undefined ? { closed_at: iso(status.endedAt) } : t.closedAt !== undefined ? { closed_at: iso(t.closedAt) } : {}),
    ...(counts
      ? { credentials: { issued: counts.issued, active: status.open ? counts.unexpired : 0, by_agent: counts.byAgent, locked_agents: lockedAgents } }
      : {}),
  };
}
