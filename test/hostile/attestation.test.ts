/**
 * Hostile attestation tokens. Every forged, confused, stale, mis-addressed or malformed proof is refused
 * at both doors that accept one: as `subject_token` at POST /oauth/token (400 invalid_request, and the
 * task's issued count does not move) and as a Bearer at POST /v1/tasks (401 invalid_token, and no task
 * record appears). Header-supplied key locations (jku, x5u) are never fetched: a local server that would
 * serve the attacker's keys counts every request it gets and must end with zero.
 */
import { createServer, type Server } from 'node:http';
import { createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTEST_ISS, OTHER_ISS, WIDE_TASK, JWT_TYPE, http, postJson, postForm, TOKEN_EXCHANGE } from '../helpers/broker.js';
import {
  attackerKey,
  bearer,
  claims,
  closeProbes,
  compact,
  es256,
  expectError,
  flipSignatureBit,
  hostileBroker,
  hs256,
  issued,
  signWith,
  taskRecordCount,
  b64u,
  type Attacker,
  selfSignedCert,
  type HostileBroker,
} from './support.js';

let h: HostileBroker;
let task: string;
let attacker: Attacker;
let accessToken: string;
let keyServer: Server;
let keyServerUrl: string;
const keyServerHits: string[] = [];
let rsaAttacker: KeyObject;
let attackerCert: { x5c: string; pem: string };

beforeAll(async () => {
  h = await hostileBroker();
  attacker = await attackerKey('evil-1');
  rsaAttacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  attackerCert = selfSignedCert(attacker);
  keyServer = createServer((req, res) => {
    keyServerHits.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/x5u')) {
      res.setHeader('content-type', 'application/pkix-cert');
      res.end(attackerCert.pem);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [attacker.publicJwk, { ...attacker.publicJwk, kid: 'main-1' }] }));
  });
  await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', () => r()));
  keyServerUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;
  task = (await h.a.openTask(WIDE_TASK)).body.task_id;
  const ex = await h.a.exchange(await h.b.attest('agent-a'), task);
  expect(ex.status, ex.text).toBe(200);
  accessToken = ex.body.access_token;
});

afterAll(async () => {
  await new Promise<void>((r) => keyServer.close(() => r()));
  await closeProbes(h.b);
  await h.b.close();
});

const H = (extra: Record<string, unknown> = {}) => ({ alg: 'ES256', kid: 'main-1', typ: 'JWT', ...extra });
const now = () => Math.floor(h.clock.now() / 1000);
const main = () => h.b.signers.main;
const other = () => h.b.signers.other;
const mainPublic = () => createPublicKey(main().privateKey);
/** A genuine, valid attestation built the same way as the forgeries (the control). */
const genuine = (sub: string, extra: Record<string, unknown> = {}) => es256(H(), claims(h.clock, sub, extra), main().privateKey);

/**
 * What each case does to the proof. `exchangeOnly`: the mutation only matters at the token endpoint
 * (a selector only agent-a's registration has, or whitespace a Bearer header legitimately trims).
 */
interface Case {
  name: string;
  forge: (sub: string) => string | Promise<string>;
  exchangeOnly?: boolean;
}

