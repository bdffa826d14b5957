/**
 * The agent/orchestrator client against a real broker: tokens cached per request shape, concurrent
 * requests collapsed into one HTTP call, renewal at the configured fraction of the lifetime, never an
 * expired token, no more tokens once the task is over; withTask closes the task in every outcome.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, createDpopKey, TaskClosedError, type AttestationSource } from '../../src/sdk/client/index.js';
import { createVerifier, mayflyAuth, type MayflyEnv } from '../../src/sdk/verifier/index.js';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { api, API, CLIENT, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { eventually, manual } from './support.js';

describe('client', () => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let calls: string[];
  let down = false;
  const counting = (input: string | URL | Request, init?: RequestInit) => {
    const u = new URL(String(input));
    calls.push(`${init?.method ?? 'GET'} ${u.pathname}`);
    if (down) return Promise.reject(new TypeError('fetch failed'));
    return fetch(input, init);
  };
  const exchanges = () => calls.filter((c) => c === 'POST /oauth/token').length;
  const attest = (sub: string): AttestationSource => ({ kind: 'test', token: () => b.attest(sub) });
  const agent = () => createClient({ brokerUrl: b.url, attestation: attest('agent-b'), fetch: counting, clock: b.clock });
  const orchestrator = () => createClient({ brokerUrl: b.url, attestation: attest('orch'), fetch: counting, clock: b.clock });

  beforeAll(async () => {
    b = await startTestBroker();
    a = api(b);
  });
  afterAll(() => b.close());
  const openTask = async () => (await orchestrator().openTask(WIDE_TASK)).task_id;

  it('caches per (task, scope, audience, tools) and collapses concurrent requests into one call', async () => {
    calls = [];
    const task = await openTask();
    const c = agent();
    calls = [];
    const burst = await Promise.all(Array.from({ length: 20 }, () => c.token({ task, scope: 'read', audience: API })));
    expect(exchanges()).toBe(1);
    expect(new Set(burst.map((t) => t.token)).size).toBe(1);
    expect(burst[0]).toMatchObject({ tokenType: 'Bearer', taskId: task, scope: ['read'] });
    // agent-b: tokens.default_ttl 5m, counted from the token's iat (whole seconds): its own exp, never later
    const exp = (JSON.parse(Buffer.from(burst[0]!.token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    expect(burst[0]!.expiresAt).toBe(exp);
    expect(burst[0]!.expiresAt - burst[0]!.issuedAt).toBeGreaterThan(299_000);
    expect(burst[0]!.expiresAt - burst[0]!.issuedAt).toBeLessThanOrEqual(300_000);

    expect((await c.token({ task, scope: ['read'], audience: [API] })).token).toBe(burst[0]!.token); // same shape, other spelling
    expect(exchanges()).toBe(1);
    const other = await c.token({ task, scope: 'read admin', tools: ['deploy'] });
    expect(other.token).not.toBe(burst[0]!.token);
    expect(exchanges()).toBe(2);
    expect((await a.introspect(other.token)).body).toMatchObject({ active: true, scope: 'read admin', tools: ['deploy'] });
  });

  it('renews once the configured fraction of the lifetime has passed', async () => {
    const task = await openTask();
    const c = createClient({ brokerUrl: b.url, attestation: attest('agent-b'), fetch: counting, clock: b.clock, renewAt: 0.5 });
    calls = [];
    const t1 = await c.token({ task });
    manual(b).advance(149_000); // < 50% of 5 min
    expect((await c.token({ task })).token).toBe(t1.token);
    expect(exchanges()).toBe(1);
    manual(b).advance(2_000); // > 50%
    const [t2, t2b] = await Promise.all([c.token({ task }), c.token({ task })]);
    expect(t2.token).not.toBe(t1.token);
    expect(t2b.token).toBe(t2.token);
    expect(exchanges()).toBe(2);
  });

  it('keeps the current token when renewal fails transiently, but never hands it out past its exp', async () => {
    const task = await openTask();
    const c = agent();
    const t1 = await c.token({ task });
    manual(b).advance(250_000); // 83%: renewal due
    down = true;
    try {
      expect((await c.token({ task })).token).toBe(t1.token);
      manual(b).advance(50_000); // past exp
      await expect(c.token({ task })).rejects.toThrow(/unreachable/);
    } finally {
      down = false;
    }
    const t2 = await c.token({ task });
    expect(t2.token).not.toBe(t1.token);
  });

  it('stops at a closed task: after the broker says so, and at once after its own close', async () => {
    const orch = orchestrator();
    const c = agent();
    const task = (await orch.openTask(WIDE_TASK)).task_id;
    await c.token({ task });
    await a.close(task); // someone else closes it
    manual(b).advance(241_000); // renewal due
    await expect(c.token({ task })).rejects.toBeInstanceOf(TaskClosedError);
    calls = [];
    await expect(c.token({ task })).rejects.toMatchObject({ name: 'TaskClosedError', taskId: task, reason: 'closed' });
    expect(calls).toEqual([]); // refused locally, no HTTP

    const task2 = (await orch.openTask(WIDE_TASK)).task_id;
    await orch.token({ task: task2 }).catch(() => undefined); // (orch is not an agent; irrelevant)
    const mine = createClient({ brokerUrl: b.url, attestation: attest('agent-b'), operatorToken: OPERATOR.token, fetch: counting, clock: b.clock });
    const tok = await mine.token({ task: task2 });
    expect((await mine.closeTask(task2)).revoked).toBeGreaterThanOrEqual(1);
    await expect(mine.token({ task: task2 })).rejects.toBeInstanceOf(TaskClosedError);
    expect((await a.introspect(tok.token)).body).toEqual({ active: false });
    expect(await mine.getTask(task2)).toMatchObject({ state: 'closed', close_reason: 'closed_by_operator' });
  });

  it('refuses an unknown task the same way', async () => {
    await expect(agent().token({ task: 'tsk_doesnotexist0123456789' })).rejects.toMatchObject({ name: 'TaskClosedError', reason: 'unknown' });
  });

  it('withTask closes the task when the work succeeds, throws, or is aborted', async () => {
    const orch = orchestrator();
    const c = agent();
    let seen = '';
    const out = await orch.withTask(WIDE_TASK, async (t) => {
      seen = t.task_id;
      return (await c.token({ task: t.task_id })).token;
    });
    expect((await a.introspect(out)).body).toEqual({ active: false });
    expect((await a.getTask(seen)).body).toMatchObject({ state: 'closed', close_reason: 'closed_by_orchestrator' });

    let thrownIn = '';
    await expect(
      orch.withTask(WIDE_TASK, async (t) => {
        thrownIn = t.task_id;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await a.getTask(thrownIn)).body.state).toBe('closed');

    const sigintListeners = process.listenerCount('SIGINT');
    const ac = new AbortController();
    let abortedIn = '';
    let sawAbort = false;
    const running = orch.withTask(
      WIDE_TASK,
      async (t, signal) => {
        abortedIn = t.task_id;
        signal.addEventListener('abort', () => (sawAbort = true));
        await new Promise(() => undefined); // ignores the signal: withTask must not wait for it
      },
      { signal: ac.signal },
    );
    await eventually(() => abortedIn, (x) => x !== '');
    ac.abort(new Error('user cancelled'));
    await expect(running).rejects.toThrow('user cancelled');
    expect(sawAbort).toBe(true);
    expect((await a.getTask(abortedIn)).body.state).toBe('closed');
    expect(process.listenerCount('SIGINT')).toBe(sigintListeners);

    await expect(orch.withTask(WIDE_TASK, async () => 1, { signal: AbortSignal.abort() })).rejects.toThrow();
  });

  it('withTask closes the task when the process is interrupted (SIGINT, SIGTERM)', async () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/sdk/fixtures/with-task-signal.ts'], {
        env: { ...process.env, MAYFLY_URL: b.url, MAYFLY_OPERATOR_TOKEN: OPERATOR.token },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d));
      child.stderr!.on('data', (d: Buffer) => (err += d));
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
      await eventually(() => out, (o) => o.includes('\n'), 20_000);
      const task = out.trim();
      expect(task, err).toMatch(/^tsk_/);
      expect((await a.getTask(task, OPERATOR.token)).body.state).toBe('open');
      child.kill(sig);
      expect(await exited).toEqual({ code: null, signal: sig }); // the signal still ends the process
      expect((await a.getTask(task, OPERATOR.token)).body).toMatchObject({ state: 'closed', close_reason: 'closed_by_operator' });
    }
  });

  it('with a DPoP key: tokens bound to it, presented with a fresh proof per request that the verifier accepts once', async () => {
    const task = await openTask();
    const key = await createDpopKey();
    const c = createClient({ brokerUrl: b.url, attestation: attest('agent-b'), fetch: counting, clock: b.clock, dpop: key });
    const t = await c.token({ task, scope: 'read', audience: API });
    expect(t.tokenType).toBe('DPoP');
    expect(JSON.parse(Buffer.from(t.token.split('.')[1]!, 'base64url').toString()).cnf).toEqual({ jkt: key.jkt });
    const v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed: 'poll', clock: b.clock });
    await v.start({ timeoutMs: 5000 });
    try {
      const req = { method: 'GET', url: 'https://api.test/repo/files?page=2' };
      const h = await c.authHeaders(t, req);
      expect(h.authorization).toBe(`DPoP ${t.token}`);
      const present = (headers: Record<string, string>) =>
        v.verify(headers.authorization!.slice('DPoP '.length), { audience: API, dpop: { proof: headers.dpop, method: req.method, url: req.url, scheme: 'DPoP' } });
      expect(await present(h)).toMatchObject({ ok: true });
      expect(await present(h)).toMatchObject({ ok: false, code: 'dpop_invalid' }); // the same proof again
      expect(await present(await c.authHeaders(t, req))).toMatchObject({ ok: true });
      // a Bearer client's headers, and a DPoP token without its key
      expect(await agent().authHeaders({ ...t, tokenType: 'Bearer' }, req)).toEqual({ authorization: `Bearer ${t.token}` });
      await expect(agent().authHeaders(t, req)).rejects.toThrow(/DPoP key/);
    } finally {
      v.close();
    }
  });

  it('fetch(): a resource server that requires DPoP nonces (RFC 9449 §9) is answered after one retry, then at once with the nonce it sent', async () => {
    const task = await openTask();
    const key = await createDpopKey();
    const c = createClient({ brokerUrl: b.url, attestation: attest('agent-b'), fetch: counting, clock: b.clock, dpop: key });
    const t = await c.token({ task, scope: 'read', audience: API });
    const v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed: 'poll', clock: b.clock, dpop: { nonce: { secret: 'resource server nonce secret, 32+ bytes' } } });
    await v.start({ timeoutMs: 5000 });
    const seen: number[] = [];
    const app = new Hono<MayflyEnv>();
    app.use('*', async (ctx, next) => {
      await next();
      seen.push(ctx.res.status);
    });
    app.use('/repo/*', mayflyAuth(v, { audience: API, scopes: ['read'] }));
    app.post('/repo/files', async (ctx) => ctx.json({ sub: ctx.get('mayfly').sub, got: await ctx.req.text() }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo/files?x=1`;
    try {
      const first = await c.fetch(t, url, { method: 'POST', body: 'hello' });
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ got: 'hello' });
      expect(first.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(seen).toEqual([401, 200]); // use_dpop_nonce, then the retry with the nonce
      seen.length = 0;
      expect((await c.fetch(t, url, { method: 'POST', body: 'again' })).status).toBe(200);
      expect(seen).toEqual([200]); // the nonce it remembered for this origin
      // a Bearer token is never retried (nothing to prove)
      seen.length = 0;
      expect((await c.fetch({ ...t, tokenType: 'Bearer' }, url, { method: 'POST', body: 'x' })).status).toBe(401);
      expect(seen).toEqual([401]);
    } finally {
      server.close();
      v.close();
    }
  });

  it('fetch(): a resource server that always wants another nonce gets exactly one retry, never a loop', async () => {
    const task = await openTask();
    const c = createClient({ brokerUrl: b.url, attestation: attest('agent-b'), fetch: counting, clock: b.clock, dpop: await createDpopKey() });
    const t = await c.token({ task, scope: 'read', audience: API });
    let hits = 0;
    const app = new Hono();
    app.all('*', (ctx) => {
      hits++;
      return ctx.json({ error: 'use_dpop_nonce' }, 401, { 'WWW-Authenticate': 'DPoP error="use_dpop_nonce"', 'DPoP-Nonce': `n-${hits}-${'x'.repeat(hits * 100)}` });
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    try {
      const res = await c.fetch(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
      expect(res.status).toBe(401);
      expect(hits).toBe(2);
    } finally {
      server.close();
    }
  });

  it('delegated(): the actor gets at most the handed-over token, and loses it when that token is revoked', async () => {
    const task = await openTask();
    const parent = await createClient({ brokerUrl: b.url, attestation: attest('agent-a'), clock: b.clock }).token({ task, scope: 'read write' });
    const d = await agent().delegated({ subjectToken: parent.token, scope: 'read' });
    expect(d).toMatchObject({ taskId: task, tokenType: 'Bearer', scope: ['read'] });
    const c = JSON.parse(Buffer.from(d.token.split('.')[1]!, 'base64url').toString());
    expect(c).toMatchObject({ client_id: 'spiffe://test.local/agent/b', sub: 'spiffe://test.local/agent/a', act: { sub: 'spiffe://test.local/agent/b' } });
    await expect(agent().delegated({ subjectToken: parent.token, scope: 'admin' })).rejects.toThrow(/invalid_scope/);
    await expect(agent().delegated({ subjectToken: 'not.a.token' })).rejects.toThrow(/not a Mayfly access token/);
    expect((await a.introspect(d.token)).body.active).toBe(true);
    await a.revoke(parent.token);
    expect((await a.introspect(d.token)).body.active).toBe(false);
  });
});
