/**
 * The verifier against a real broker (real Redis): offline signature and RFC 9068 checks, then the
 * revocation mirror kept by the SSE feed (and the polling feed), one definition of active.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { createVerifier, type Verifier } from '../../src/sdk/verifier/index.js';
import { api, API, CLIENT, id, OTHER_API, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { eventually, manual, mint } from './support.js';

describe.each(['stream', 'poll'] as const)('verifier with the %s feed', (feed) => {
  let b: TestBroker;
  let v: Verifier;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
    a = api(b);
    v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed, pollIntervalMs: 50, clock: b.clock });
    await v.start({ timeoutMs: 5000 });
  });
  afterAll(async () => {
    v.close();
    await b.close();
  });

  it('accepts a fresh token and returns its claims', async () => {
    const { token, taskId } = await mint(b, { params: { scope: 'read', tools: 'search' } });
    const r = await v.verify(token, { audience: API, scopes: ['read'], tool: 'search' });
    expect(r).toMatchObject({ ok: true, claims: { task_id: taskId, client_id: id('agent/b'), scope: 'read', tools: ['search'], iss: b.url } });
    expect(v.status()).toMatchObject({ fresh: true, feed: { mode: feed, synced: true } });
  });

  it('refuses a wrong audience, a missing scope and a tool the token does not allow', async () => {
    const { token } = await mint(b, { params: { scope: 'read', tools: 'search', audience: API } });
    expect(await v.verify(token, { audience: OTHER_API })).toMatchObject({ ok: false, code: 'wrong_audience' });
    expect(await v.verify(token, { audience: API, scopes: ['read', 'admin'] })).toMatchObject({ ok: false, code: 'insufficient_scope' });
    expect(await v.verify(token, { audience: API, tool: 'deploy' })).toMatchObject({ ok: false, code: 'tool_not_allowed' });
    expect(await v.verify(token, { audience: [OTHER_API, API], scopes: ['read'], tool: 'search' })).toMatchObject({ ok: true });
  });

  it('refuses tampered, garbage, foreign-key, wrong-type and wrong-issuer tokens', async () => {
    const { token } = await mint(b);
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'read write admin deploy' })).toString('base64url')}.${s}`;
    expect(await v.verify(forged, { audience: API })).toMatchObject({ ok: false, code: 'invalid_signature' });
    expect(await v.verify('not-a-jwt', { audience: API })).toMatchObject({ ok: false, code: 'malformed' });
    expect(await v.verify('', { audience: API })).toMatchObject({ ok: false, code: 'malformed' });

    const key = b.running.broker.keyring.signing;
    const sign = (c: Record<string, unknown>, header: Record<string, unknown>, k = key.privateKey) =>
      new SignJWT(c).setProtectedHeader({ alg: 'ES256', ...header } as { alg: string }).sign(k);
    expect(await v.verify(await sign(claims, { kid: key.kid, typ: 'JWT' }), { audience: API })).toMatchObject({ ok: false, code: 'wrong_type' });
    expect(await v.verify(await sign({ ...claims, iss: 'https://evil.test' }, { kid: key.kid, typ: 'at+jwt' }), { audience: API })).toMatchObject({
      ok: false,
      code: 'wrong_issuer',
    });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(await v.verify(await sign(claims, { kid: 'no-such-kid', typ: 'at+jwt' }, stranger), { audience: API })).toMatchObject({ ok: false, code: 'unknown_kid' });
    expect(await v.verify(await sign(claims, { kid: key.kid, typ: 'at+jwt' }, stranger), { audience: API })).toMatchObject({ ok: false, code: 'invalid_signature' });
    // a token in Mayfly's format signed by our key but without task_id is not one of ours
    const { task_id: _, ...noTask } = claims;
    expect(await v.verify(await sign(noTask, { kid: key.kid, typ: 'at+jwt' }), { audience: API })).toMatchObject({ ok: false, code: 'malformed' });
    // an issued-in-the-future token
    expect(await v.verify(await sign({ ...claims, iat: claims.iat + 120 }, { kid: key.kid, typ: 'at+jwt' }), { audience: API })).toMatchObject({
      ok: false,
      code: 'not_yet_valid',
    });
  });

  it('sees a closed task, a revoked token, a locked identity and a revoked principal through the feed', async () => {
    const orch = await b.attest('orch');
    const t1 = await mint(b);
    const t2 = await mint(b, { taskId: t1.taskId });
    const t3 = await mint(b);
    const t4 = await mint(b, { task: { on_behalf_of: 'user:erin@example.com' } });
    for (const t of [t1, t2, t3, t4]) expect((await v.verify(t.token, { audience: API })).ok).toBe(true);

    await a.revoke(t3.token);
    const r3 = await eventually(() => v.verify(t3.token, { audience: API }), (r) => !r.ok);
    expect(r3).toMatchObject({ ok: false, code: 'revoked', reason: 'jti_revoked' });

    await a.close(t1.taskId, orch);
    for (const t of [t1, t2]) expect(await eventually(() => v.verify(t.token, { audience: API }), (r) => !r.ok)).toMatchObject({ ok: false, code: 'revoked', reason: 'task_closed' });

    await a.revokePrincipal('user:erin@example.com');
    expect(await eventually(() => v.verify(t4.token, { audience: API }), (r) => !r.ok)).toMatchObject({ ok: false, code: 'revoked', reason: 'task_principal_revoked' });

    const t5 = await mint(b, { agent: 'agent-a' });
    await a.lock(id('agent/a'));
    expect(await eventually(() => v.verify(t5.token, { audience: API }), (r) => !r.ok)).toMatchObject({ ok: false, code: 'revoked', reason: 'identity_locked' });
    await a.lock(id('agent/a'), 'DELETE');
    expect(await eventually(() => v.verify(t5.token, { audience: API }), (r) => !r.ok || true)).toMatchObject({ ok: false, code: 'revoked' });
    manual(b).advance(1500); // a credential from the very second of a revocation counts as revoked
    const t6 = await mint(b, { agent: 'agent-a' });
    expect(await eventually(() => v.verify(t6.token, { audience: API }), (r) => r.ok)).toMatchObject({ ok: true });
    expect(await v.verify(t5.token, { audience: API })).toMatchObject({ ok: false, code: 'revoked', reason: 'identity_revoked' });
  });

  it('refuses an expired token (the verifier and the broker share a clock)', async () => {
    const { token, expiresIn } = await mint(b, { agent: 'agent-b' });
    expect((await v.verify(token, { audience: API })).ok).toBe(true);
    manual(b).advance(expiresIn * 1000);
    expect(await v.verify(token, { audience: API })).toMatchObject({ ok: false, code: 'expired' });
  });
});

describe('verifier without a usable feed', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
  });
  afterAll(() => b.close());

  it('is stale before it has synced, and start() rejects with bad credentials', async () => {
    const v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: 'wrong-secret-0123456789', feed: 'stream', clock: b.clock });
    const { token } = await mint(b);
    expect(await v.verify(token, { audience: API })).toMatchObject({ ok: false, code: 'stale' });
    await expect(v.start({ timeoutMs: 800 })).rejects.toThrow(/did not sync.*invalid_client/);
    expect(v.status()).toMatchObject({ fresh: false, feed: { synced: false, state: 'retrying' } });
    v.close();
  });

  it("feed 'none' checks signatures only, or asks introspection when allowed", async () => {
    const { token, taskId } = await mint(b);
    const offline = createVerifier({ issuer: b.url, feed: 'none', clock: b.clock });
    const online = createVerifier({ issuer: b.url, feed: 'none', introspectionFallback: true, clientId: CLIENT.id, clientSecret: CLIENT.secret, clock: b.clock });
    expect((await offline.verify(token, { audience: API })).ok).toBe(true);
    expect((await online.verify(token, { audience: API })).ok).toBe(true);
    await api(b).close(taskId);
    expect((await offline.verify(token, { audience: API })).ok).toBe(true);
    expect(await online.verify(token, { audience: API })).toMatchObject({ ok: false, code: 'revoked', reason: 'introspection_inactive' });
  });

  it('reports the JWKS being unreachable as stale, never as valid', async () => {
    const { token } = await mint(b);
    const v = createVerifier({ issuer: b.url, brokerUrl: 'http://127.0.0.1:9', feed: 'none', clock: b.clock });
    expect(await v.verify(token, { audience: API })).toMatchObject({ ok: false, code: 'stale' });
  });
});

describe('verifier options', () => {
  it('refuses a feed mode that is misspelt or missing, instead of checking no revocation at all', () => {
    const base = { issuer: 'http://127.0.0.1:9', clientId: 'rs', clientSecret: 'x' };
    for (const feed of ['Stream', 'sse', undefined, '', 'NONE'])
      expect(() => createVerifier({ ...base, feed } as unknown as Parameters<typeof createVerifier>[0]), String(feed)).toThrow(/feed must be one of 'stream', 'poll', 'none'/);
    for (const feed of ['stream', 'poll', 'none'] as const) createVerifier({ ...base, feed }).close();
  });
});
