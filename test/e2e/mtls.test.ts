/**
 * mTLS (listen.tls): attesting with a client certificate and RFC 8705 certificate-bound tokens, over
 * real TLS connections (node:https, the broker's server certificate verified by the client).
 *  - a task's own X509-SVID attests its agent for that task only, while the store reports it good;
 *  - an x509 attestor accepts certificates of another PKI (made here with openssl) chaining to its
 *    bundle, matched by registrations on their claims; other CAs, and unmatched certificates, are refused;
 *  - every token issued to a caller presenting a certificate is bound to it (`cnf.x5t#S256`), and the
 *    verifier SDK accepts it only with that certificate.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, basic, bearer, id, JWT_TYPE, OPERATOR, OTHER_API, startTestBroker, TOKEN_EXCHANGE, WIDE_TASK, type Res, type TestBroker, STORES, useBroker } from '../helpers/broker.js';
import { CERT_TYPE, corpPki, form, json, startTlsBroker, svidByJwt, thumbprint, type Pair } from '../helpers/mtls.js';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';
import { createVerifier } from '../../src/sdk/verifier/index.js';
import type { ManualClock } from '../../src/clock.js';

// the broker's own TLS certificate, and two PKIs: one an x509 attestor trusts, one it does not
const { p, build: BUILD, call } = corpPki('mayfly-mtls-');
const file = p.file;
p.selfSigned('rogue-ca', '/CN=rogue-ca');
const ORCH = p.signed('orch', 'corp-ca', 'orch-7', 'DNS:orch.corp.example');
const STRANGER = p.signed('stranger', 'corp-ca', 'nobody', 'URI:spiffe://corp.example/nobody');
const ROGUE = p.signed('rogue', 'rogue-ca', 'build-7', 'URI:spiffe://corp.example/build/7');

describe.each(STORES)('mTLS attestation and certificate-bound tokens (%s)', (store) => {
  let b: TestBroker;
  let url: string;
  let svid: Pair;
  let taskId: string;
  let otherTask: string;

  const open = async (by?: Pair) => {
    const r = by ? await call(`${url}/v1/tasks`, { ...json(WIDE_TASK), client: by }) : await call(`${url}/v1/tasks`, json(WIDE_TASK, bearer(await b.attest('orch'))));
    expect(r.status, r.text).toBe(201);
    return r.body.task_id as string;
  };
  const byCertificate = (client: Pair, task: string, extra: Record<string, string> = {}) =>
    call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: thumbprint(client.cert), subject_token_type: CERT_TYPE, task_id: task, ...extra }), client });
  const introspect = (token: string) => call(`${url}/oauth/introspect`, form({ token }, basic()));

  beforeAll(async () => {
    b = await startTlsBroker(store, p, [
      { spiffe_id: id('agent/build'), attestor: 'corp', match: { spiffe_id: 'spiffe://corp.example/build/7' }, owner: 'ci@example.com', roles: ['agent'], scopes: ['read'], tools: ['search'], audiences: [API], certificates: true },
      { spiffe_id: id('orch/corp'), attestor: 'corp', match: { cn: 'orch-7', dns: 'orch.corp.example' }, owner: 'platform@example.com', roles: ['orchestrator'], scopes: ['read', 'write', 'admin'], tools: ['search', 'edit', 'deploy'], audiences: [API, OTHER_API] },
    ]);
    url = b.url;
    expect(url.startsWith('https://')).toBe(true);
    taskId = await open();
    otherTask = await open();
    // agent b gets its task certificate with its JWT attestation, over TLS without a client certificate
    svid = await svidByJwt(call, url, taskId, await b.attest('agent-b'));
  });
  afterAll(() => b.close());

  it('advertises certificate-bound tokens and the certificate token type (RFC 8705 §3.3)', async () => {
    const m = await call(`${url}/.well-known/oauth-authorization-server`);
    expect(m.body.tls_client_certificate_bound_access_tokens).toBe(true);
    expect(m.body.token_exchange_subject_token_types_supported).toContain(CERT_TYPE);
  });

  it('serves callers without a certificate as before: an unbound Bearer token', async () => {
    const r = await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: taskId }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.token_type).toBe('Bearer');
    expect(decodeJwt(r.body.access_token).cnf).toBeUndefined();
  });

  it("a task's own certificate attests its agent for tokens, bound to that certificate", async () => {
    const r = await byCertificate(svid, taskId, { scope: 'read' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.token_type).toBe('Bearer'); // RFC 8705 keeps the Bearer scheme
    const claims = decodeJwt(r.body.access_token);
    expect(claims.client_id).toBe(id('agent/b'));
    expect(claims.task_id).toBe(taskId);
    expect(claims.cnf).toEqual({ 'x5t#S256': thumbprint(svid.cert) });
    const i = await introspect(r.body.access_token);
    expect(i.body).toMatchObject({ active: true, token_type: 'Bearer', cnf: { 'x5t#S256': thumbprint(svid.cert) } });

    // the resource server's verifier: only with that certificate
    const v = createVerifier({ issuer: b.running.broker.config.issuer, brokerUrl: url, feed: 'none', clientId: 'rs', clientSecret: 'rs-secret-0123456789', introspectionFallback: true,
      fetch: async (u, init) => {
        const res = await call(String(u), { method: init?.method ?? 'GET', headers: Object.fromEntries(new Headers(init?.headers).entries()), ...(init?.body ? { body: String(init.body) } : {}) });
        return new Response(res.text, { status: res.status, headers: res.headers });
      } });
    expect((await v.verify(r.body.access_token, { audience: API, clientCertificate: svid.cert })).ok).toBe(true);
    expect(await v.verify(r.body.access_token, { audience: API })).toMatchObject({ ok: false, code: 'certificate_mismatch' });
    expect(await v.verify(r.body.access_token, { audience: API, clientCertificate: BUILD.cert })).toMatchObject({ ok: false, code: 'certificate_mismatch' });
    v.close();
  });

  it("a task's own certificate renews itself without any other credential, in its task only", async () => {
    const k = newKeyAndCsr();
    const r = await call(`${url}/v1/certificates`, { ...json({ task_id: taskId, csr: k.csrPem }), client: svid });
    expect(r.status, r.text).toBe(201);
    expect(r.body.spiffe_id).toBe(id('agent/b'));
    // the renewal names the certificate that asked for it
    const audit = (await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<Record<string, string>>;
    const granted = audit.find((e) => e.type === 'certificate.granted' && e.serial === r.body.serial);
    expect(granted?.attested_by).toBe(new X509Certificate(svid.cert).serialNumber.toLowerCase());
    const other = await call(`${url}/v1/certificates`, { ...json({ task_id: otherTask, csr: k.csrPem }), client: svid });
    expect(other.status).toBe(400);
    expect(other.body.error_description).toMatch(/attests for that task only/);
    const tok = await byCertificate(svid, otherTask);
    expect(tok.status).toBe(400);
    // nor does it open tasks
    const t = await call(`${url}/v1/tasks`, { ...json(WIDE_TASK), client: svid });
    expect(t.status).toBe(403);
  });

  it('the subject_token must name the certificate presented, and a certificate must be presented', async () => {
    const wrong = await call(`${url}/oauth/token`, {
      ...form({ grant_type: TOKEN_EXCHANGE, subject_token: thumbprint(BUILD.cert), subject_token_type: CERT_TYPE, task_id: taskId }),
      client: svid,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error_description).toMatch(/not the x5t#S256 thumbprint/);
    const none = await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: thumbprint(svid.cert), subject_token_type: CERT_TYPE, task_id: taskId }));
    expect(none.status).toBe(400);
    expect(none.body.error_description).toMatch(/no client certificate/);
    const garbage = await byCertificate(svid, taskId, { subject_token: 'not-a-thumbprint' });
    expect(garbage.status).toBe(400);
  });

  it('a JWT-attested token requested with a client certificate is bound to it', async () => {
    const r = await call(`${url}/oauth/token`, {
      ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: taskId }),
      client: BUILD,
    });
    expect(r.status, r.text).toBe(200);
    expect(decodeJwt(r.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprint(BUILD.cert) });
    expect(decodeJwt(r.body.access_token).client_id).toBe(id('agent/b'));
    // a bound token cannot be handed on (delegation): the actor cannot present the parent's certificate
    const d = await call(`${url}/oauth/token`, form({
      grant_type: TOKEN_EXCHANGE, subject_token: r.body.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      actor_token: await b.attest('agent-a'), actor_token_type: JWT_TYPE, scope: 'read',
    }));
    expect(d.status).toBe(400);
  });

  it('an x509 attestor: certificates of its PKI attest by their claims; other CAs and unmatched ones are refused', async () => {
    const r = await byCertificate(BUILD, taskId, { scope: 'read' });
    expect(r.status, r.text).toBe(200);
    expect(decodeJwt(r.body.access_token)).toMatchObject({ client_id: id('agent/build'), cnf: { 'x5t#S256': thumbprint(BUILD.cert) } });
    const rogue = await byCertificate(ROGUE, taskId);
    expect(rogue.status).toBe(400);
    expect(rogue.body.error_description).toMatch(/does not chain to a trusted CA/);
    const stranger = await byCertificate(STRANGER, taskId);
    expect(stranger.status).toBe(400);
    expect(stranger.body.error_description).toMatch(/no registration matches/);
    // an orchestrator of that PKI opens a task with its certificate alone
    const t = await open(ORCH);
    expect(t).toMatch(/^tsk_/);
    const audit = await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) });
    const granted = (audit.body.events as { type: string; cert_x5t?: string; agent?: string }[]).filter((e) => e.type === 'token.granted' && e.cert_x5t === thumbprint(BUILD.cert));
    expect(granted.length).toBeGreaterThan(0);
  });

  it('revoking a certificate by serial revokes the tokens it attested, once, and it attests no more', async () => {
    const t = await open();
    const own = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const serial = new X509Certificate(own.cert).serialNumber.toLowerCase();
    // two it attested, and one a JWT attested over mTLS with it presented: bound to it
    const boundByJwt = await call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: t }), client: own });
    expect(decodeJwt(boundByJwt.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprint(own.cert) });
    const attested = [(await byCertificate(own, t)).body.access_token as string, (await byCertificate(own, t, { scope: 'read' })).body.access_token as string, boundByJwt.body.access_token as string];
    const byJwt = await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: t }));
    expect(byJwt.status, byJwt.text).toBe(200);
    for (const tok of attested) expect((await introspect(tok)).body.active).toBe(true);

    const revoke = () => call(`${url}/v1/certificates/${serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    const r = await revoke();
    expect(r.status, r.text).toBe(200);
    expect(r.body.status).toBe('revoked');
    for (const tok of attested) expect((await introspect(tok)).body).toEqual({ active: false });
    // the agent's token attested otherwise, and the task, are untouched
    expect((await introspect(byJwt.body.access_token)).body.active).toBe(true);
    const after = await byCertificate(own, t);
    expect(after.status).toBe(400);
    expect(after.body.error_description).toMatch(/revoked/);
    // nor is a token bound to it granted any more, whatever attests it
    const boundAfter = await call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: t }), client: own });
    expect(boundAfter.status, boundAfter.text).toBe(400);
    expect(boundAfter.body.error_description).toMatch(/certificate presented was revoked/);

    expect((await revoke()).status).toBe(200);
    const audit = await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) });
    const events = audit.body.events as Array<Record<string, string>>;
    const jtis = attested.map((tok) => decodeJwt(tok).jti);
    const revokedTokens = events.filter((e) => e.type === 'token.revoked' && e.task_id === t);
    expect(revokedTokens.map((e) => e.jti).sort()).toEqual([...jtis].sort());
    expect(revokedTokens.map(({ reason, serial: s, by }) => ({ reason, serial: s, by }))).toEqual(jtis.map(() => ({ reason: 'certificate_revoked', serial, by: `operator:${OPERATOR.name}` })));
    // and on the feed, once each, with the same cause
    const feed = (await call(`${url}/v1/revocations`, { headers: basic() })).body.events as Array<Record<string, string>>;
    const told = feed.filter((e) => e.type === 'token.revoked' && e.task_id === t);
    expect(told.map(({ jti, reason, serial: s }) => ({ jti, reason, serial: s })).sort((x, y) => (x.jti! < y.jti! ? -1 : 1))).toEqual(
      [...jtis].sort().map((jti) => ({ jti, reason: 'certificate_revoked', serial })),
    );
  });

  it("a token is bound to one of this broker's certificates only in that certificate's task; delegated over mTLS, it is revoked with it", async () => {
    const t = await open();
    const own = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const serial = new X509Certificate(own.cert).serialNumber.toLowerCase();
    // a JWT over mTLS presenting the certificate of task t, for another task: refused (it would outlive its binding)
    const other = await call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: otherTask }), client: own });
    expect(other.status, other.text).toBe(400);
    expect(other.body).toMatchObject({ error: 'invalid_request' });
    expect(other.body.error_description).toMatch(/another task/);
    // a delegation into task t, the actor attested by its JWT over mTLS with that certificate: bound to it, revoked with it
    const parent = await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-a'), subject_token_type: JWT_TYPE, task_id: t, scope: 'read' }));
    expect(parent.status, parent.text).toBe(200);
    const delegated = await call(`${url}/oauth/token`, {
      ...form({ grant_type: TOKEN_EXCHANGE, subject_token: parent.body.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', actor_token: await b.attest('agent-b'), actor_token_type: JWT_TYPE }),
      client: own,
    });
    expect(delegated.status, delegated.text).toBe(200);
    expect(decodeJwt(delegated.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprint(own.cert) });
    // another agent presenting it (its key in other hands) gets no token bound to it: a lock of agent-b would not reach that token
    const foreign = await call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-a'), subject_token_type: JWT_TYPE, task_id: t }), client: own });
    expect(foreign.status, foreign.text).toBe(400);
    expect(foreign.body.error_description).toMatch(/a token is bound only to its own agent's certificate/);
    // and delegating a token of another task over it is refused the same way
    const elsewhere = await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-a'), subject_token_type: JWT_TYPE, task_id: otherTask, scope: 'read' }));
    const crossed = await call(`${url}/oauth/token`, {
      ...form({ grant_type: TOKEN_EXCHANGE, subject_token: elsewhere.body.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', actor_token: await b.attest('agent-b'), actor_token_type: JWT_TYPE }),
      client: own,
    });
    expect(crossed.status, crossed.text).toBe(400);
    expect(crossed.body.error_description).toMatch(/another task/);
    expect((await introspect(delegated.body.access_token)).body.active).toBe(true);
    expect((await call(`${url}/v1/certificates/${serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) })).status).toBe(200);
    expect((await introspect(delegated.body.access_token)).body).toEqual({ active: false });
    expect((await introspect(parent.body.access_token)).body.active).toBe(true);
    const audit = await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) });
    const denied = (audit.body.events as Array<Record<string, string>>).filter((e) => e.type === 'token.denied' && e.reason === 'certificate_other_task');
    expect(denied.map((e) => e.task_id).sort()).toEqual([otherTask, otherTask]);
  });

  it('revoking a certificate revokes the renewals it asked for over mTLS, down the chain, with their tokens', async () => {
    const t = await open();
    const first = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const renew = async (by: Pair): Promise<Pair & { serial: string }> => {
      const k = newKeyAndCsr();
      const r = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: k.csrPem }), client: by });
      expect(r.status, r.text).toBe(201);
      return { cert: r.body.certificate as string, key: k.keyPem, serial: r.body.serial as string };
    };
    const second = await renew(first);
    const third = await renew(second);
    const byThird = (await byCertificate(third, t)).body.access_token as string;
    // another certificate of the agent, by JWT: not a renewal of the first
    const sibling = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
    const status = async (serial: string) => (await call(`${url}/v1/certificates/${serial}`)).body.status as string;

    const r = await call(`${url}/v1/certificates/${serialOf(first.cert)}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(r.status, r.text).toBe(200);
    expect(await status(second.serial)).toBe('revoked');
    expect(await status(third.serial)).toBe('revoked');
    expect(await status(serialOf(sibling.cert))).toBe('good');
    expect((await introspect(byThird)).body).toEqual({ active: false });
    // a renewal asked for with a revoked certificate is refused, and nothing stays good
    const k = newKeyAndCsr();
    const late = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: k.csrPem }), client: third });
    expect(late.status).toBe(401);
    const audit = (await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<Record<string, string>>;
    const cascaded = audit.filter((e) => e.type === 'certificate.revoked' && e.task_id === t && e.reason === 'attesting_certificate_revoked');
    expect(cascaded.map((e) => [e.serial, e.attested_by])).toEqual([
      [second.serial, serialOf(first.cert)],
      [third.serial, second.serial],
    ]);
    // the JSON status says the same of each: revoked with the certificate that asked for it
    for (const [serial, parent] of [[second.serial, serialOf(first.cert)], [third.serial, second.serial]])
      expect((await call(`${url}/v1/certificates/${serial}`)).body, serial).toMatchObject({ status: 'revoked', reason: 'attesting_certificate_revoked', attested_by: parent });
    expect((await call(`${url}/v1/certificates/${serialOf(first.cert)}`)).body).toMatchObject({ status: 'revoked', reason: 'certificate_revoked' });
    expect((await call(`${url}/v1/certificates/${serialOf(first.cert)}`)).body.attested_by).toBeUndefined();
  });

  it('a renewal revoked on its own, its parent still good: certificate_revoked, no attested_by', async () => {
    const t = await open();
    const first = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const k = newKeyAndCsr();
    const renewed = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: k.csrPem }), client: first });
    expect(renewed.status, renewed.text).toBe(201);
    expect((await call(`${url}/v1/certificates/${renewed.body.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) })).status).toBe(200);
    const st = (await call(`${url}/v1/certificates/${renewed.body.serial}`)).body;
    expect(st).toMatchObject({ status: 'revoked', reason: 'certificate_revoked' });
    expect(st.attested_by).toBeUndefined();
    expect((await call(`${url}/v1/certificates/${new X509Certificate(first.cert).serialNumber.toLowerCase()}`)).body.status).toBe('good');
  });

  it('a renewal whose record by serial is not written (a Cluster writes it after the link) is still revoked with its parent, and its siblings', async () => {
    const t = await open();
    const first = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const renew = async () => {
      const r = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: newKeyAndCsr().csrPem }), client: first });
      expect(r.status, r.text).toBe(201);
      return r.body.serial as string;
    };
    const [missing, sibling] = [await renew(), await renew()];
    const store = b.running.broker.store;
    const real = store.getCertificate.bind(store);
    // the revocation finds the link, but no record by serial for one renewal
    store.getCertificate = async (serial) => (serial === missing ? null : real(serial));
    try {
      const r = await call(`${url}/v1/certificates/${new X509Certificate(first.cert).serialNumber.toLowerCase()}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
      expect(r.status, r.text).toBe(200);
    } finally {
      store.getCertificate = real;
    }
    for (const serial of [missing, sibling]) expect((await call(`${url}/v1/certificates/${serial}`)).body.status, serial).toBe('revoked');
  });

  it('a renewal racing the revocation of the certificate asking for it is refused, nothing recorded', async () => {
    const t = await open();
    const parent = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const parentSerial = new X509Certificate(parent.cert).serialNumber.toLowerCase();
    const store = b.running.broker.store;
    const real = store.recordCertificate.bind(store);
    // the parent is revoked after its attestation was checked, before the renewal is recorded and linked to it
    store.recordCertificate = async (...args) => {
      await call(`${url}/v1/certificates/${parentSerial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
      return real(...args);
    };
    try {
      const k = newKeyAndCsr();
      const r = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: k.csrPem }), client: parent });
      expect(r.status).toBe(400);
      expect(r.body.error_description).toMatch(/certificate presented was revoked/);
      expect(r.body.certificate).toBeUndefined();
    } finally {
      store.recordCertificate = real;
    }
    const listed = (await call(`${url}/v1/tasks/${t}/certificates`, { headers: bearer(OPERATOR.token) })).body.certificates as Array<{ serial: string; status: string }>;
    expect(listed.map((c) => [c.serial, c.status])).toEqual([[parentSerial, 'revoked']]); // the parent only
    const events = (await call(`${url}/v1/audit?task_id=${t}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; reason?: string }>;
    expect(events.filter((e) => e.type.startsWith('certificate.')).map((e) => [e.type, e.reason])).toEqual([
      ['certificate.granted', undefined],
      ['certificate.revoked', undefined],
      ['certificate.denied', 'certificate_revoked'],
    ]);
  });

  it('closing the task ends its certificate as an attestation too', async () => {
    const t = await open();
    const own = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const k = newKeyAndCsr();
    expect((await byCertificate(own, t)).status).toBe(200);
    const closed = await call(`${url}/v1/tasks/${t}/close`, { method: 'POST', headers: bearer(await b.attest('orch')) });
    expect(closed.status).toBe(200);
    const after = await byCertificate(own, t);
    expect(after.status).toBe(400);
    expect(after.body.error_description).toMatch(/revoked/);
    const renew = await call(`${url}/v1/certificates`, { ...json({ task_id: t, csr: k.csrPem }), client: own });
    expect(renew.status).toBe(401);
    expect(renew.body.error).toBe('invalid_token');
  });
});

describe("a token is never bound to this broker's certificate once it is not good (revoked by a lock, expired)", () => {
  let b: TestBroker;
  let url: string;
  beforeAll(async () => {
    b = await startTlsBroker('memory', p, []);
    url = b.url;
  });
  afterAll(() => b.close());
  const open = async () => (await call(`${url}/v1/tasks`, json(WIDE_TASK, bearer(await b.attest('orch'))))).body.task_id as string;
  const boundJwt = async (client: Pair, task: string) =>
    call(`${url}/oauth/token`, { ...form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: task }), client });

  it('a certificate revoked by a lock of its identity (still revoked after the unlock) binds nothing', async () => {
    const t = await open();
    const own = await svidByJwt(call, url, t, await b.attest('agent-b'));
    expect((await boundJwt(own, t)).status).toBe(200);
    const clock = b.clock as ManualClock;
    const lock = (method: string) => call(`${url}/v1/identities/${encodeURIComponent(id('agent/b'))}/lock`, { method, headers: bearer(OPERATOR.token) });
    expect((await lock('POST')).status).toBe(200);
    clock.advance(1000);
    expect((await lock('DELETE')).status).toBe(200);
    clock.advance(1000); // a new grant in a later second than the lock's
    const serial = new X509Certificate(own.cert).serialNumber.toLowerCase();
    expect((await call(`${url}/v1/certificates/${serial}`)).body).toMatchObject({ status: 'revoked', reason: 'identity_revoked' });
    const r = await boundJwt(own, t);
    expect(r.status, r.text).toBe(400);
    expect(r.body.error_description).toMatch(/was revoked: no token is bound to it/);
    // the same JWT without that certificate still gets its token: only the binding is refused
    expect((await call(`${url}/oauth/token`, form({ grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: t }))).status).toBe(200);
  });

  it('an expired certificate of this broker binds nothing, in its own task or another', async () => {
    const t = await open();
    const own = await svidByJwt(call, url, t, await b.attest('agent-b'));
    const notAfter = Date.parse(new X509Certificate(own.cert).validTo);
    (b.clock as ManualClock).set(notAfter + 1000);
    const t2 = await open(); // (the task t outlives the certificate)
    for (const [task, reason] of [[t, /has expired/], [t2, /another task/]] as const) {
      const r = await boundJwt(own, task);
      expect(r.status, r.text).toBe(400);
      expect(r.body.error_description).toMatch(reason);
    }
    const events = (await call(`${url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; reason?: string }>;
    expect(events.filter((e) => e.type === 'token.denied').map((e) => e.reason)).toEqual(expect.arrayContaining(['certificate_revoked', 'certificate_expired', 'certificate_other_task']));
  });
});

describe('the certificate token type without TLS', () => {
  const ctx = useBroker('memory');

  it('is refused with a clear error, and metadata does not offer it', async () => {
    const r = await fetch(`${ctx.b.url}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: 'A'.repeat(43), subject_token_type: CERT_TYPE, task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error_description: string }).error_description).toMatch(/needs mTLS/);
    const m = (await (await fetch(`${ctx.b.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(m.tls_client_certificate_bound_access_tokens).toBeUndefined();
  });
});

describe('listen.tls with an encrypted key (listen.tls.key_password_file)', () => {
  const { p: tp, call: tcall } = corpPki('mayfly-tls-pass-');
  execFileSync('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', tp.file('server.key'), '-out', tp.file('server.enc.key'), '-passout', 'pass:tls secret'], { stdio: 'ignore' });
  tp.file('tls.pass', 'tls secret\n');
  tp.file('wrong.pass', 'not it\n');
  const start = (tls: Record<string, string>) =>
    startTestBroker({ store: 'memory', edit: (doc) => void Object.assign(doc.listen as object, { tls: { cert_file: tp.file('server.pem'), ...tls } }) });

  it('serves HTTPS with the key opened by the first line of the password file', async () => {
    const b = await start({ key_file: tp.file('server.enc.key'), key_password_file: tp.file('tls.pass') });
    try {
      expect(b.url.startsWith('https://')).toBe(true);
      expect((await tcall(`${b.url}/healthz`)).status).toBe(200);
    } finally {
      await b.close();
    }
  });

  it('refuses to start without the password, with a wrong one, or with a key that is not one, naming the config key', async () => {
    await expect(start({ key_file: tp.file('server.enc.key') })).rejects.toThrow(/listen\.tls\.key_file is encrypted: give its password in listen\.tls\.key_password_file/);
    await expect(start({ key_file: tp.file('server.enc.key'), key_password_file: tp.file('wrong.pass') })).rejects.toThrow(/cannot be decrypted with the password in listen\.tls\.key_password_file/);
    await expect(start({ key_file: tp.file('server.enc.key'), key_password_file: tp.file('missing.pass') })).rejects.toThrow(/listen\.tls\.key_password_file: cannot read/);
    await expect(start({ key_file: tp.file('server.pem') })).rejects.toThrow(/listen\.tls\.key_file is not a private key PEM/);
    // a key that is not the certificate's
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', tp.file('other.key')], { stdio: 'ignore' });
    await expect(start({ key_file: tp.file('other.key') })).rejects.toThrow(/listen\.tls\.cert_file and listen\.tls\.key_file do not make a TLS server/);
  });
});
