/**
 * The inventory: which identity holds what, for whom, until when. GET /v1/tasks lists tasks (filtered
 * by state, agent, principal; an orchestrator sees its own), each with its credential counts per
 * agent; GET /v1/identities/{id} lists the certificates an identity holds, with task, principal,
 * expiry and status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, bearer, http, id, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker, STORES } from '../helpers/broker.js';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';
import type { ManualClock } from '../../src/clock.js';

describe.each(STORES)('inventory (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let forAlice: string;
  let plain: string;
  let closed: string;
  let serial: string;
  const list = (query = '', token = OPERATOR.token) => http(`${b.url}/v1/tasks${query}`, { headers: bearer(token) });
  const ids = (r: { body: { tasks: { task_id: string }[] } }) => r.body.tasks.map((t) => t.task_id).sort();

  beforeAll(async () => {
    b = await startTestBroker({ store });
    a = api(b);
    forAlice = (await a.openTask({ ...WIDE_TASK, on_behalf_of: 'user:alice@example.com' })).body.task_id;
    plain = (await a.openTask(WIDE_TASK)).body.task_id;
    closed = (await a.openTask(WIDE_TASK, OPERATOR.token)).body.task_id;
    expect((await a.exchange(await b.attest('agent-a'), forAlice, { scope: 'read' })).status).toBe(200);
    const cert = await http(`${b.url}/v1/certificates`, {
      method: 'POST',
      headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: plain, csr: newKeyAndCsr().csrPem }),
    });
    expect(cert.status).toBe(201);
    serial = cert.body.serial;
    expect((await a.close(closed, OPERATOR.token)).status).toBe(200);
  });
  afterAll(() => b.close());

  it('lists open tasks by default, every task with state=all, each with its counts per agent', async () => {
    const open = await list();
    expect(open.status).toBe(200);
    expect(ids(open)).toEqual([forAlice, plain].sort());
    expect(open.body).toMatchObject({ total: 3, offset: 0, limit: 100, more: false });
    const alice = open.body.tasks.find((t: { task_id: string }) => t.task_id === forAlice);
    expect(alice).toMatchObject({ state: 'open', on_behalf_of: 'user:alice@example.com', credentials: { issued: 1, by_agent: { [id('agent/a')]: 1 } } });
    expect(ids(await list('?state=all'))).toEqual([forAlice, plain, closed].sort());
    expect(ids(await list('?state=closed'))).toEqual([closed]);
  });

  it('filters by agent and by principal, and pages', async () => {
    expect(ids(await list(`?agent=${encodeURIComponent(id('agent/a'))}`))).toEqual([forAlice]);
    expect(ids(await list(`?agent=${encodeURIComponent(id('agent/b'))}`))).toEqual([plain]);
    expect(ids(await list(`?on_behalf_of=${encodeURIComponent('user:alice@example.com')}`))).toEqual([forAlice]);
    const page = await list('?state=all&limit=2');
    expect(page.body.tasks).toHaveLength(2);
    expect(page.body.more).toBe(true);
    const rest = await list('?state=all&limit=2&offset=2');
    expect(rest.body.tasks).toHaveLength(1);
    expect(rest.body.more).toBe(false);
  });

  it('an orchestrator sees the tasks it opened, nobody else anything', async () => {
    expect(ids(await list('?state=all', await b.attest('orch')))).toEqual([forAlice, plain].sort());
    const none = await list('?state=all', await b.attest('orch-narrow'));
    expect(ids(none)).toEqual([]);
    // how many tasks the broker holds is not an orchestrator's to know
    expect(none.body.total).toBeNull();
    expect((await list('?state=all', await b.attest('orch'))).body.total).toBeNull();
    expect((await http(`${b.url}/v1/tasks`)).status).toBe(401);
    expect((await list('', await b.attest('agent-a'))).status).toBe(403);
  });

  it('refuses a malformed query with a clear error', async () => {
    for (const q of ['?limit=0', '?limit=501', '?limit=ten', '?offset=-1', '?state=maybe', '?agent=bob', '?on_behalf_of=%20', '?sort=asc', '?state=open&state=all', '?limit=5&limit=6']) {
      const r = await list(q);
      expect(r.status, q).toBe(400);
      expect(r.body.error).toBe('invalid_request');
    }
  });

  it("a task lists its certificates: holder, expiry, status; its opener and operators only", async () => {
    const r = await http(`${b.url}/v1/tasks/${plain}/certificates`, { headers: bearer(await b.attest('orch')) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ task_id: plain, total: 1, more: false });
    expect(r.body.certificates).toEqual([{ serial, spiffe_id: id('agent/b'), not_after: expect.any(String), status: 'good' }]);
    expect((await http(`${b.url}/v1/tasks/${forAlice}/certificates`, { headers: bearer(OPERATOR.token) })).body.total).toBe(0);
    expect((await http(`${b.url}/v1/tasks/${plain}/certificates`, { headers: bearer(await b.attest('orch-narrow')) })).status).toBe(403);
    expect((await http(`${b.url}/v1/tasks/${plain}/certificates?limit=0`, { headers: bearer(OPERATOR.token) })).status).toBe(400);
    expect((await http(`${b.url}/v1/tasks/tsk_AAAAAAAAAAAAAAAAAAAAAA/certificates`, { headers: bearer(OPERATOR.token) })).status).toBe(404);
  });

  it("what an identity's lock covers does not count as active, even once lifted; one revoked before it is not counted twice", async () => {
    const t = (await a.openTask(WIDE_TASK)).body.task_id;
    const tokA1 = (await a.exchange(await b.attest('agent-a'), t, { scope: 'read' })).body.access_token;
    await a.exchange(await b.attest('agent-a'), t, { scope: 'read' });
    await a.exchange(await b.attest('agent-b'), t, { scope: 'read' });
    const creds = async () => (await a.getTask(t, OPERATOR.token)).body.credentials;
    expect((await creds()).active).toBe(3);
    expect((await a.revoke(tokA1)).status).toBe(200);
    expect((await creds()).active).toBe(2);
    await a.lock(id('agent/a'));
    expect(await creds()).toMatchObject({ issued: 3, active: 1, locked_agents: [id('agent/a')] });
    // lifting the lock does not bring back what it covered; a token issued after it counts again
    await a.lock(id('agent/a'), 'DELETE');
    (b.clock as ManualClock).advance(1000);
    expect(await creds()).toMatchObject({ active: 1, locked_agents: [] });
    expect((await a.exchange(await b.attest('agent-a'), t, { scope: 'read' })).status).toBe(200);
    expect((await creds()).active).toBe(2);
  });

  it('GET /v1/principals lists the principals revoked, with their cutoffs (operators only)', async () => {
    const list = async () => (await http(`${b.url}/v1/principals`, { headers: bearer(OPERATOR.token) })).body.revoked as { principal: string }[];
    expect((await list()).map((x) => x.principal)).not.toContain('user:eve@example.com');
    expect((await a.revokePrincipal('user:eve@example.com')).status).toBe(200);
    expect(await list()).toContainEqual({ principal: 'user:eve@example.com', revoked_before: expect.any(String) });
    expect((await http(`${b.url}/v1/principals`, { headers: bearer(await b.attest('orch')) })).status).toBe(403);
  });

  it('GET /v1/identities lists the identities locked right now (operators only)', async () => {
    const list = async () => (await http(`${b.url}/v1/identities`, { headers: bearer(OPERATOR.token) })).body.locked as { spiffe_id: string }[];
    expect(await list()).toEqual([]);
    await a.lock(id('agent/a'));
    expect(await list()).toEqual([{ spiffe_id: id('agent/a'), locked_at: expect.any(String), revoked_before: expect.any(String) }]);
    await a.lock(id('agent/a'), 'DELETE');
    expect(await list()).toEqual([]);
    expect((await http(`${b.url}/v1/identities`, { headers: bearer(await b.attest('orch')) })).status).toBe(403);
  });

  it('an identity shows the certificates it holds: task, principal, expiry, status', async () => {
    const view = async () => (await http(`${b.url}/v1/identities/${encodeURIComponent(id('agent/b'))}`, { headers: bearer(OPERATOR.token) })).body;
    const before = await view();
    expect(before).toMatchObject({ spiffe_id: id('agent/b'), locked: false, certificates_total: 1 });
    expect(before.certificates).toEqual([{ serial, task_id: plain, on_behalf_of: null, not_after: expect.any(String), status: 'good' }]);
    expect((await http(`${b.url}/v1/certificates/${serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) })).status).toBe(200);
    expect((await view()).certificates[0].status).toBe('revoked');
  });

  it('an identity of another trust domain holds nothing here: locking, unlocking or showing it is 400, as is a may_act naming one', async () => {
    const foreign = encodeURIComponent('spiffe://elsewhere.example/agent/a');
    for (const method of ['POST', 'DELETE']) {
      const r = await http(`${b.url}/v1/identities/${foreign}/lock`, { method, headers: bearer(OPERATOR.token) });
      expect(r.status, r.text).toBe(400);
      expect(r.body.error_description).toMatch(/trust domain/);
    }
    expect((await http(`${b.url}/v1/identities/${foreign}`, { headers: bearer(OPERATOR.token) })).status).toBe(400);
    expect((await http(`${b.url}/v1/identities`, { headers: bearer(OPERATOR.token) })).body.locked.map((l: { spiffe_id: string }) => l.spiffe_id)).not.toContain('spiffe://elsewhere.example/agent/a');
    for (const mayAct of ['spiffe://elsewhere.example/agent/b', 'spiffe://elsewhere.example/agents/*']) {
      const r = await a.exchange(await b.attest('agent-a'), plain, { may_act: mayAct });
      expect(r.status, mayAct).toBe(400);
      expect(r.body.error_description).toMatch(/trust domain/);
    }
  });

});
