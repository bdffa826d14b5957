/**
 * DPoP at the token endpoint (RFC 9449 §5): a proof binds the token to the agent's key (`cnf.jkt`,
 * `token_type: DPoP`), visible in introspection; forged, replayed, stale, misdirected or
 * alg-confused proofs are refused with `invalid_dpop_proof`, and nothing is issued for them.
 */
import { createSecretKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose';
import { api, http, JWT_TYPE, postForm, startTestBroker, STORES, TOKEN_EXCHANGE, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import type { ManualClock } from '../../src/clock.js';
import { createClient, createDpopKey, staticToken } from '../../src/sdk/client/index.js';

describe.each(['redis', 'memory'] as const)('DPoP-bound tokens from the token endpoint (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let taskId: string;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jwk: JWK;
  let jkt: string;

  beforeAll(async () => {
    b = await startTestBroker({ store });
    a = api(b);
    taskId = (await a.openTask(WIDE_TASK)).body.task_id;
    jwk = await exportJWK(key.publicKey);
    jkt = await calculateJwkThumbprint(jwk, 'sha256');
  });
  afterAll(() => b.close());

  type ProofOpts = { htm?: string; htu?: string; iat?: number; jti?: string | null; typ?: string; header?: Record<string, unknown>; claims?: Record<string, unknown> };
  const proof = async (o: ProofOpts = {}) => {
    const payload: Record<string, unknown> = {
      htm: o.htm ?? 'POST',
      htu: o.htu ?? `${b.url}/oauth/token`,
      iat: o.iat ?? Math.floor(Date.now() / 1000),
      ...(o.jti === null ? {} : { jti: o.jti ?? randomUUID() }),
      ...o.claims,
    };
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'dpop+jwt', jwk, ...o.header }).sign(key.privateKey);
  };
  const exchange = async (dpop?: string) =>
    postForm(
      `${b.url}/oauth/token`,
      { grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-b'), subject_token_type: JWT_TYPE, task_id: taskId, scope: 'read' },
      dpop === undefined ? {} : { dpop },
    );
  const issued = async () => (await a.getTask(taskId)).body.credentials.issued as number;

  it('binds the token to the proof key: cnf.jkt, token_type DPoP, in introspection too', async () => {
    const r = await exchange(await proof());
    expect(r.status).toBe(200);
    expect(r.body.token_type).toBe('DPoP');
    const claims = JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url').toString());
    expect(claims.cnf).toEqual({ jkt });
    const i = await a.introspect(r.body.access_token);
    expect(i.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
    const plain = await exchange();
    expect(plain.body.token_type).toBe('Bearer');
    expect(JSON.parse(Buffer.from(plain.body.access_token.split('.')[1], 'base64url').toString()).cnf).toBeUndefined();
    const meta = (await http(`${b.url}/.well-known/oauth-authorization-server`)).body;
    expect(meta.dpop_signing_alg_values_supported).toContain('ES256');
  });

  it('refuses a replayed proof', async () => {
    const p = await proof();
    expect((await exchange(p)).status).toBe(200);
    const again = await exchange(p);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_dpop_proof');
  });

  it('refuses hostile proofs and issues nothing for them', async () => {
    const now = Math.floor(Date.now() / 1000);
    const hmacKey = createSecretKey(Buffer.alloc(32, 7));
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const good = await proof();
    const [h, p, s] = good.split('.') as [string, string, string];
    const cases: Array<[string, string]> = [
      ['garbage', 'not-a-jwt'],
      ['two proofs', `${good}, ${await proof()}`],
      ['wrong typ', await proof({ typ: 'JWT' })],
      ['wrong htm', await proof({ htm: 'GET' })],
      ['wrong htu', await proof({ htu: 'https://elsewhere.example/oauth/token' })],
      ['htu of another endpoint', await proof({ htu: `${b.url}/oauth/token`.replace('/oauth/token', '/oauth/introspect') })],
      ['htu with userinfo', await proof({ htu: `${b.url}/oauth/token`.replace('://', '://evil@') })],
      ['htu with user and password', await proof({ htu: `${b.url}/oauth/token`.replace('://', '://a:b@') })],
      ['htu with an empty userinfo', await proof({ htu: `${b.url}/oauth/token`.replace('://', '://@') })],
      ['stale iat', await proof({ iat: now - 600 })],
      ['future iat', await proof({ iat: now + 600 })],
      ['no jti', await proof({ jti: null })],
      ['short jti', await proof({ jti: 'x' })],
      ['non-numeric iat', await proof({ claims: { iat: 'now' } })],
      ['signature by another key', `${h}.${p}.${(await new SignJWT({ x: 1 }).setProtectedHeader({ alg: 'ES256' }).sign(other.privateKey)).split('.')[2]}`],
      ['tampered payload', `${h}.${Buffer.from(JSON.stringify({ htm: 'POST', htu: `${b.url}/oauth/token`, iat: now, jti: randomUUID() })).toString('base64url')}.${s}`],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk })).toString('base64url')}.${p}.`],
      [
        'HS256 with a symmetric jwk',
        await new SignJWT({ htm: 'POST', htu: `${b.url}/oauth/token`, iat: now, jti: randomUUID() })
          .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.alloc(32, 7).toString('base64url') } as unknown as JWK })
          .sign(hmacKey),
      ],
      [
        'private key in the jwk header',
        await new SignJWT({ htm: 'POST', htu: `${b.url}/oauth/token`, iat: now, jti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.privateKey) })
          .sign(key.privateKey),
      ],
      ['huge', `${h}.${'A'.repeat(10_000)}.${s}`],
    ];
    const before = await issued();
    for (const [what, dpop] of cases) {
      const r = await exchange(dpop);
      expect(r.status, what).toBe(400);
      expect(r.body.error, what).toBe('invalid_dpop_proof');
    }
    expect(await issued()).toBe(before);
    const audit = (await http(`${b.url}/v1/audit?type=token.denied&limit=100`, { headers: { authorization: 'Bearer op-token-0123456789abcdef' } })).body;
    expect(JSON.stringify(audit)).toContain('dpop_replayed');
  });
});

/**
 * DPoP nonces (RFC 9449 §8) with `dpop.require_nonce`: a proof without a nonce, with a forged one, one
 * from another broker or one past its two windows gets `use_dpop_nonce` and a fresh `DPoP-Nonce`;
 * nothing is issued for it. The SDK client retries once with the nonce and keeps the next one.
 */
describe.each(STORES)('DPoP nonces required (%s)', (store) => {
  let b: TestBroker;
  let other: TestBroker;
  let taskId: string;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jwk: JWK;
  beforeAll(async () => {
    const dpop = { require_nonce: true, nonce_lifetime: '1m' };
    [b, other] = await Promise.all([startTestBroker({ store, extra: { dpop } }), startTestBroker({ store: 'memory', extra: { dpop } })]);
    taskId = (await api(b).openTask(WIDE_TASK)).body.task_id;
    jwk = await exportJWK(key.publicKey);
  });
  afterAll(async () => {
    await Promise.all([b.close(), other.close()]);
  });

  const proof = (nonce?: string) =>
    new SignJWT({ htm: 'POST', htu: `${b.url}/oauth/token`, iat: Math.floor(b.clock.now() / 1000), jti: randomUUID(), ...(nonce !== undefined ? { nonce } : {}) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(key.privateKey);
  const exchange = async (dpop: string) =>
    postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-a'), subject_token_type: JWT_TYPE, task_id: taskId }, { dpop });
  const issued = async () => (await api(b).getTask(taskId)).body.credentials.issued as number;

  it('asks for a nonce, then accepts the one it gave, and hands out the next one with the token', async () => {
    const first = await exchange(await proof());
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('use_dpop_nonce');
    const nonce = first.headers.get('dpop-nonce');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const ok = await exchange(await proof(nonce!));
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.token_type).toBe('DPoP');
    expect(ok.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // every answer carries the next nonce, refusals too (an unknown task, a malformed proof)
    const unknownTask = await postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: await b.attest('agent-a'), subject_token_type: JWT_TYPE, task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' }, { dpop: await proof(nonce!) });
    expect(unknownTask.status).toBe(400);
    expect(unknownTask.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const malformed = await exchange('not.a.proof');
    expect(malformed.body.error).toBe('invalid_dpop_proof');
    expect(malformed.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('refuses forged, foreign and expired nonces, issuing nothing', async () => {
    const before = await issued();
    // a nonce the other broker (another CA, so another nonce key) would accept right now
    const foreign = other.running.broker.dpopNonces?.current(b.clock.now());
    expect(foreign).toBeTruthy();
    for (const bad of ['A'.repeat(32), foreign!, 'short', '']) {
      const r = await exchange(await proof(bad));
      expect(r.status, bad).toBe(400);
      expect(r.body.error).toBe('use_dpop_nonce');
    }
    const old = (await exchange(await proof())).headers.get('dpop-nonce')!;
    (b.clock as ManualClock).advance(2 * 60_000 + 1000); // past its window and the next
    const stale = await exchange(await proof(old));
    expect(stale.body.error).toBe('use_dpop_nonce');
    expect(stale.headers.get('dpop-nonce')).not.toBe(old);
    expect(await issued()).toBe(before);
  });

  it('the SDK client gets its nonce by itself', async () => {
    const c = createClient({ brokerUrl: b.url, attestation: staticToken(await b.attest('agent-a')), dpop: await createDpopKey(), clock: b.clock });
    const t = await c.token({ task: taskId, scope: 'read' });
    expect(t.tokenType).toBe('DPoP');
    const t2 = await c.token({ task: taskId, scope: 'write' });
    expect(t2.tokenType).toBe('DPoP');
  });
});