const cases: Case[] = [
  // --- unsigned and algorithm confusion
  { name: 'alg "none", no signature', forge: (s) => compact({ alg: 'none', typ: 'JWT' }, claims(h.clock, s)) },
  { name: 'alg "none" with the kid of the real key', forge: (s) => compact({ alg: 'none', kid: 'main-1', typ: 'JWT' }, claims(h.clock, s)) },
  { name: 'alg "NONE" / "nOnE" (case games)', forge: (s) => compact({ alg: 'nOnE', kid: 'main-1' }, claims(h.clock, s)) },
  {
    name: 'alg "none" carrying the signature of a genuine token',
    forge: (s) => {
      const g = genuine(s);
      return `${b64u({ alg: 'none', kid: 'main-1' })}.${g.split('.')[1]}.${g.split('.')[2]}`;
    },
  },
  { name: 'HS256 keyed with the attestor public JWK (JSON text)', forge: (s) => hs256({ alg: 'HS256', kid: 'main-1', typ: 'JWT' }, claims(h.clock, s), JSON.stringify(main().publicJwk)) },
  { name: 'HS256 keyed with the attestor public key PEM (SPKI)', forge: (s) => hs256({ alg: 'HS256', kid: 'main-1', typ: 'JWT' }, claims(h.clock, s), mainPublic().export({ type: 'spki', format: 'pem' }) as string) },
  { name: 'HS256 keyed with the attestor public key DER bytes', forge: (s) => hs256({ alg: 'HS256', kid: 'main-1' }, claims(h.clock, s), mainPublic().export({ type: 'spki', format: 'der' })) },
  { name: 'HS256 keyed with the public PEM and no kid', forge: (s) => hs256({ alg: 'HS256' }, claims(h.clock, s), mainPublic().export({ type: 'spki', format: 'pem' }) as string) },
  { name: 'ES512 in the header over a P-256 signature', forge: (s) => es256(H({ alg: 'ES512' }), claims(h.clock, s), main().privateKey) },
  { name: 'RS256 by the attacker RSA key under kid main-1', forge: (s) => signWith({ alg: 'RS256', kid: 'main-1', typ: 'JWT' }, claims(h.clock, s), rsaAttacker, 'sha256') },
  { name: 'DER-encoded ECDSA signature (not JOSE r||s)', forge: (s) => es256(H(), claims(h.clock, s), main().privateKey, 'der') },
  { name: 'all-zero 64-byte signature', forge: (s) => compact(H(), claims(h.clock, s), Buffer.alloc(64)) },

  // --- keys the attacker controls
  { name: 'unknown kid, attacker key', forge: (s) => es256(H({ kid: 'evil-1' }), claims(h.clock, s), attacker.privateKey) },
  { name: 'unknown kid, the real key (no fallback to another key)', forge: (s) => es256(H({ kid: 'main-0' }), claims(h.clock, s), main().privateKey) },
  { name: 'no kid at all, attacker key', forge: (s) => es256({ alg: 'ES256', typ: 'JWT' }, claims(h.clock, s), attacker.privateKey) },
  { name: 'the right kid, a different key (attacker)', forge: (s) => es256(H(), claims(h.clock, s), attacker.privateKey) },
  { name: 'jku pointing at the attacker JWKS (attacker kid)', forge: (s) => es256(H({ kid: 'evil-1', jku: `${keyServerUrl}/jwks.json` }), claims(h.clock, s), attacker.privateKey) },
  { name: 'jku pointing at the attacker JWKS (kid main-1)', forge: (s) => es256(H({ jku: `${keyServerUrl}/jwks.json` }), claims(h.clock, s), attacker.privateKey) },
  { name: 'x5u pointing at the attacker certificate (no kid)', forge: (s) => es256({ alg: 'ES256', typ: 'JWT', x5u: `${keyServerUrl}/x5u.pem` }, claims(h.clock, s), attacker.privateKey) },
  { name: 'x5u with kid main-1 (ES256, attacker key)', forge: (s) => es256(H({ x5u: `${keyServerUrl}/x5u.pem` }), claims(h.clock, s), attacker.privateKey) },
  { name: 'embedded jwk header with the attacker key (attacker kid)', forge: (s) => es256(H({ kid: 'evil-1', jwk: attacker.publicJwk }), claims(h.clock, s), attacker.privateKey) },
  { name: 'embedded jwk header with the attacker key (kid main-1)', forge: (s) => es256(H({ jwk: { ...attacker.publicJwk, kid: 'main-1' } }), claims(h.clock, s), attacker.privateKey) },
  { name: 'embedded jwk header and no kid', forge: (s) => es256({ alg: 'ES256', jwk: attacker.publicJwk }, claims(h.clock, s), attacker.privateKey) },
  { name: 'x5c header with the attacker self-signed certificate (no kid)', forge: (s) => es256({ alg: 'ES256', typ: 'JWT', x5c: [attackerCert.x5c] }, claims(h.clock, s), attacker.privateKey) },
  { name: 'x5c header with the attacker certificate under kid main-1', forge: (s) => es256(H({ x5c: [attackerCert.x5c] }), claims(h.clock, s), attacker.privateKey) },
  { name: 'jku + jwk + x5u + x5c all at once', forge: (s) => es256(H({ jku: `${keyServerUrl}/a`, x5u: `${keyServerUrl}/x5u`, jwk: attacker.publicJwk, x5c: [attackerCert.x5c] }), claims(h.clock, s), attacker.privateKey) },
  // --- explicitly typed as another kind of JWT (RFC 8725 §3.11), really signed by the attestor's key
  { name: 'typ at+jwt (an access token of the attestor, not an identity proof)', forge: (s) => es256(H({ typ: 'at+jwt' }), claims(h.clock, s), main().privateKey) },
  { name: 'typ application/dpop+jwt', forge: (s) => es256(H({ typ: 'application/dpop+jwt' }), claims(h.clock, s), main().privateKey) },
  { name: 'crit header naming an unknown extension', forge: (s) => es256(H({ crit: ['x-mayfly-bypass'], 'x-mayfly-bypass': true }), claims(h.clock, s), main().privateKey) },
  {
    name: 'b64:false (unencoded payload, RFC 7797)',
    forge: (s) => {
      const header = H({ b64: false, crit: ['b64'] });
      const payload = JSON.stringify(claims(h.clock, s));
      const input = Buffer.concat([Buffer.from(`${b64u(header)}.`), Buffer.from(payload)]);
      const sig = signWithInput(input, main().privateKey);
      return `${b64u(header)}..${sig}`;
    },
  },

  // --- time (max_token_age 24 h, clock_skew 30 s; iat is optional, exp is required)
  { name: 'expired (exp 60 s ago, beyond the 30 s skew)', forge: (s) => genuine(s, { iat: now() - 600, nbf: now() - 600, exp: now() - 60 }) },
  { name: 'expired long ago', forge: (s) => genuine(s, { iat: 1_000_000, nbf: 1_000_000, exp: 1_000_600 }) },
  { name: 'exp missing', forge: (s) => genuine(s, { exp: undefined }) },
  { name: 'exp as a string', forge: (s) => genuine(s, { exp: String(now() + 600) }) },
  { name: 'exp as an object', forge: (s) => genuine(s, { exp: { $gt: 0 } }) },
  { name: 'exp as a huge number (1e300)', forge: (s) => genuine(s, { exp: 1e300 }) },
  { name: 'nbf 2 minutes in the future (beyond skew)', forge: (s) => genuine(s, { nbf: now() + 120 }) },
  { name: 'nbf as a string', forge: (s) => genuine(s, { nbf: String(now() - 10) }) },
  { name: 'iat 25 h old with exp still ahead (older than max_token_age)', forge: (s) => genuine(s, { iat: now() - 25 * 3600, nbf: now() - 25 * 3600 }) },
  { name: 'lifetime 30 days (exp beyond max_token_age from now)', forge: (s) => genuine(s, { exp: now() + 30 * 86_400 }) },
  { name: 'no iat and exp 25 h ahead', forge: (s) => genuine(s, { iat: undefined, exp: now() + 25 * 3600 }) },
  { name: 'iat as a string', forge: (s) => genuine(s, { iat: String(now()) }) },

  // --- issuer and audience
  { name: 'unknown iss', forge: (s) => genuine(s, { iss: 'https://evil.test' }) },
  { name: 'iss with a trailing slash', forge: (s) => genuine(s, { iss: `${ATTEST_ISS}/` }) },
  { name: 'iss differing in case', forge: (s) => genuine(s, { iss: ATTEST_ISS.toUpperCase() }) },
  { name: 'iss as an array', forge: (s) => genuine(s, { iss: [ATTEST_ISS] }) },
  { name: 'iss missing', forge: (s) => genuine(s, { iss: undefined }) },
  { name: "iss claiming the broker's own issuer (signed by the attestor key)", forge: (s) => genuine(s, { iss: h.b.url }) },
  { name: 'wrong aud', forge: (s) => genuine(s, { aud: 'not-mayfly' }) },
  { name: 'aud missing', forge: (s) => genuine(s, { aud: undefined }) },
  { name: 'aud array without mayfly', forge: (s) => genuine(s, { aud: ['a', 'b'] }) },
  { name: 'aud in a different case', forge: (s) => genuine(s, { aud: 'MAYFLY' }) },
  { name: 'main issuer, signed by attestor "other" (kid other-1)', forge: (s) => es256(H({ kid: 'other-1' }), claims(h.clock, s), other().privateKey) },
  { name: 'main issuer, signed by attestor "other" under kid main-1', forge: (s) => es256(H(), claims(h.clock, s), other().privateKey) },
  { name: 'issuer "other", signed by the main key', forge: (s) => es256(H(), claims(h.clock, s, { iss: OTHER_ISS }), main().privateKey) },
  {
    name: 'a genuine token of attestor "other" whose claims match a "ci" registration',
    forge: (s) => es256({ alg: 'ES256', kid: 'other-1', typ: 'JWT' }, claims(h.clock, s, { iss: OTHER_ISS }), other().privateKey),
  },

  // --- subject and selector claims
  { name: 'sub missing', forge: () => genuine('ignored', { sub: undefined }) },
  { name: 'sub empty', forge: () => genuine('') },
  { name: 'sub as an object', forge: (s) => genuine(s, { sub: { value: s } }) },
  { name: 'sub as a number', forge: () => genuine('x', { sub: 42 }) },
  { name: 'sub with a trailing NUL', forge: (s) => genuine(`${s}\u0000`) },
  { name: 'sub in a different case', forge: (s) => genuine(s.toUpperCase()) },
  { name: 'sub with a Cyrillic homoglyph', forge: (s) => genuine(s.replace('a', '\u0430').replace('o', '\u043e')) },
  { name: 'sub with a glob (selectors are not patterns on the token side)', forge: (s) => genuine(`${s.slice(0, -1)}*`) },
  { name: 'repo selector outside org/*', forge: (s) => genuine(s, { repo: 'evil/app' }), exchangeOnly: true },
  { name: 'repo selector missing', forge: (s) => genuine(s, { repo: undefined }), exchangeOnly: true },
  { name: 'repo selector as an object', forge: (s) => genuine(s, { repo: { name: 'org/app' } }), exchangeOnly: true },
  { name: 'repo selector as a prefix without the slash', forge: (s) => genuine(s, { repo: 'org' }), exchangeOnly: true },

  // --- tampering and truncation
  { name: 'signature bit flip (first byte)', forge: (s) => flipSignatureBit(genuine(s), 0) },
  { name: 'signature bit flip (middle byte)', forge: (s) => flipSignatureBit(genuine(s), 31, 3) },
  { name: 'signature bit flip (last byte)', forge: (s) => flipSignatureBit(genuine(s), 63, 7) },
  {
    name: 'payload swapped in under the signature of an unregistered workload',
    forge: (s) => {
      const g = genuine('nobody').split('.');
      return `${g[0]}.${b64u(claims(h.clock, s))}.${g[2]}`;
    },
  },
  {
    name: 'header kid swapped keeping the signature',
    forge: (s) => {
      const g = genuine(s).split('.');
      return `${b64u(H({ kid: 'other-1' }))}.${g[1]}.${g[2]}`;
    },
  },
  { name: 'truncated: last 10 characters cut', forge: (s) => genuine(s).slice(0, -10) },
  { name: 'truncated: signature segment dropped', forge: (s) => genuine(s).split('.').slice(0, 2).join('.') },
  { name: 'truncated: signature removed, trailing dot kept', forge: (s) => `${genuine(s).split('.').slice(0, 2).join('.')}.` },
  { name: 'truncated: header only', forge: (s) => genuine(s).split('.')[0]! },
  { name: 'truncated: half the token', forge: (s) => genuine(s).slice(0, Math.floor(genuine(s).length / 2)) },
  { name: 'extra segment appended', forge: (s) => `${genuine(s)}.AAAA` },
  { name: 'leading space', forge: (s) => ` ${genuine(s)}`, exchangeOnly: true },
  { name: '3-part garbage "a.b.c"', forge: () => 'a.b.c' },
  { name: '3-part empty objects e30.e30.e30', forge: () => 'e30.e30.e30' },
  { name: 'only dots "..."', forge: () => '...' },
  { name: 'header not JSON', forge: (s) => `${b64u('not json')}.${b64u(claims(h.clock, s))}.AAAA` },
  { name: 'payload a JSON array', forge: () => es256(H(), [] as unknown as object, main().privateKey) },
  { name: 'payload a JSON string', forge: () => `${b64u(H())}.${b64u('"orch"')}.AAAA` },
  { name: 'segments in standard base64 with + / =', forge: (s) => genuine(s).replace(/-/g, '+').replace(/_/g, '/') + '==' },
  { name: 'JWE-shaped 5-part token', forge: () => [b64u({ alg: 'dir', enc: 'A128GCM' }), '', 'AAAAAAAAAAAAAAAA', 'AAAA', 'AAAAAAAAAAAAAAAAAAAAAA'].join('.') },
  {
    name: 'JWS JSON serialization instead of compact',
    forge: (s) => {
      const [p, sig] = [genuine(s).split('.')[1], genuine(s).split('.')[2]];
      return JSON.stringify({ payload: p, signatures: [{ protected: b64u(H()), signature: sig }] });
    },
  },
  { name: 'huge (> 8 KiB) but genuinely signed', forge: (s) => genuine(s, { pad: 'x'.repeat(9000) }) },
];

