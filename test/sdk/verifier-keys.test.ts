/**
 * Signing keys: the verifier caches the broker's JWKS; a token with an unknown kid triggers one
 * refetch per cooldown (never one per request), so a key rotation on the broker is picked up and
 * garbage kids cannot hammer the JWKS endpoint.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { createVerifier } from '../../src/sdk/verifier/index.js';
import { writeKeyFile } from '../../src/keys/keyring.js';
import { API, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { mint } from './support.js';

describe('verifier and the broker keys', () => {
  let b: TestBroker;
  let jwksFetches = 0;
  const counting = (input: string | URL | Request, init?: RequestInit) => {
    if (String(input).endsWith('/.well-known/jwks.json')) jwksFetches++;
    return fetch(input, init);
  };
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(() => b.close());

  it('refetches the JWKS for an unknown kid at most once per cooldown', async () => {
    const v = createVerifier({ issuer: b.url, feed: 'none', fetch: counting, clock: b.clock, jwksCooldownMs: 60_000 });
    const { token } = await mint(b);
    jwksFetches = 0;
    expect((await v.verify(token, { audience: API })).ok).toBe(true);
    expect(jwksFetches).toBe(1);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (let i = 0; i < 20; i++) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: `nope-${i}`, typ: 'at+jwt' }).sign(stranger);
      expect(await v.verify(forged, { audience: API })).toMatchObject({ ok: false, code: 'unknown_kid' });
    }
    expect(jwksFetches).toBe(1); // cooling down: no refetch storm
    for (let i = 0; i < 50; i++) expect((await v.verify(token, { audience: API })).ok).toBe(true);
    expect(jwksFetches).toBe(1); // known kid: served from the cache
  });

  it('picks up a key rotation on the broker with one refetch', async () => {
    const v = createVerifier({ issuer: b.url, feed: 'none', fetch: counting, clock: b.clock, jwksCooldownMs: 50 });
    const before = await mint(b);
    expect((await v.verify(before.token, { audience: API })).ok).toBe(true);
    const oldKid = b.running.broker.keyring.signing.kid;
    writeKeyFile(b.running.broker.config.keysDir, 'ES256');
    await b.running.broker.keyring.reload();
    expect(b.running.broker.keyring.signing.kid).not.toBe(oldKid);
    const after = await mint(b);
    await new Promise((r) => setTimeout(r, 60)); // past the cooldown
    jwksFetches = 0;
    expect(await v.verify(after.token, { audience: API })).toMatchObject({ ok: true });
    expect(jwksFetches).toBe(1);
    expect((await v.verify(before.token, { audience: API })).ok).toBe(true); // the old key stays published
  });
});
