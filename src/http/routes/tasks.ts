/**
 * Tasks: POST /v1/tasks (orchestrator attestation or operator token), GET /v1/tasks (the inventory:
 * ?state=open|closed|all&agent=<SPIFFE ID>&on_behalf_of=<principal>&offset=&limit=), GET /v1/tasks/{id},
 * GET /v1/tasks/{id}/certificates (its unexpired certificates, ?offset=&limit=),
 * POST /v1/tasks/{id}/close (the opener or an operator).
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { rejectRepeated } from '../query.js';
import { parseDuration } from '../../config/duration.js';
import { isAgentPattern, isSpiffeId } from '../../ids/spiffe.js';
import { isAudience, isPrincipal, isScopeToken } from '../../ids/tokens.js';
import { closeTask, listTasks, openTask, showTask, taskCertificates } from '../../tasks/tasks.js';
import { requireOrchestrator } from '../auth.js';
import { readJson } from '../body.js';

const list = (check: (s: unknown) => boolean, what: string) => z.array(z.string().refine(check, { message: `not a valid ${what}` })).max(256);

const openBody = z
  .object({
    on_behalf_of: z.string().refine(isPrincipal, { message: 'not a valid principal (kind:value, printable ASCII, e.g. user:alice@example.com)' }).nullable().optional(),
    agents: z.array(z.string().refine(isAgentPattern, { message: 'not a SPIFFE ID (or prefix ending in /*)' })).min(1, 'at least one agent is required').max(256),
    scopes: list(isScopeToken, 'scope').optional(),
    tools: list(isScopeToken, 'tool name').optional(),
    audiences: list(isAudience, 'audience').optional(),
    ttl: z
      .union([
        z.string().refine((s) => parseDuration(s) !== null, { message: 'expected a duration such as "30m"' }).refine((s) => (parseDuration(s) ?? 0) >= 1000, { message: 'at least 1s' }),
        z.number().int().positive().max(10 * 365 * 86400),
      ])
      .optional(),
    purpose: z.string().max(1024).optional(),
  })
  .strict();

const count = (max: number, dflt: number) =>
  z
    .string()
    .regex(/^[0-9]{1,7}$/, 'a whole number')
    .transform(Number)
    .pipe(z.number().int().min(0).max(max))
    .optional()
    .transform((v) => v ?? dflt);

const page = { offset: count(1_000_000, 0), limit: count(500, 100).pipe(z.number().min(1, 'at least 1')) };
const pageQuery = z.object(page).strict();
const listQuery = z
  .object({
    state: z.enum(['open', 'closed', 'all']).default('open'),
    agent: z.string().refine(isSpiffeId, { message: 'not a SPIFFE ID' }).optional(),
    on_behalf_of: z.string().refine(isPrincipal, { message: 'not a valid principal' }).optional(),
    ...page,
  })
  .strict();

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => {
      const where = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      const msg = i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message;
      return where ? `${where}: ${msg}` : msg;
    })
    .join('; ');
}

export function taskRoutes(app: Hono, b: Broker): void {
  app.post('/v1/tasks', async (c) => {
    const opener = await requireOrchestrator(b, c);
    const parsed = openBody.safeParse(await readJson(c));
    if (!parsed.success) throw new MayflyError('invalid_request', describe(parsed.error), { reason: 'malformed_request' });
    const p = parsed.data;
    // a ceiling left out: an orchestrator's task takes its registration's (as a Vault child token takes
    // its parent's policies), never wider; an operator's task has none of it
    const reg = opener.kind === 'workload' ? opener.identity.registration : undefined;
    const ceiling = (asked: string[] | undefined, own: readonly string[] | undefined) => [...new Set(asked ?? own ?? [])];
    const ttlMs = p.ttl === undefined ? undefined : typeof p.ttl === 'number' ? p.ttl * 1000 : parseDuration(p.ttl)!;
    const view = await openTask(
      b,
      opener,
      {
        agents: [...new Set(p.agents)],
        scopes: ceiling(p.scopes, reg?.scopes),
        tools: ceiling(p.tools, reg?.tools),
        audiences: ceiling(p.audiences, reg?.audiences),
        ...(p.purpose !== undefined ? { purpose: p.purpose } : {}),
        ...(p.on_behalf_of ? { onBehalfOf: p.on_behalf_of } : {}),
      },
      ttlMs,
    );
    return c.json(view, 201, { Location: `/v1/tasks/${view.task_id}`, 'Cache-Control': 'no-store' });
  });

  app.get('/v1/tasks', async (c) => {
    const opener = await requireOrchestrator(b, c);
    rejectRepeated(c, Object.keys(listQuery.shape));
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) throw new MayflyError('invalid_request', describe(q.error), { reason: 'malformed_request' });
    const { state, agent, on_behalf_of, offset, limit } = q.data;
    const out = await listTasks(b, opener, { state, offset, limit, ...(agent ? { agent } : {}), ...(on_behalf_of ? { onBehalfOf: on_behalf_of } : {}) });
    return c.json(out, 200, { 'Cache-Control': 'no-store' });
  });

  app.get('/v1/tasks/:id', async (c) => {
    const opener = await requireOrchestrator(b, c);
    return c.json(await showTask(b, opener, c.req.param('id')), 200, { 'Cache-Control': 'no-store' });
  });

  app.get('/v1/tasks/:id/certificates', async (c) => {
    const opener = await requireOrchestrator(b, c);
    rejectRepeated(c, Object.keys(pageQuery.shape));
    const q = pageQuery.safeParse(c.req.query());
    if (!q.success) throw new MayflyError('invalid_request', describe(q.error), { reason: 'malformed_request' });
    return c.json(await taskCertificates(b, opener, c.req.param('id'), q.data), 200, { 'Cache-Control': 'no-store' });
  });

  app.post('/v1/tasks/:id/close', async (c) => {
    const opener = await requireOrchestrator(b, c);
    return c.json(await closeTask(b, opener, c.req.param('id')), 200, { 'Cache-Control': 'no-store' });
  });
}