function signWithInput(input: Buffer, key: KeyObject): string {
  // ES256 over raw bytes (for b64:false)
  return cryptoSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
}

describe('attestation controls (the forgeries below differ from these only by the attack)', () => {
  it('a genuine hand-built proof for an agent is accepted at /oauth/token', async () => {
    const r = await h.a.exchange(genuine('agent-a'), task);
    expect(r.status, r.text).toBe(200);
  });
  it('a genuine hand-built proof for an orchestrator opens a task', async () => {
    const r = await postJson(`${h.b.url}/v1/tasks`, WIDE_TASK, bearer(genuine('orch')));
    expect(r.status, r.text).toBe(201);
  });
  it('a genuine token of attestor "other" for its own registration is accepted', async () => {
    const t = es256({ alg: 'ES256', kid: 'other-1', typ: 'JWT' }, claims(h.clock, 'x', { iss: OTHER_ISS }), other().privateKey);
    const r = await h.a.exchange(t, task);
    expect(r.status, r.text).toBe(200);
  });
});

describe('a hostile proof as subject_token at POST /oauth/token: 400 invalid_request, nothing issued', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const before = await issued(h, task);
      const token = await c.forge('agent-a');
      const r = await h.a.exchange(token, task);
      expectError(r, 400, 'invalid_request');
      expect(await issued(h, task)).toBe(before);
    });
  }
});

