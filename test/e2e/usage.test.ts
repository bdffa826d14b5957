/**
 * Resource servers' decisions in the broker's audit: the verifier SDK reports every decision about a
 * token whose signature verified (POST /v1/audit/usage), and GET /v1/audit?task_id= shows a task's
 * whole story: opened, token granted, tool calls allowed and refused, closed, calls after the close.
 */
import { describe, expect, it } from 'vitest';
import { API, basic, bearer, CLIENT, http, OPERATOR, postJson, STORES, useBroker, WIDE_TASK } from '../helpers/broker.js';
import { createVerifier } from '../../src/sdk/verifier/index.js';

describe.each(STORES)('usage reports and the task audit trail (%s)', (store) => {
  const ctx = useBroker(store);

  const trail = async (taskId: string) =>
    ((await http(`${ctx.b.url}/v1/audit?task_id=${taskId}&limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as { type: string; [k: string]: string }[]);

  it("the verifier reports what it decided; the task's trail runs from open to the calls after its close", async () => {
    const { a, b } = ctx;
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const other = (await a.openTask(WIDE_TASK)).body.task_id;
    const token = (await a.exchange(await b.attest('agent-a'), task, { scope: 'read', tools: 'search' })).body.access_token;
    await a.exchange(await b.attest('agent-a'), other, { scope: 'read' });
    const v = createVerifier({ issuer: b.running.broker.config.issuer, brokerUrl: b.url, feed: 'none', introspectionFallback: true, clientId: CLIENT.id, clientSecret: CLIENT.secret, clock: b.clock, reportUsage: { flushMs: 60_000 } });
    const call = (tool: string) => v.verify(token, { audience: API, tool, request: { method: 'POST', url: `https://api.test/tools/${tool}?q=1` } });
    expect((await call('search')).ok).toBe(true);
    expect(await call('edit')).toMatchObject({ ok: false, code: 'tool_not_allowed' });
    expect((await a.close(task)).status).toBe(200);
    expect(await call('search')).toMatchObject({ ok: false, code: 'revoked' });
    expect((await v.verify('not.a.token', { audience: API })).ok).toBe(false); // unverified: not reported
    await v.flushUsage();
    v.close();

    const events = await trail(task);
    // reports land when the verifier sends them (here: one batch after the close); decided_at says when
    expect(events.map((e) => e.type)).toEqual(['task.opened', 'token.granted', 'task.closed', 'token.used', 'token.refused', 'token.refused']);
    expect(events[3]).toMatchObject({ tool: 'search', method: 'POST', path: '/tools/search', audience: API, by: `client:${CLIENT.id}` });
    expect(events[4]).toMatchObject({ tool: 'edit', code: 'tool_not_allowed' });
    expect(events[5]).toMatchObject({ tool: 'search', code: 'revoked' });
    expect(events.slice(3).every((e) => typeof e.decided_at === 'string')).toBe(true);
    expect(events.every((e) => e.task_id === task)).toBe(true);
    expect((await trail(other)).map((e) => e.type)).toEqual(['task.opened', 'token.granted']);
    // the reports live in a log of their own: the broker's decisions are never crowded out by them
    const decisions = (await http(`${b.url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as { type: string }[];
    expect(decisions.some((e) => e.type === 'token.used' || e.type === 'token.refused')).toBe(false);
    const reports = (await http(`${b.url}/v1/audit?log=usage&limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as { type: string; task_id: string }[];
    expect(reports.filter((e) => e.task_id === task).map((e) => e.type)).toEqual(['token.used', 'token.refused', 'token.refused']);
    expect((await http(`${b.url}/v1/audit?log=other`, { headers: bearer(OPERATOR.token) })).status).toBe(400);
  });

  it('refuses malformed reports whole, and callers without client credentials', async () => {
    const { a, b } = ctx;
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const ok = { jti: 'j1', task_id: task, decision: 'allowed' };
    const send = (body: unknown, headers = basic()) => postJson(`${b.url}/v1/audit/usage`, body, headers);
    expect((await send({ events: [ok] })).status).toBe(202);
    for (const bad of [{}, { events: [] }, { events: [{ ...ok, decision: 'maybe' }] }, { events: [ok, { ...ok, task_id: 'nope' }] }, { events: [{ ...ok, extra: 1 }] }, { events: Array(101).fill(ok) }, { events: [{ ...ok, path: 'has space' }] }]) {
      const r = await send(bad);
      expect(r.status, JSON.stringify(bad).slice(0, 80)).toBe(400);
      expect(r.body.error).toBe('invalid_request');
    }
    expect((await send({ events: [ok] }, {} as never)).status).toBe(401);
    expect((await send({ events: [ok] }, bearer(await b.attest('agent-a')))).status).toBe(401);
    // a decision's time in the future is refused; any RFC 3339 offset is taken, and stored in UTC
    const nowMs = b.clock.now();
    const future = await send({ events: [{ ...ok, at: new Date(nowMs + 3_600_000).toISOString() }] });
    expect(future.status).toBe(400);
    expect(future.body.error_description).toMatch(/events\.0\.at: lies in the future/);
    expect((await send({ events: [{ ...ok, at: '9999-12-31T23:59:59Z' }] })).status).toBe(400);
    const at = new Date(nowMs - 60_000);
    const shifted = new Date(at.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    expect((await send({ events: [{ ...ok, jti: 'j2', at: shifted }] })).status).toBe(202);
    const used = (await trail(task)).filter((e) => e.type === 'token.used');
    expect(used).toHaveLength(2);
    expect(used.find((e) => e.jti === 'j2')?.decided_at).toBe(at.toISOString());
    expect((await http(`${b.url}/v1/audit?task_id=bogus`, { headers: bearer(OPERATOR.token) })).status).toBe(400);
  });
});
