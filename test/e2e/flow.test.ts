/**
 * The core flow end to end over HTTP, on a real Redis and on the memory store: open a task, exchange an
 * attestation for a task-bound RFC 9068 token, verify it offline against the JWKS and online by
 * introspection, close the task, and see every credential inactive and no new one mintable.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { API, bearer, http, id, OPERATOR, OTHER_API, WIDE_TASK, STORES, useBroker } from '../helpers/broker.js';

describe.each(STORES)('core flow on the %s store', (store) => {
  const ctx = useBroker(store);

  it('opens a task with 201 and the ceilings', async () => {
    const r = await ctx.a.openTask({ ...WIDE_TASK, on_behalf_of: 'user:alice@example.com' });
    expect(r.status).toBe(201);
    expect(r.body.task_id).toMatch(/^tsk_/);
    expect(r.body.state).toBe('open');
    expect(Date.parse(r.body.expires_at)).toBeGreaterThan(ctx.b.clock.now() + 29 * 60_000);
    expect(r.body.scopes).toEqual(WIDE_TASK.scopes);
    expect(r.body.tools).toEqual(WIDE_TASK.tools);
    expect(r.body.audiences).toEqual(WIDE_TASK.audiences);
    expect(r.body.agents).toEqual(WIDE_TASK.agents);
    expect(r.body.on_behalf_of).toBe('user:alice@example.com');
  });

  it("a ceiling left out: an orchestrator's task takes its registration's, an operator's has none", async () => {
    const r = await ctx.a.openTask({ agents: [id('agent/a')], tools: ['search'] });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ scopes: ['read', 'write', 'admin'], tools: ['search'], audiences: [API, OTHER_API] });
    const ex = await ctx.a.exchange(await ctx.b.attest('agent-a'), r.body.task_id);
    expect(ex.status, ex.text).toBe(200);
    expect(ex.body.scope.split(' ').sort()).toEqual(['read', 'write']);
    const narrow = await ctx.a.openTask({ agents: [id('agent/a')] }, await ctx.b.attest('orch-narrow'));
    expect(narrow.body).toMatchObject({ scopes: ['read'], tools: ['search'], audiences: [API] });
    const byOperator = await http(`${ctx.b.url}/v1/tasks`, { method: 'POST', headers: { ...bearer(OPERATOR.token), 'content-type': 'application/json' }, body: JSON.stringify({ agents: [id('agent/a')] }) });
    expect(byOperator.status).toBe(201);
    expect(byOperator.body).toMatchObject({ scopes: [], tools: [], audiences: [] });
  });

  it('exchanges an attestation for an RFC 9068 token bound to the task, verifiable offline', async () => {
    const task = (await ctx.a.openTask({ ...WIDE_TASK, on_behalf_of: 'user:alice@example.com' })).body.task_id;
    const r = await ctx.a.exchange(await ctx.b.attest('agent-a'), task);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body.issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token');
    expect(r.body.token_type).toBe('Bearer');
    // lifetime = min(registration max_ttl 2m, tokens.max_ttl 10m, time left 30m)
    expect(r.body.expires_in).toBe(120);
    // omitted scope = request-free intersection of task and registration
    expect(r.body.scope.split(' ').sort()).toEqual(['read', 'write']);

    const meta = (await http(`${ctx.b.url}/.well-known/oauth-authorization-server`)).body;
    expect(meta.issuer).toBe(ctx.b.url);
    expect(meta.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:token-exchange');
    for (const k of ['token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint']) expect(meta[k]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    const jwks = (await http(meta.jwks_uri)).body;
    const header = decodeProtectedHeader(r.body.access_token);
    expect(header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: jwks.keys[0].kid });
    const { payload } = await jwtVerify(r.body.access_token, createLocalJWKSet(jwks), {
      issuer: ctx.b.url,
      audience: API,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      currentDate: new Date(ctx.b.clock.now()),
    });
    expect(payload.sub).toBe('user:alice@example.com');
    expect(payload.act).toEqual({ sub: id('agent/a') });
    expect(payload.client_id).toBe(id('agent/a'));
    expect(payload.task_id).toBe(task);
    expect(payload.tools).toEqual(['search', 'edit']);
    expect(payload.scope).toBe('read write');
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBe(120);
  });

  it('without on_behalf_of the agent is the subject and there is no act claim', async () => {
    const task = (await ctx.a.openTask(WIDE_TASK)).body.task_id;
    const r = await ctx.a.exchange(await ctx.b.attest('agent-b'), task, { scope: 'read', audience: OTHER_API, tools: 'deploy' });
    expect(r.status).toBe(200);
    const i = (await ctx.a.introspect(r.body.access_token)).body;
    expect(i.active).toBe(true);
    expect(i.sub).toBe(id('agent/b'));
    expect(i.act).toBeUndefined();
    expect(i.aud).toBe(OTHER_API);
    expect(i.tools).toEqual(['deploy']);
    expect(i.scope).toBe('read');
  });

  it('introspection is active until the task closes; close revokes everything at once and is idempotent', async () => {
    const orch = await ctx.b.attest('orch');
    const task = (await ctx.a.openTask(WIDE_TASK, orch)).body.task_id;
    const tokens: string[] = [];
    for (const agent of ['agent-a', 'agent-b', 'agent-a']) tokens.push((await ctx.a.exchange(await ctx.b.attest(agent), task)).body.access_token);
    for (const t of tokens) expect((await ctx.a.introspect(t)).body.active).toBe(true);

    const shown = await ctx.a.getTask(task, orch);
    expect(shown.status).toBe(200);
    expect(shown.body.state).toBe('open');
    expect(shown.body.credentials.issued).toBe(3);
    expect(shown.body.credentials.active).toBe(3);
    expect(shown.body.credentials.by_agent).toEqual({ [id('agent/a')]: 2, [id('agent/b')]: 1 });

    const closed = await ctx.a.close(task, orch);
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ task_id: task, state: 'closed', revoked: 3 });
    for (const t of tokens) expect((await ctx.a.introspect(t)).body).toEqual({ active: false });

    const again = await ctx.a.close(task, orch);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ task_id: task, state: 'closed', revoked: 3 });

    const after = await ctx.a.exchange(await ctx.b.attest('agent-a'), task);
    expect(after.status).toBe(400);
    expect(after.body.error).toBe('invalid_request');
    const shownAfter = (await ctx.a.getTask(task, orch)).body;
    expect(shownAfter.state).toBe('closed');
    expect(shownAfter.credentials.active).toBe(0);
  });

  it('a task past its deadline counts as closed without anyone calling close', async () => {
    const task = (await ctx.a.openTask({ ...WIDE_TASK, ttl: '3m' })).body.task_id;
    const t = (await ctx.a.exchange(await ctx.b.attest('agent-b'), task)).body;
    expect(t.expires_in).toBe(180); // clamped to the time left in the task (agent-b has no max_ttl; tokens.default_ttl is 5m)
    (ctx.b.clock as unknown as { advance(ms: number): void }).advance(3 * 60_000);
    expect((await ctx.a.introspect(t.access_token)).body.active).toBe(false);
    const shown = (await ctx.a.getTask(task)).body;
    expect(shown).toMatchObject({ state: 'closed', close_reason: 'expired', closed_at: shown.expires_at });
    expect((await ctx.a.exchange(await ctx.b.attest('agent-b'), task)).status).toBe(400);
    // closing it now changes nothing: the same answer every time, and it stays expired
    const closed = await ctx.a.close(task);
    expect(closed.body).toMatchObject({ state: 'closed', revoked: 0, closed_at: shown.expires_at });
    expect((await ctx.a.close(task)).body).toEqual(closed.body);
    expect((await ctx.a.getTask(task)).body).toMatchObject({ close_reason: 'expired', closed_at: shown.expires_at });
  });

  it("a principal revoked after a task's deadline leaves it expired, as it ended", async () => {
    const principal = `user:late-${randomUUID()}@example.com`;
    const task = (await ctx.a.openTask({ ...WIDE_TASK, on_behalf_of: principal, ttl: '2m' })).body.task_id;
    (ctx.b.clock as unknown as { advance(ms: number): void }).advance(3 * 60_000);
    const ended = (await ctx.a.getTask(task)).body;
    expect(ended).toMatchObject({ state: 'closed', close_reason: 'expired', closed_at: ended.expires_at });
    expect((await ctx.a.revokePrincipal(principal)).status).toBe(200);
    expect((await ctx.a.getTask(task)).body).toMatchObject({ state: 'closed', close_reason: 'expired', closed_at: ended.expires_at });
    // one opened for it later, and revoked while open: ended by the revocation
    const live = (await ctx.a.openTask({ ...WIDE_TASK, on_behalf_of: principal, ttl: '2m' })).body.task_id;
    (ctx.b.clock as unknown as { advance(ms: number): void }).advance(1000);
    expect((await ctx.a.revokePrincipal(principal)).status).toBe(200);
    expect((await ctx.a.getTask(live)).body).toMatchObject({ state: 'closed', close_reason: 'principal_revoked' });
  });

  it('caps a task ttl at tasks.max_ttl', async () => {
    const r = await ctx.a.openTask({ ...WIDE_TASK, ttl: '48h' });
    expect(r.status).toBe(201);
    expect(Date.parse(r.body.expires_at) - ctx.b.clock.now()).toBeLessThanOrEqual(2 * 3_600_000);
  });

  it('serves health and readiness', async () => {
    expect((await http(`${ctx.b.url}/healthz`)).status).toBe(200);
    const ready = await http(`${ctx.b.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.store).toBe(store === 'cluster' ? 'redis' : store); // a cluster is the Redis store too
    expect(ready.body.ca).toMatchObject({ status: 'valid' });
    expect(Date.parse(ready.body.ca.not_after)).toBeGreaterThan(ctx.b.clock.now() + 86_400_000);
  });
});
