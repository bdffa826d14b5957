/**
 * DPoP (RFC 9449) for key-bound tokens: the broker mints one for a proof of the agent's key at the
 * token endpoint (`cnf.jkt`), and the verifier accepts it only with fresh proofs by that key.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose';
import { createVerifier, verifyRequest, type Verifier } from '../../src/sdk/verifier/index.js';
import { accessTokenHash } from '../../src/sdk/verifier/dpop.js';
import { API, CLIENT, WIDE_TASK, api, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { mint } from './support.js';
import type { ManualClock } from '../../src/clock.js';

describe('DPoP-bound tokens', () => {
  let b: TestBroker;
  let v: Verifier;
  let bound: string;
  let unbound: string;
  const proofKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jwk: JWK;
  const URL_ = 'https://api.test/repo/files?x=1';

  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
    v = createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, feed: 'stream', clock: b.clock });
    await v.start({ timeoutMs: 5000 });
    jwk = await exportJWK(proofKey.publicKey);
    unbound = (await mint(b)).token;
    const tokenProof = await new SignJWT({ htm: 'POST', htu: `${b.url}/oauth/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(proofKey.privateKey);
    const r = await api(b).exchange(await b.attest('agent-b'), (await api(b).openTask(WIDE_TASK)).body.task_id, {}, { dpop: tokenProof });
    expect(r.body.token_type).toBe('DPoP');
    bound = r.body.access_token;
    expect(JSON.parse(Buffer.from(bound.split('.')[1]!, 'base64url').toString()).cnf).toEqual({ jkt: await calculateJwkThumbprint(jwk, 'sha256') });
  });
  afterAll(async () => {
    v.close();
    await b.close();
  });

  const proof = (o: { htm?: string; htu?: string; iat?: number; jti?: string; ath?: string; key?: typeof proofKey; typ?: string; token?: string; nonce?: string } = {}) =>
    (async () =>
      new SignJWT({
        htm: o.htm ?? 'GET',
        htu: o.htu ?? 'https://api.test/repo/files',
        iat: o.iat ?? Math.floor(b.clock.now() / 1000),
        jti: o.jti ?? randomUUID(),
        ath: o.ath ?? accessTokenHash(o.token ?? bound),
        ...(o.nonce !== undefined ? { nonce: o.nonce } : {}),
      })
        .setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: await exportJWK((o.key ?? proofKey).publicKey) })
        .sign((o.key ?? proofKey).privateKey))();

  const check = async (p: string | undefined, scheme: 'DPoP' | 'Bearer' = 'DPoP', token = bound, method = 'GET') =>
    v.verify(token, { audience: API, dpop: { proof: p, method, url: URL_, scheme } });

  it('accepts a fresh proof for this request by the bound key (query ignored in htu)', async () => {
    expect(await check(await proof())).toMatchObject({ ok: true });
  });

  it('refuses a bound token without a proof, or sent as Bearer', async () => {
    expect(await check(undefined)).toMatchObject({ ok: false, code: 'dpop_invalid' });
    expect(await v.verify(bound, { audience: API })).toMatchObject({ ok: false, code: 'dpop_invalid' });
    expect(await check(await proof(), 'Bearer')).toMatchObject({ ok: false, code: 'dpop_invalid' });
  });

  it('refuses the DPoP scheme with an unbound token', async () => {
    expect(await check(await proof({ token: unbound }), 'DPoP', unbound)).toMatchObject({ ok: false, code: 'dpop_invalid' });
    expect(await check(undefined, 'Bearer', unbound)).toMatchObject({ ok: true });
  });

  it('refuses wrong method, URL, token hash, key, type, a stale proof and a replay', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const nowS = Math.floor(b.clock.now() / 1000);
    const cases: [string, string][] = [
      ['htm', await proof({ htm: 'POST' })],
      ['htu', await proof({ htu: 'https://api.test/other' })],
      ['ath', await proof({ ath: accessTokenHash('something else') })],
      ['key', await proof({ key: other })],
      ['typ', await proof({ typ: 'JWT' })],
      ['old', await proof({ iat: nowS - 120 })],
      ['future', await proof({ iat: nowS + 60 })],
    ];
    for (const [what, p] of cases) expect(await check(p), what).toMatchObject({ ok: false, code: 'dpop_invalid' });
    const once = await proof();
    expect((await check(once)).ok).toBe(true);
    expect(await check(once)).toMatchObject({ ok: false, code: 'dpop_invalid', message: expect.stringMatching(/already used/) });
  });

  it('verifyRequest reads the DPoP scheme and header and answers with a DPoP challenge', async () => {
    const ok = await verifyRequest(v, { authorization: `DPoP ${bound}`, dpop: await proof() }, { audience: API, method: 'GET', url: URL_ });
    expect(ok.ok).toBe(true);
    const r = await verifyRequest(v, { authorization: `DPoP ${bound}`, dpop: await proof({ htm: 'DELETE' }) }, { audience: API, method: 'GET', url: URL_ });
    expect(r).toMatchObject({ ok: false, status: 401, code: 'dpop_invalid' });
    if (!r.ok) expect(r.headers['www-authenticate']).toMatch(/^DPoP realm="mayfly", error="invalid_dpop_proof", error_description="[^"]*", algs="/);
  });

  describe('resource-server nonces (RFC 9449 §9)', () => {
    const SECRET = 'a resource server secret of 32+ bytes';
    const LIFETIME = 10_000;
    const withNonces = (secret = SECRET) =>
      createVerifier({ issuer: b.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, clock: b.clock, feed: 'none', introspectionFallback: true, dpop: { nonce: { secret, lifetimeMs: LIFETIME } } });
    const checkWith = async (verifier: Verifier, p: string) => verifier.verify(bound, { audience: API, dpop: { proof: p, method: 'GET', url: URL_, scheme: 'DPoP' } });

    it('a proof without a nonce gets use_dpop_nonce and one to retry with; with it, the request passes and gets the current one', async () => {
      const vn = withNonces();
      const first = await checkWith(vn, await proof());
      expect(first).toMatchObject({ ok: false, code: 'use_dpop_nonce', message: expect.stringMatching(/requires a DPoP nonce/) });
      const nonce = (first as { dpopNonce: string }).dpopNonce;
      expect(nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
      const ok = await checkWith(vn, await proof({ nonce }));
      expect(ok).toMatchObject({ ok: true, dpopNonce: nonce });
      // a replica with the same secret accepts it; one with another secret does not
      expect(await checkWith(withNonces(), await proof({ nonce }))).toMatchObject({ ok: true });
      expect(await checkWith(withNonces(`${SECRET} but another`), await proof({ nonce }))).toMatchObject({ ok: false, code: 'use_dpop_nonce', message: expect.stringMatching(/stale or not ours/) });
      // the broker's verifier without nonces ignores one
      expect(await check(await proof({ nonce }))).toMatchObject({ ok: true });
      expect((await check(await proof())) as { dpopNonce?: string }).not.toHaveProperty('dpopNonce');
    });

    it('a nonce is good in its window and the next, then refused; a bad proof is still dpop_invalid, never use_dpop_nonce', async () => {
      const vn = withNonces();
      const nonce = ((await checkWith(vn, await proof())) as { dpopNonce: string }).dpopNonce;
      (b.clock as ManualClock).advance(LIFETIME);
      expect(await checkWith(vn, await proof({ nonce }))).toMatchObject({ ok: true });
      (b.clock as ManualClock).advance(LIFETIME);
      const stale = await checkWith(vn, await proof({ nonce }));
      expect(stale).toMatchObject({ ok: false, code: 'use_dpop_nonce' });
      expect((stale as { dpopNonce: string }).dpopNonce).not.toBe(nonce);
      for (const bad of ['', 'x', nonce.slice(1), `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}`])
        expect(await checkWith(vn, await proof({ nonce: bad })), bad).toMatchObject({ ok: false, code: 'use_dpop_nonce' });
      // the other checks come first: a wrong method with a good nonce is an invalid proof
      const fresh = ((await checkWith(vn, await proof())) as { dpopNonce: string }).dpopNonce;
      expect(await checkWith(vn, await proof({ nonce: fresh, htm: 'POST' }))).toMatchObject({ ok: false, code: 'dpop_invalid' });
      // a proof refused for its nonce is not recorded as used: its jti is still good with the nonce
      const jti = randomUUID();
      expect(await checkWith(vn, await proof({ jti }))).toMatchObject({ ok: false, code: 'use_dpop_nonce' });
      expect(await checkWith(vn, await proof({ jti, nonce: fresh }))).toMatchObject({ ok: true });
      expect(await checkWith(vn, await proof({ jti, nonce: fresh }))).toMatchObject({ ok: false, code: 'dpop_invalid', message: expect.stringMatching(/already used/) });
    });

    it('verifyRequest: 401 with a DPoP use_dpop_nonce challenge and the DPoP-Nonce header; accepted requests carry the next nonce', async () => {
      const vn = withNonces();
      const r = await verifyRequest(vn, { authorization: `DPoP ${bound}`, dpop: await proof() }, { audience: API, method: 'GET', url: URL_ });
      expect(r).toMatchObject({ ok: false, status: 401, code: 'use_dpop_nonce', body: { error: 'use_dpop_nonce' } });
      if (r.ok) return;
      expect(r.headers['www-authenticate']).toMatch(/^DPoP realm="mayfly", error="use_dpop_nonce", error_description="[^"]*"/);
      const nonce = r.headers['dpop-nonce']!;
      const ok = await verifyRequest(vn, { authorization: `DPoP ${bound}`, dpop: await proof({ nonce }) }, { audience: API, method: 'GET', url: URL_ });
      expect(ok).toMatchObject({ ok: true, headers: { 'dpop-nonce': nonce } });
    });

    it('hostile Authorization and DPoP headers (with and without nonces): always a 400 or 401 answer, never a throw, never accepted', async () => {
      const vn = withNonces();
      const good = await proof();
      const [gh, gp, gs] = good.split('.') as [string, string, string];
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const piece = fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.constantFrom(good, `${gh}.${gp}`, `${gh}..${gs}`, `${b64({ alg: 'none', typ: 'dpop+jwt' })}.${gp}.`, `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'AA' } })}.${gp}.${gs}`),
        fc.json({ maxDepth: 3 }).map((j) => `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: JSON.parse(j) })}.${gp}.${gs}`),
        fc.json({ maxDepth: 3 }).map((j) => `${gh}.${b64(JSON.parse(j))}.${gs}`),
      );
      const scheme = fc.constantFrom('DPoP', 'Bearer', 'dpop', 'Basic', '');
      await fc.assert(
        fc.asyncProperty(scheme, fc.oneof(fc.constant(bound), fc.string({ maxLength: 100 })), fc.option(piece, { nil: undefined }), fc.boolean(), async (sch, token, dpop, nonces) => {
          const headers: Record<string, string> = { authorization: `${sch} ${token}` };
          if (dpop !== undefined) headers.dpop = dpop;
          const r = await verifyRequest(nonces ? vn : v, headers, { audience: API, method: 'GET', url: URL_ });
          if (r.ok) expect(dpop).toBe(good); // only the real proof, once (the replay cache refuses it again)
          else expect([400, 401]).toContain(r.status);
        }),
        { seed: 20_261_126, numRuns: 300 },
      );
    });

    it('refuses a secret shorter than 32 bytes', () => {
      expect(() => withNonces('short')).toThrow(/at least 32 bytes/);
    });
  });
});
