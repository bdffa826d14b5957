/** The hono middleware and verifyRequest: RFC 6750 answers (401/403 with WWW-Authenticate), claims on the context. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { createVerifier, mayflyAuth, verifyRequest, type MayflyEnv, type Verifier } from '../../src/sdk/verifier/index.js';
import { api, API, CLIENT, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { eventually, mint } from './support.js';

describe('mayflyAuth (hono)', () => {
  let b: TestBroker;
  let v: Verifier;
  let app: Hono<MayflyEnv>;
  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
    v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed: 'stream', clock: b.clock });
    await v.start({ timeoutMs: 5000 });
    app = new Hono<MayflyEnv>();
    app.use('/repo/*', mayflyAuth(v, { audience: API, scopes: ['read'] }));
    app.get('/repo/files', (c) => c.json({ who: c.get('mayfly').client_id, task: c.get('mayfly').task_id }));
    app.use('/tools/:tool', mayflyAuth(v, { audience: API, tool: (c) => c.req.param('tool') }));
    app.post('/tools/:tool', (c) => c.json({ ran: c.req.param('tool') }));
  });
  afterAll(async () => {
    v.close();
    await b.close();
  });

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => app.request(path, { method, headers });

  it('lets a good token through and puts its claims on the context', async () => {
    const { token, taskId } = await mint(b, { params: { scope: 'read' } });
    const r = await get('/repo/files', { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ who: 'spiffe://test.local/agent/b', task: taskId });
  });

  it('answers 401 without a token, with a bare Bearer challenge', async () => {
    const r = await get('/repo/files');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="mayfly", scope="read"');
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('answers 401 invalid_token for a bad or revoked token, 400 for a malformed header', async () => {
    const bad = await get('/repo/files', { authorization: 'Bearer abc.def.ghi' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer realm="mayfly", error="invalid_token", error_description="[^"]+"$/);
    expect(bad.headers.get('cache-control')).toBe('no-store');

    const { token, taskId } = await mint(b, { params: { scope: 'read' } });
    await api(b).close(taskId);
    const revoked = await eventually(() => get('/repo/files', { authorization: `Bearer ${token}` }), (r) => r.status !== 200);
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await revoked.json()).error_description).toMatch(/task_closed/);

    const malformed = await get('/repo/files', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('www-authenticate')).toContain('error="invalid_request"');
  });

  it('answers 403 insufficient_scope for a missing scope or a tool the token does not allow', async () => {
    const { token } = await mint(b, { params: { scope: 'admin', tools: 'search' } });
    const r = await get('/repo/files', { authorization: `Bearer ${token}` });
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="mayfly", error="insufficient_scope", error_description="[^"]+", scope="read"$/);

    expect((await get('/tools/search', { authorization: `Bearer ${token}` }, 'POST')).status).toBe(200);
    const tool = await get('/tools/deploy', { authorization: `Bearer ${token}` }, 'POST');
    expect(tool.status).toBe(403);
    expect(tool.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect((await tool.json()).error_description).toMatch(/deploy/);
  });

  it('verifyRequest works on plain header objects (node http style)', async () => {
    const { token } = await mint(b, { params: { scope: 'read' } });
    const ok = await verifyRequest(v, { Authorization: `Bearer ${token}` }, { audience: API, scopes: ['read'] });
    expect(ok.ok).toBe(true);
    const stale = createVerifier({ issuer: b.url, feed: 'poll', clock: b.clock }); // never started: never synced
    const r = await verifyRequest(stale, new Headers({ authorization: `Bearer ${token}` }), { audience: API });
    expect(r).toMatchObject({ ok: false, status: 503, code: 'stale', headers: { 'retry-after': '5' }, body: { error: 'temporarily_unavailable' } });
  });
});