describe('a hostile proof as Bearer at POST /v1/tasks: 401 invalid_token, no task created', () => {
  for (const c of cases.filter((x) => !x.exchangeOnly)) {
    it(c.name, async () => {
      const before = await taskRecordCount(h.b);
      const token = await c.forge('orch');
      const r = await postJson(`${h.b.url}/v1/tasks`, WIDE_TASK, bearer(token));
      expectError(r, 401, 'invalid_token');
      expect(r.headers.get('www-authenticate') ?? '').toMatch(/^Bearer /);
      expect(await taskRecordCount(h.b)).toBe(before);
    });
  }
});

describe('header-supplied key locations are never dereferenced', () => {
  it('the attacker key server saw zero requests after every jku/x5u case at both endpoints', () => {
    expect(keyServerHits).toEqual([]);
  });
});

describe('a Mayfly access token is not an attestation (delegation needs an actor_token)', () => {
  it('as subject_token with the jwt token type: 400 invalid_request, nothing issued', async () => {
    const before = await issued(h, task);
    const r = await h.a.exchange(accessToken, task);
    expectError(r, 400, 'invalid_request');
    expect(await issued(h, task)).toBe(before);
  });
  it('as subject_token with the access_token token type but no actor_token: 400 invalid_request, nothing issued', async () => {
    const before = await issued(h, task);
    const r = await h.a.exchange(accessToken, task, { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    expectError(r, 400, 'invalid_request');
    expect(await issued(h, task)).toBe(before);
  });
  it('as id_token type: 400 invalid_request', async () => {
    const r = await h.a.exchange(accessToken, task, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' });
    expectError(r, 400, 'invalid_request');
  });
  // a caller the broker knows (one of its own tokens) without the role: 403, as at operator endpoints
  it('as a Bearer to POST /v1/tasks: 403 access_denied, no task created', async () => {
    const before = await taskRecordCount(h.b);
    const r = await postJson(`${h.b.url}/v1/tasks`, WIDE_TASK, bearer(accessToken));
    expectError(r, 403, 'access_denied');
    expect(await taskRecordCount(h.b)).toBe(before);
  });
  it('as a Bearer to GET and close a task: 403, the task stays open', async () => {
    expectError(await h.a.getTask(task, accessToken), 403, 'access_denied');
    expectError(await h.a.close(task, accessToken), 403, 'access_denied');
    expect((await h.a.getTask(task)).body.state).toBe('open');
  });
  it('as the Bearer of an operator-only call (lock an identity): 403 access_denied', async () => {
    const r = await http(`${h.b.url}/v1/identities/${encodeURIComponent('spiffe://test.local/agent/a')}/lock`, { method: 'POST', headers: bearer(accessToken) });
    expectError(r, 403, 'access_denied');
  });
});

describe('a proof issued in the future (iat beyond the clock skew)', () => {
  // Since commit 369e0f3 jwt-attestor.ts no longer passes maxTokenAge to jose, and its own lifetime
  // check only bounds the age (now - iat), never a future iat: the brief requires refusal.
  it('iat 2 minutes ahead is refused at /oauth/token, nothing issued', async () => {
    const before = await issued(h, task);
    const r = await h.a.exchange(genuine('agent-a', { iat: now() + 120, nbf: undefined }), task);
    expectError(r, 400, 'invalid_request');
    expect(await issued(h, task)).toBe(before);
  });
  it('iat one year ahead opens no task', async () => {
    const before = await taskRecordCount(h.b);
    const r = await postJson(`${h.b.url}/v1/tasks`, WIDE_TASK, bearer(genuine('orch', { iat: now() + 365 * 86_400, nbf: undefined })));
    expectError(r, 401, 'invalid_token');
    expect(await taskRecordCount(h.b)).toBe(before);
  });
});

describe('the verified-proof cache never outlives the max_token_age check', () => {
  let c: HostileBroker;
  beforeAll(async () => {
    c = await hostileBroker();
  });
  afterAll(() => c.b.close());

  // attestation.ts serves a cached proof until its exp, skipping jwt-attestor's "iat older than
  // max_token_age" check that a never-seen copy of the same claims fails.
  it('a proof used while young is refused once its iat is older than max_token_age', async () => {
    const nowS = () => Math.floor(c.clock.now() / 1000);
    const mk = (jti: string) => es256(H(), claims(c.clock, 'agent-b', { iat: nowS() - 23 * 3600, nbf: nowS() - 23 * 3600, exp: nowS() + 23 * 3600, jti }), c.b.signers.main.privateKey);
    const cached = mk('first');
    const fresh = mk('second');
    const t1 = (await c.a.openTask(WIDE_TASK)).body.task_id as string;
    expect((await c.a.exchange(cached, t1)).status).toBe(200); // 23 h old: within max_token_age, now cached
    c.clock.advance(2 * 3_600_000); // both proofs are now 25 h old, still 21 h before exp
    const t2 = (await c.a.openTask(WIDE_TASK)).body.task_id as string;
    expectError(await c.a.exchange(fresh, t2), 400, 'invalid_request'); // the same claims, never seen: refused
    const before = await issued(c, t2);
    const r = await c.a.exchange(cached, t2);
    expectError(r, 400, 'invalid_request');
    expect(await issued(c, t2)).toBe(before);
  });
});

describe('a proof with an array-valued sub (RFC 7519: sub is a string)', () => {
  // claimsMatch (src/attest/match.ts valueMatches) treats an array as "any element matches", and jose
  // does not type-check `sub`, so one proof can carry two identities.
  it('sub ["agent-b"] is refused at /oauth/token', async () => {
    const before = await issued(h, task);
    const r = await h.a.exchange(genuine('x', { sub: ['agent-b'] }), task);
    expectError(r, 400, 'invalid_request');
    expect(await issued(h, task)).toBe(before);
  });
  it('sub ["agent-b", "orch"] opens no task (one proof, two identities)', async () => {
    const before = await taskRecordCount(h.b);
    const r = await postJson(`${h.b.url}/v1/tasks`, WIDE_TASK, bearer(genuine('x', { sub: ['agent-b', 'orch'] })));
    expectError(r, 401, 'invalid_token');
    expect(await taskRecordCount(h.b)).toBe(before);
  });
});

describe('odd subject_token transport', () => {
  it('the proof split across two subject_token parameters is refused as a repeated parameter', async () => {
    const g = genuine('agent-a');
    const r = await postForm(`${h.b.url}/oauth/token`, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: [g.slice(0, 100), g.slice(100)],
      subject_token_type: JWT_TYPE,
      task_id: task,
    });
    expectError(r, 400, 'invalid_request');
  });
  it('a proof prefixed with "Bearer " is refused', async () => {
    const r = await h.a.exchange(`Bearer ${genuine('agent-a')}`, task);
    expectError(r, 400, 'invalid_request');
  });
});

describe('attestor key sets that would let anyone sign, or nobody', () => {
  const cfg = (jwks: unknown) => ({ name: 'k8s', type: 'jwt' as const, issuer: ATTEST_ISS, audience: 'mayfly', jwks: jwks as Record<string, unknown> });
  it("refuses at start a key set holding RFC 7515 A.3's or RFC 8037's example key (their private halves are published)", async () => {
    const { JwtAttestor } = await import('../../src/attest/jwt-attestor.js');
    const rfc7515 = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
    const rfc8037 = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    for (const k of [rfc7515, rfc8037]) expect(() => new JwtAttestor(cfg({ keys: [k] }) as never)).toThrow(/private half is published/);
  });
  it('an empty key set starts, and attests nobody', async () => {
    const { JwtAttestor } = await import('../../src/attest/jwt-attestor.js');
    const a = new JwtAttestor(cfg({ keys: [] }) as never);
    expect(a.keyCount).toBe(0);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { SignJWT } = await import('jose');
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(ATTEST_ISS).setAudience('mayfly').setSubject('x').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    await expect(a.verify(jwt, Date.now())).rejects.toThrow();
  });
});
