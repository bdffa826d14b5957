/**
 * POST /v1/audit/usage (a configured client, HTTP Basic, or an operator): resource servers report what
 * they decided about the tokens presented to them, so a task's audit trail runs from the grant to every
 * tool call made with it, allowed or refused (what an operator reads to undo what an agent did).
 * JSON {events: [{jti, task_id, decision: "allowed" | "refused", code?, tool?, audience?, method?,
 * path?, at?}]}, at most 100 per call; each becomes one audit event `token.used` or `token.refused`
 * with `by: client:<id>` (and `decided_at` when the report says when). Reports change no credential's state; a malformed batch is refused whole.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { isAudience, isScopeToken } from '../../ids/tokens.js';
import { TASK_ID } from '../../tasks/tasks.js';
import { requireClientOrOperator } from '../auth.js';
import { readJson } from '../body.js';

const printable = (max: number) => z.string().min(1).max(max).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

const usageEvent = z
  .object({
    jti: printable(128),
    task_id: z.string().regex(TASK_ID, 'not a task id'),
    decision: z.enum(['allowed', 'refused']),
    /** The verifier's code for a refusal (expired, revoked, insufficient_scope...). */
    code: z.string().regex(/^[a-z_]{1,40}$/, 'a lowercase code').optional(),
    tool: z.string().refine(isScopeToken, { message: 'not a tool name' }).optional(),
    audience: z.string().refine(isAudience, { message: 'not an audience' }).optional(),
    method: z.string().regex(/^[A-Z]{1,10}$/, 'an HTTP method').optional(),
    path: printable(512).optional(),
    /** When the resource server decided (RFC 3339, any offset; stored in UTC); default: when the report arrived. */
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

const usageReport = z.object({ events: z.array(usageEvent).min(1).max(100) }).strict();

/** How far ahead of the broker's clock a reported decision's `at` may be. */
const REPORT_CLOCK_SKEW_MS = 5 * 60_000;

export function usageRoutes(app: Hono, b: Broker): void {
  app.post('/v1/audit/usage', async (c) => {
    const by = requireClientOrOperator(b, c);
    const parsed = usageReport.safeParse(await readJson(c));
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new MayflyError('invalid_request', `${i.path.join('.') || 'body'}: ${i.message}`, { reason: 'malformed_request' });
    }
    // a decision is reported after it was made: not later than now, give or take the clocks' skew
    const latest = b.clock.now() + REPORT_CLOCK_SKEW_MS;
    const late = parsed.data.events.findIndex((e) => e.at !== undefined && Date.parse(e.at) > latest);
    if (late !== -1) throw new MayflyError('invalid_request', `events.${late}.at: lies in the future`, { reason: 'malformed_request' });
    // written before the answer: a 202 means the trail holds them (a store outage is a 503, and the
    // reporter counts the batch as dropped)
    await Promise.all(
      parsed.data.events.map(({ decision, at, ...fields }) =>
        b.audit.write(decision === 'allowed' ? 'token.used' : 'token.refused', { ...fields, ...(at ? { decided_at: new Date(at).toISOString() } : {}), by }),
      ),
    );
    return c.json({ recorded: parsed.data.events.length }, 202);
  });
}
