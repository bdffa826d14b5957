/** `mayfly task open|show|close`: the orchestrator's (or an operator's) view of tasks. */
import type { TaskClosed, TaskView } from '../../sdk/client/tasks.js';
import { COMMON_HELP, EXIT, parse, printJson, relative, table, ttlValue, UsageError, orchestratorBearer, type Common, type Io } from './common.js';
import { call } from './http.js';

const HELP = `usage: mayfly task open --agent ID [--agent ID]... [options]
       mayfly task show TASK_ID
       mayfly task close TASK_ID

Open, show and close tasks, as an orchestrator (--token: its attestation JWT) or an operator
(--operator-token). Closing a task makes every credential it produced inactive at once.

task open options:
  --agent ID           SPIFFE ID (or prefix ending in /*) of an agent that may join (repeatable, required)
  --scope S            scope ceiling (repeatable)
  --tool T             tool ceiling (repeatable)
  --audience A         audience ceiling (repeatable)
  --ttl DURATION       lifetime, e.g. 30m, or whole seconds (default: the broker's tasks.default_ttl)
  --purpose TEXT       what the task is for (shown in the audit trail)
  --on-behalf-of P     the principal the task acts for, e.g. user:alice@example.com

output: task open prints the task id (--json: the whole task); show prints the task; close prints how
many credentials were revoked.

${COMMON_HELP}`;

const OPEN = {
  agent: { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  tool: { type: 'string', multiple: true },
  audience: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  purpose: { type: 'string' },
  'on-behalf-of': { type: 'string' },
} as const;

export function describeTask(t: TaskView, now = Date.now()): string {
  const creds = t.credentials;
  const byAgent = creds ? Object.entries(creds.by_agent).map(([a, n]) => `${a}: ${n}`).join(', ') : '';
  return table([
    ['task', t.task_id],
    ['state', t.state === 'closed' ? `closed${t.close_reason ? ` (${t.close_reason.replace(/_/g, ' ')})` : ''}` : 'open'],
    ['opened by', t.opened_by],
    ['on behalf of', t.on_behalf_of],
    ['purpose', t.purpose],
    ['agents', t.agents.join(' ')],
    ['scopes', t.scopes.join(' ') || '(none)'],
    ['tools', t.tools.join(' ') || '(none)'],
    ['audiences', t.audiences.join(' ') || '(none)'],
    ['created', `${t.created_at} (${relative(Date.parse(t.created_at), now)})`],
    ['expires', `${t.expires_at} (${relative(Date.parse(t.expires_at), now)})`],
    ['closed', t.closed_at ? `${t.closed_at} (${relative(Date.parse(t.closed_at), now)})` : undefined],
    ['credentials', creds ? `${creds.issued} issued, ${creds.active} active${byAgent ? ` (${byAgent})` : ''}` : undefined],
  ]);
}

async function open(args: string[], io: Io): Promise<number> {
  const p = parse(args, OPEN, HELP, io);
  if (!p) return EXIT.ok;
  const v = p.values as { agent?: string[]; scope?: string[]; tool?: string[]; audience?: string[]; ttl?: string; purpose?: string; 'on-behalf-of'?: string };
  if (!v.agent?.length) throw new UsageError(`task open: at least one --agent is required`);
  const spec = {
    agents: v.agent,
    // one left out: the orchestrator's registration's (the broker decides), never an empty ceiling
    ...(v.scope ? { scopes: v.scope } : {}),
    ...(v.tool ? { tools: v.tool } : {}),
    ...(v.audience ? { audiences: v.audience } : {}),
    ...(v.ttl ? { ttl: ttlValue(v.ttl) } : {}),
    ...(v.purpose ? { purpose: v.purpose } : {}),
    ...(v['on-behalf-of'] ? { on_behalf_of: v['on-behalf-of'] } : {}),
  };
  const t = await call<TaskView>(p.common, '/v1/tasks', { bearer: orchestratorBearer(p.common), json: spec });
  if (p.common.json) printJson(io, t);
  else io.out(t.task_id);
  return EXIT.ok;
}

async function withId(args: string[], io: Io, fn: (c: Common, id: string) => Promise<number>): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  return fn(p.common, p.positionals[0]!);
}

export const showTask = (c: Common, id: string) =>
  call<TaskView>(c, `/v1/tasks/${encodeURIComponent(id)}`, { bearer: orchestratorBearer(c) }).then((t) => {
    if (c.json) printJson(c.io, t);
    else c.io.out(describeTask(t));
    return EXIT.ok;
  });

export const closeTask = (c: Common, id: string) =>
  call<TaskClosed>(c, `/v1/tasks/${encodeURIComponent(id)}/close`, { method: 'POST', bearer: orchestratorBearer(c) }).then((r) => {
    if (c.json) printJson(c.io, r);
    else c.io.out(`closed ${r.task_id}: ${r.revoked} credential${r.revoked === 1 ? '' : 's'} revoked`);
    return EXIT.ok;
  });

export async function run([sub, ...rest]: string[], io: Io): Promise<number> {
  switch (sub) {
    case 'open':
      return open(rest, io);
    case 'show':
      return withId(rest, io, showTask);
    case 'close':
      return withId(rest, io, closeTask);
    case '--help':
    case '-h':
    case 'help':
      io.out(HELP);
      return EXIT.ok;
    case undefined:
      throw new UsageError(`which one? open, show or close`);
    default:
      throw new UsageError(`unknown subcommand "${sub}"`);
  }
}

