/**
 * Delegation (RFC 8693 §1.1, §4.1): agent A hands part of its task token to agent B. B's token keeps
 * the subject, names B as the current actor (nested `act` for earlier actors), never exceeds A's token
 * (scopes, tools, audiences, lifetime), and lives only as long as its lineage: revoking A's token,
 * locking A, revoking the principal or closing the task ends it, at introspection and in the SDK mirror.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exportJWK, SignJWT } from 'jose';
import { API, OTHER_API, OPERATOR, TOKEN_EXCHANGE, WIDE_TASK, basic, bearer, http, id, postForm, STORES, useBroker } from '../helpers/broker.js';
import { OTHER_ISS } from '../helpers/broker.js';
import { RevocationMirror } from '../../src/sdk/verifier/mirror.js';
import type { ManualClock } from '../../src/clock.js';

const AT = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const claimsOf = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString());

describe.each(STORES)('delegation (%s)', (store) => {
  const ctx = useBroker(store);

  const task = async (over: Record<string, unknown> = {}) => (await ctx.a.openTask({ ...WIDE_TASK, ...over })).body.task_id as string;
  const tokenOf = async (agent: string, taskId: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) => {
    const r = await ctx.a.exchange(await ctx.b.attest(agent), taskId, extra, headers);
    expect(r.status, r.text).toBe(200);
    return r.body.access_token as string;
  };
  const delegate = async (subject: string, actor: string, extra: Record<string, string> = {}) =>
    postForm(`${ctx.b.url}/oauth/token`, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subject,
      subject_token_type: AT,
      actor_token: await ctx.b.attest(actor),
      actor_token_type: JWT,
      ...extra,
    });
  const active = async (t: string) => (await ctx.a.introspect(t)).body.active as boolean;

  it('gives the actor at most the parent token, for the same subject, with itself as actor and the lineage', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t);
    const p = claimsOf(parent);
    expect(p.scope).toBe('read write');
    const r = await delegate(parent, 'agent-b');
    expect(r.status, r.text).toBe(200);
    const c = claimsOf(r.body.access_token);
    // A's token ∩ B's registration (read, admin; search, deploy; API, OTHER_API) ∩ task
    expect(c).toMatchObject({ sub: id('agent/a'), client_id: id('agent/b'), act: { sub: id('agent/b') }, task_id: t, scope: 'read', tools: ['search'], aud: API });
    expect(c.lineage).toEqual([{ jti: p.jti, client_id: id('agent/a') }]);
    expect(c.exp).toBeLessThanOrEqual(p.exp);
    expect(await active(r.body.access_token)).toBe(true);
    const i = (await ctx.a.introspect(r.body.access_token)).body;
    expect(i).toMatchObject({ active: true, act: { sub: id('agent/b') }, lineage: [{ jti: p.jti }] });
    // the grant is audited with its parent
    const audit = JSON.stringify((await http(`${ctx.b.url}/v1/audit?limit=500`, { headers: bearer(OPERATOR.token) })).body);
    expect(audit).toContain(`"delegated_from":"${p.jti}"`);
  });

  it('may_act (RFC 8693 §4.4): only the named actors receive the token, and its delegations stay within them', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t, { may_act: id('agent/b') });
    expect(claimsOf(parent).may_act).toEqual({ sub: id('agent/b') });
    // agent/other is an agent of the task, but not one the token names
    const other = await postForm(`${ctx.b.url}/oauth/token`, {
      grant_type: TOKEN_EXCHANGE, subject_token: parent, subject_token_type: AT,
      actor_token: await ctx.b.attest('x', { signer: ctx.b.signers.other, iss: OTHER_ISS }), actor_token_type: JWT,
    });
    expect(other.status).toBe(400);
    expect(other.body.error_description).toMatch(/may_act/);
    // the named actor may; it cannot widen may_act, and its token keeps the parent's
    expect((await delegate(parent, 'agent-b', { may_act: id('agent/*') })).status).toBe(400);
    const child = await delegate(parent, 'agent-b');
    expect(child.status, child.text).toBe(200);
    expect(claimsOf(child.body.access_token).may_act).toEqual({ sub: id('agent/b') });
    // so the child cannot go on to agent/a, who is not named either
    const onward = await delegate(child.body.access_token, 'agent-a');
    expect(onward.status).toBe(400);
    expect(onward.body.error_description).toMatch(/may_act/);
    // malformed may_act: refused before anything is issued
    const bad = await ctx.a.exchange(await ctx.b.attest('agent-a'), t, { may_act: 'not-a-spiffe-id' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
  });

  it('may_act narrows by prefix too: agent/* may become agent/b, agent/b/*, never agent/* of another path', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t, { may_act: id('agent/*') });
    expect((await delegate(parent, 'agent-b', { may_act: id('agent/b/*') })).status).toBe(200);
    expect((await delegate(parent, 'agent-b', { may_act: id('agent/b') })).status).toBe(200);
    const elsewhere = await delegate(parent, 'agent-b', { may_act: id('other/*') });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.error_description).toMatch(/may only narrow/);
    expect((await delegate(parent, 'agent-b', { may_act: id('agentx/*') })).status).toBe(400);
  });

  it('refuses to exceed the parent: scope, tool, audience', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t);
    expect((await delegate(parent, 'agent-b', { scope: 'admin' })).body.error).toBe('invalid_scope');
    expect((await delegate(parent, 'agent-b', { tools: 'deploy' })).body.error).toBe('invalid_scope');
    expect((await delegate(parent, 'agent-b', { audience: OTHER_API })).body.error).toBe('invalid_target');
    expect((await delegate(parent, 'agent-b', { scope: 'read' })).status).toBe(200);
  });

  it('ends with its lineage: the parent revoked, or its agent locked', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t);
    const child = (await delegate(parent, 'agent-b')).body.access_token as string;
    expect(await active(child)).toBe(true);
    expect((await ctx.a.revoke(parent)).status).toBe(200);
    expect(await active(parent)).toBe(false);
    expect(await active(child)).toBe(false);

    const parent2 = await tokenOf('agent-a', t);
    const child2 = (await delegate(parent2, 'agent-b')).body.access_token as string;
    expect((await ctx.a.lock(id('agent/a'))).status).toBe(200);
    expect(await active(child2)).toBe(false);
    expect((await ctx.a.lock(id('agent/a'), 'DELETE')).status).toBe(200);
    expect(await active(child2)).toBe(false); // issued before the lock: stays inactive
    (ctx.b.clock as ManualClock).advance(2000); // tokens of agent-a from the lock's very second stay refused

    // the SDK's revocation mirror decides the same, from feed events
    const m = new RevocationMirror();
    const c = claimsOf(child);
    expect(m.verdict(c, Date.now())).toEqual({ active: true });
    m.apply({ id: '1-0', type: 'token.revoked', at: new Date().toISOString(), jti: claimsOf(parent).jti, task_id: t });
    expect(m.verdict(c, Date.now())).toMatchObject({ active: false, reason: 'jti_revoked' });
  });

  it('nests earlier actors and keeps a principal as the subject; revoking the principal ends every link', async () => {
    const t = await task({ on_behalf_of: 'user:dana@example.com' });
    const parent = await tokenOf('agent-a', t);
    const first = (await delegate(parent, 'agent-b')).body.access_token as string;
    const second = await delegate(first, 'agent-a', { scope: 'read' });
    expect(second.status, second.text).toBe(200);
    const c = claimsOf(second.body.access_token);
    expect(c.sub).toBe('user:dana@example.com');
    expect(c.act).toEqual({ sub: id('agent/a'), act: { sub: id('agent/b'), act: { sub: id('agent/a') } } });
    expect(c.lineage.map((l: { client_id: string }) => l.client_id)).toEqual([id('agent/b'), id('agent/a')]);
    expect((await ctx.a.revokePrincipal('user:dana@example.com')).status).toBe(200);
    for (const tok of [parent, first, second.body.access_token]) expect(await active(tok)).toBe(false);
  });

  it('refuses what it must, issuing nothing', async () => {
    const t = await task();
    const parent = await tokenOf('agent-a', t);
    const issued = async () => (await ctx.a.getTask(t)).body.credentials.issued as number;
    const before = await issued();
    const expectRefused = async (r: Awaited<ReturnType<typeof delegate>>, error: string) => {
      expect(r.status, r.text).toBe(400);
      expect(r.body.error).toBe(error);
    };
    // no actor_token; an attestation as subject; a forged parent; a revoked parent
    await expectRefused(await postForm(`${ctx.b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: parent, subject_token_type: AT, task_id: t }), 'invalid_request');
    await expectRefused(await delegate(await ctx.b.attest('agent-a'), 'agent-b'), 'invalid_request');
    const [h, pl] = parent.split('.');
    await expectRefused(await delegate(`${h}.${pl}.${'A'.repeat(86)}`, 'agent-b'), 'invalid_request');
    const other = await task();
    await expectRefused(await delegate(parent, 'agent-b', { task_id: other }), 'invalid_request'); // another task
    await expectRefused(await delegate(parent, 'agent-a'), 'invalid_request'); // to itself
    // an actor_token that is not an attestation, or of the wrong type: the error names actor_token
    const actorIsToken = await postForm(`${ctx.b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: parent, subject_token_type: AT, actor_token: parent, actor_token_type: JWT });
    await expectRefused(actorIsToken, 'invalid_request');
    expect(actorIsToken.body.error_description).toMatch(/^actor_token rejected: a Mayfly access token is not an attestation/);
    const nowS = Math.floor(ctx.b.clock.now() / 1000);
    const expiredActor = await postForm(`${ctx.b.url}/oauth/token`, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: parent,
      subject_token_type: AT,
      actor_token: await ctx.b.attest('agent-b', { exp: nowS - 60, iat: nowS - 120, nbf: nowS - 120 }),
      actor_token_type: JWT,
    });
    await expectRefused(expiredActor, 'invalid_request');
    expect(expiredActor.body.error_description).toMatch(/^actor_token rejected: /);
    // both refusals are in the parent's task story, though neither request named the task
    const story = (await http(`${ctx.b.url}/v1/audit?task_id=${t}&limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; kind?: string; reason?: string }>;
    const refusedActors = story.filter((e) => e.type === 'token.denied' && e.kind === 'delegation');
    expect(refusedActors.map((e) => e.reason)).toEqual(expect.arrayContaining(['attestation_is_access_token', 'attestation_expired']));
    await expectRefused(
      await postForm(`${ctx.b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: parent, subject_token_type: AT, actor_token: await ctx.b.attest('agent-b'), actor_token_type: 'urn:x' }),
      'invalid_request',
    );
    // without a valid actor proof, an active and a garbage subject_token get the same answer (no oracle)
    const unproven = async (subject: string) =>
      (await postForm(`${ctx.b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: AT, actor_token: 'x.y.z', actor_token_type: JWT })).body;
    expect(await unproven(parent)).toEqual(await unproven(`${h}.${pl}.${'A'.repeat(86)}`));
    // an actor that is not in the task
    const narrow = await task({ agents: [id('agent/a')] });
    const np = await tokenOf('agent-a', narrow);
    const outsider = await delegate(np, 'agent-b');
    expect(outsider.status).toBeGreaterThanOrEqual(400);
    expect(outsider.status).toBeLessThan(500);
    // a DPoP-bound parent cannot be handed on: the actor cannot prove its key
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const proof = await new SignJWT({ htm: 'POST', htu: `${ctx.b.url}/oauth/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
      .sign(key.privateKey);
    const bound = await tokenOf('agent-a', t, {}, { dpop: proof });
    await expectRefused(await delegate(bound, 'agent-b'), 'invalid_request');
    // revoked parent
    expect((await ctx.a.revoke(parent, basic())).status).toBe(200);
    await expectRefused(await delegate(parent, 'agent-b'), 'invalid_request');
    expect(await issued()).toBe(before + 1); // only the DPoP-bound parent itself
  });

  it('stops chains at four delegations', async () => {
    const t = await task();
    let tok = await tokenOf('agent-a', t);
    const agents = ['agent-b', 'agent-a', 'agent-b', 'agent-a'];
    for (const ag of agents) {
      const r = await delegate(tok, ag, { scope: 'read' });
      expect(r.status, r.text).toBe(200);
      tok = r.body.access_token;
    }
    expect(claimsOf(tok).lineage).toHaveLength(4);
    const fifth = await delegate(tok, 'agent-b', { scope: 'read' });
    expect(fifth.status).toBe(400);
  });
});
