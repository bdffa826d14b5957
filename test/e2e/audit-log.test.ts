/**
 * Every grant, denial and revocation is an audit event (log line and stream entry), and no token or
 * secret ever reaches the logs, whatever the request carried.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/audit/logger.js';
import { api, bearer, CLIENT, http, id, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';

describe('audit trail and log hygiene', () => {
  const lines: string[] = [];
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    b = await startTestBroker({ logger: createLogger('trace', sink) });
    a = api(b);
  });
  afterAll(() => b.close());

  it('records grants, denials and revocations with reasons, and never logs a token or secret', async () => {
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    const task = (await a.openTask({ ...WIDE_TASK, on_behalf_of: 'user:bob@example.com' }, orch)).body.task_id;
    const token = (await a.exchange(agent, task)).body.access_token as string;
    expect((await a.exchange(agent, task, { scope: 'write' })).status).toBe(400); // escalation
    expect((await a.exchange(await b.attest('agent-b', { aud: 'nope' }), task)).status).toBe(400); // wrong audience
    expect((await a.introspect(token, { authorization: `Basic ${Buffer.from(`${CLIENT.id}:wrong-secret`).toString('base64')}` })).status).toBe(401);
    expect((await a.revoke(token)).status).toBe(200);
    expect((await a.lock(id('agent/b'))).status).toBe(200);
    expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
    expect((await a.revokePrincipal('user:bob@example.com')).status).toBe(200);
    // the task acted for bob: his revocation ended it already, so its close revokes and records nothing
    const closed = await a.close(task, orch);
    expect(closed.status).toBe(200);
    expect(closed.body.revoked).toBe(0);
    expect(await a.close(task, orch)).toMatchObject({ status: 200, body: closed.body }); // the same answer again
    expect((await a.getTask(task, orch)).body).toMatchObject({ state: 'closed', close_reason: 'principal_revoked', closed_at: closed.body.closed_at });

    const audit = await http(`${b.url}/v1/audit?limit=100`, { headers: bearer(OPERATOR.token) });
    expect(audit.status).toBe(200);
    const types = audit.body.events.map((e: { type: string; reason?: string }) => (e.reason ? `${e.type}:${e.reason}` : e.type));
    expect(types).toEqual([
      'task.opened',
      'token.granted',
      'token.denied:scope_escalation',
      'token.denied:attestation_wrong_audience',
      'auth.denied:client_auth_failed',
      'token.revoked',
      'identity.locked',
      'identity.unlocked',
      'principal.revoked',
    ]);
    // resumable: reading after the 3rd event returns the rest
    const after = await http(`${b.url}/v1/audit?after=${audit.body.events[2].id}&limit=100`, { headers: bearer(OPERATOR.token) });
    expect(after.body.events.map((e: { id: string }) => e.id)).toEqual(audit.body.events.slice(3).map((e: { id: string }) => e.id));

    const log = lines.join('\n');
    expect(log).toContain('token.granted');
    expect(log).toContain('scope_escalation');
    for (const secret of [token, agent, orch, CLIENT.secret, 'wrong-secret', OPERATOR.token]) expect(log).not.toContain(secret);
    for (const part of token.split('.')) expect(log).not.toContain(part);
  });

  it('refusals before the exchange itself, and a close by another orchestrator, are denials with their reason', async () => {
    const orch = await b.attest('orch');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const since = (await http(`${b.url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events.at(-1).id;
    const agent = await b.attest('agent-b');
    expect((await a.exchange(agent, task, { scope: 'read\u0001' })).body.error).toBe('invalid_scope');
    expect((await a.exchange(agent, task, { requested_token_type: 'urn:x' })).status).toBe(400);
    expect((await a.exchange(agent, task, {}, { dpop: 'not.a.proof' })).status).toBe(400);
    expect((await a.close(task, await b.attest('orch-narrow'))).status).toBe(403);
    const events = (await http(`${b.url}/v1/audit?after=${since}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events;
    expect(events.map((e: { type: string; reason: string; task_id?: string }) => `${e.type}:${e.reason}:${e.task_id}`)).toEqual([
      `token.denied:malformed_request:${task}`,
      `token.denied:unsupported_token_type:${task}`,
      `token.denied:${events[2].reason}:${task}`,
      `auth.denied:not_task_owner:${task}`,
    ]);
    expect(events[2].reason).toMatch(/dpop/);
  });

  it('audit is for operators only', async () => {
    expect((await http(`${b.url}/v1/audit`)).status).toBe(401);
    expect((await http(`${b.url}/v1/audit`, { headers: bearer(await b.attest('orch')) })).status).toBe(403);
    expect((await http(`${b.url}/v1/audit?limit=abc`, { headers: bearer(OPERATOR.token) })).status).toBe(400);
    // limit is 1-1000 as said, never clamped; each parameter once
    for (const q of ['limit=0', 'limit=00', 'limit=01', 'limit=1001', 'limit=9999', 'limit=-1', 'limit=1&limit=2', 'log=audit&log=usage', 'after=&after=']) {
      const r = await http(`${b.url}/v1/audit?${q}`, { headers: bearer(OPERATOR.token) });
      expect(r.status, q).toBe(400);
      expect(r.body.error, q).toBe('invalid_request');
    }
    for (const q of ['limit=1', 'limit=1000', 'log=usage&limit=5']) expect((await http(`${b.url}/v1/audit?${q}`, { headers: bearer(OPERATOR.token) })).status, q).toBe(200);
  });
});
