/**
 * Introspection (RFC 7662) and revocation (RFC 7009) under attack: missing, wrong and malformed client
 * authentication is 401 invalid_client and leaks nothing; every forged, alg-confused, tampered, expired
 * or foreign token is exactly {active: false}; revocation answers 200 for garbage, revokes only what it
 * verifies, and one revoked token leaves its siblings active.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, basic, CLIENT, OPERATOR, postForm, WIDE_TASK } from '../helpers/broker.js';
import {
  b64u,
  bearer,
  changeCharAt,
  compact,
  counts,
  decodePart,
  es256,
  expectError,
  expectInactive,
  flipSignatureBit,
  FORM,
  hostileBroker,
  hs256,
  raw,
  attackerKey,
  type HostileBroker,
} from './support.js';
import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';

let h: HostileBroker;
let task: string;
let token: string;

beforeAll(async () => {
  h = await hostileBroker();
  task = (await h.a.openTask({ ...WIDE_TASK, ttl: '2h' })).body.task_id;
  token = (await h.a.exchange(await h.b.attest('agent-a'), task)).body.access_token;
});
afterAll(() => h.b.close());

const introspectUrl = () => `${h.b.url}/oauth/introspect`;
const revokeUrl = () => `${h.b.url}/oauth/revoke`;
const fresh = async (sub = 'agent-a', t = task) => {
  const r = await h.a.exchange(await h.b.attest(sub), t);
  expect(r.status, r.text).toBe(200);
  return r.body.access_token as string;
};
/** The broker's own signing key (a test may use it to build "correctly signed but wrong" tokens). */
const ownKey = () => h.b.running.broker.keyring.signing as { kid: string; alg: string; privateKey: KeyObject };
const signOwn = (header: object, payload: object) => {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key: ownKey().privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
};
const ownHeader = () => ({ alg: 'ES256', kid: ownKey().kid, typ: 'at+jwt' });

describe('client authentication at introspection and revocation: 401 invalid_client, nothing revealed', () => {
  const badAuth: [string, Record<string, string>][] = [
    ['no Authorization', {}],
    ['wrong secret', basic(CLIENT.id, 'wrong')],
    ['empty secret', basic(CLIENT.id, '')],
    ['secret with a trailing space', basic(CLIENT.id, `${CLIENT.secret} `)],
    ['secret prefix', basic(CLIENT.id, CLIENT.secret.slice(0, -1))],
    ['unknown client', basic('nobody', CLIENT.secret)],
    ['client id in upper case', basic(CLIENT.id.toUpperCase(), CLIENT.secret)],
    ['Basic that is not base64', { authorization: 'Basic !!!not-base64***' }],
    ['Basic with no colon', { authorization: `Basic ${Buffer.from(`${CLIENT.id}${CLIENT.secret}`).toString('base64')}` }],
    ['Basic of an empty string', { authorization: 'Basic ' }],
    ['Basic of ":"', { authorization: `Basic ${Buffer.from(':').toString('base64')}` }],
    ['Basic with percent-encoding garbage in the id', { authorization: `Basic ${Buffer.from(`%ZZ:${CLIENT.secret}`).toString('base64')}` }],
    ['Basic with percent-encoding garbage in the secret', { authorization: `Basic ${Buffer.from(`${CLIENT.id}:%E0%A4%A`).toString('base64')}` }],
    ['Basic of invalid UTF-8', { authorization: `Basic ${Buffer.from([0xff, 0x3a, 0xfe]).toString('base64')}` }],
    ['Basic with the operator name and token', basic(OPERATOR.name, OPERATOR.token)],
    ['the client secret as a Bearer', bearer(CLIENT.secret)],
    ['a garbage Bearer', bearer('garbage')],
    ['a bare "Bearer"', { authorization: 'Bearer' }],
    ['a Digest scheme', { authorization: 'Digest username="rs"' }],
    ['the operator token without a scheme', { authorization: OPERATOR.token }],
  ];
  for (const [label, headers] of badAuth) {
    it(`${label}: introspect and revoke refuse, the token stays active`, async () => {
      const i = await postForm(introspectUrl(), { token }, headers);
      expectError(i, 401, 'invalid_client');
      expect(i.headers.get('www-authenticate')).toMatch(/^Basic realm="mayfly"/);
      expect(i.text).not.toContain('active');
      const r = await postForm(revokeUrl(), { token }, headers);
      expectError(r, 401, 'invalid_client');
      expect((await h.a.introspect(token)).body.active).toBe(true);
    });
  }

  it('a Bearer that is not the operator token (a Mayfly access token, an attestation): 401 invalid_client', async () => {
    for (const t of [token, await h.b.attest('orch'), await h.b.attest('agent-a')]) {
      expectError(await postForm(introspectUrl(), { token }, bearer(t)), 401, 'invalid_client');
      expectError(await postForm(revokeUrl(), { token }, bearer(t)), 401, 'invalid_client');
    }
    expect((await h.a.introspect(token)).body.active).toBe(true);
  });

  // src/http/auth.ts requireClientOrOperator calls bearer(), which throws invalid_token for a
  // malformed Bearer header; at /oauth/introspect and /oauth/revoke the contract is invalid_client.
  it('a malformed Bearer header ("Bearer a b") is invalid_client, like every other client-auth failure', async () => {
    const r = await raw(h.b.url, { path: '/oauth/introspect', body: `token=${token}`, headers: { ...FORM, authorization: 'Bearer a b' } });
    expectError(r, 401, 'invalid_client');
  });
  it('a malformed Bearer header is at least a 401 and leaks nothing', async () => {
    for (const path of ['/oauth/introspect', '/oauth/revoke']) {
      const r = await raw(h.b.url, { path, body: `token=${token}`, headers: { ...FORM, authorization: 'Bearer a b' } });
      expect(r.status).toBe(401);
      expect(typeof r.body.error_description).toBe('string');
      expect(r.text).not.toContain('active');
    }
    expect((await h.a.introspect(token)).body.active).toBe(true);
  });

  // src/http/auth.ts clientFromBasic decodes with Buffer.from(x, 'base64'), which skips characters
  // outside the alphabet and stops at padding: junk around valid credentials still authenticates. Not a
  // bypass (the secret is still required), but a malformed header (RFC 7617 token68) is accepted.
  describe('Basic credentials that are not strict base64 token68', () => {
    const good = Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64');
    for (const [label, value] of [
      ['the credentials twice', `Basic ${good} ${good}`],
      ['junk after the padding', `Basic ${good}!!!garbage`],
      ['a "*" inside the base64', `Basic ${good.slice(0, 10)}*${good.slice(10)}`],
    ] as const) {
      it(`${label}: 401 invalid_client`, async () => {
        const r = await raw(h.b.url, { path: '/oauth/introspect', body: `token=${token}`, headers: { ...FORM, authorization: value } });
        expectError(r, 401, 'invalid_client');
      });
    }
  });

  it('controls: the client (Basic) and the operator (Bearer) are accepted', async () => {
    expect((await h.a.introspect(token)).body.active).toBe(true);
    expect((await h.a.introspect(token, bearer(OPERATOR.token))).body.active).toBe(true);
    const encoded = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT.id)}:${encodeURIComponent(CLIENT.secret)}`).toString('base64')}`;
    expect((await h.a.introspect(token, { authorization: encoded })).body.active).toBe(true);
  });
});

describe('malformed introspection and revocation requests (authenticated): 400 invalid_request', () => {
  for (const [label, path] of [['introspect', '/oauth/introspect'], ['revoke', '/oauth/revoke']] as const) {
    it(`${label}: token missing`, async () => {
      expectError(await postForm(`${h.b.url}${path}`, { token_type_hint: 'access_token' }, basic()), 400, 'invalid_request');
    });
    it(`${label}: token empty`, async () => {
      expectError(await postForm(`${h.b.url}${path}`, { token: '' }, basic()), 400, 'invalid_request');
    });
    it(`${label}: token repeated (one valid, one garbage)`, async () => {
      expectError(await postForm(`${h.b.url}${path}`, { token: [token, 'x'] }, basic()), 400, 'invalid_request');
      expect((await h.a.introspect(token)).body.active).toBe(true);
    });
    it(`${label}: a JSON body`, async () => {
      const r = await raw(h.b.url, { path, body: JSON.stringify({ token }), headers: { 'content-type': 'application/json', ...basic() } });
      expectError(r, 400, 'invalid_request');
    });
    it(`${label}: the token in the query string only`, async () => {
      const r = await raw(h.b.url, { path: `${path}?token=${token}`, body: '', headers: { ...FORM, ...basic() } });
      expectError(r, 400, 'invalid_request');
      expect((await h.a.introspect(token)).body.active).toBe(true);
    });
    it(`${label}: invalid UTF-8 in the body`, async () => {
      const r = await raw(h.b.url, { path, body: Buffer.concat([Buffer.from('token='), Buffer.from([0xff, 0xfe])]), headers: { ...FORM, ...basic() } });
      expectError(r, 400, 'invalid_request');
    });
    it(`${label}: a token over 8 KiB`, async () => {
      expectError(await postForm(`${h.b.url}${path}`, { token: `${token}${'A'.repeat(9000)}` }, basic()), 400, 'invalid_request');
    });
  }
});

describe('forged, confused, tampered and foreign tokens introspect as exactly {active: false}', () => {
  const forged: [string, () => string | Promise<string>][] = [
    ['alg none with the real claims', () => compact({ alg: 'none', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(token, 1))],
    ['alg none with the real claims and signature', () => `${b64u({ alg: 'none', kid: ownKey().kid, typ: 'at+jwt' })}.${token.split('.')[1]}.${token.split('.')[2]}`],
    [
      'HS256 keyed with our published JWK',
      async () => {
        const jwks = (await (await fetch(`${h.b.url}/.well-known/jwks.json`)).json()) as { keys: object[] };
        return hs256({ alg: 'HS256', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(token, 1), JSON.stringify(jwks.keys[0]));
      },
    ],
    ['HS256 keyed with our public key PEM', () => hs256({ alg: 'HS256', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(token, 1), createPublicKey(ownKey().privateKey).export({ type: 'spki', format: 'pem' }) as string)],
    ['signed by an attacker key under our kid', async () => es256({ alg: 'ES256', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(token, 1), (await attackerKey('x')).privateKey)],
    ['an unknown kid', async () => es256({ alg: 'ES256', kid: 'rotated-away', typ: 'at+jwt' }, decodePart(token, 1), (await attackerKey('x')).privateKey)],
    ['scope widened, signature kept', () => `${token.split('.')[0]}.${b64u({ ...decodePart(token, 1), scope: 'read write admin' })}.${token.split('.')[2]}`],
    ['task_id swapped, signature kept', () => `${token.split('.')[0]}.${b64u({ ...decodePart(token, 1), task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' })}.${token.split('.')[2]}`],
    ['exp extended, signature kept', () => `${token.split('.')[0]}.${b64u({ ...decodePart(token, 1), exp: 9_999_999_999 })}.${token.split('.')[2]}`],
    ['typ changed to JWT, signature kept', () => `${b64u({ alg: 'ES256', kid: ownKey().kid, typ: 'JWT' })}.${token.split('.')[1]}.${token.split('.')[2]}`],
    ['header with an extra jku (our key, really signed)', () => signOwn({ ...ownHeader(), jku: 'http://127.0.0.1:1/jwks' }, decodePart(token, 1))],
    ['header with an embedded jwk (our key, really signed)', async () => signOwn({ ...ownHeader(), jwk: (await attackerKey('x')).publicJwk }, decodePart(token, 1))],
    ['typ JWT (our key, really signed)', () => signOwn({ alg: 'ES256', kid: ownKey().kid, typ: 'JWT' }, decodePart(token, 1))],
    ['wrong iss (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), iss: 'https://evil.test' })],
    ['iss with a trailing slash (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), iss: `${h.b.url}/` })],
    ['iat 10 minutes in the future (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), iat: Math.floor(h.clock.now() / 1000) + 600 })],
    ['nbf 10 minutes in the future (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), nbf: Math.floor(h.clock.now() / 1000) + 600 })],
    ['nbf as a string (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), nbf: '0' })],
    ['exp in the past (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), exp: Math.floor(h.clock.now() / 1000) - 1 })],
    ['exp as a string (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), exp: '9999999999' })],
    ['jti missing (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), jti: undefined })],
    ['tools not a list (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), tools: 'deploy' })],
    ['a task that does not exist (our key, really signed)', () => signOwn(ownHeader(), { ...decodePart(token, 1), task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' })],
    ['payload a JSON array (our key, really signed)', () => signOwn(ownHeader(), [])],
    ['signature bit flipped', () => flipSignatureBit(token, 10, 2)],
    ['signature truncated', () => token.slice(0, -8)],
    ['signature removed', () => token.split('.').slice(0, 2).join('.') + '.'],
    ['signature in DER instead of r||s', () => {
      const [hh, pp, ss] = token.split('.') as [string, string, string];
      const rs = Buffer.from(ss, 'base64url');
      const int = (b: Buffer) => {
        let x = b;
        while (x.length > 1 && x[0] === 0 && x[1]! < 0x80) x = x.subarray(1);
        return x[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), x]) : x;
      };
      const r = int(rs.subarray(0, 32));
      const s = int(rs.subarray(32));
      const der = Buffer.concat([Buffer.from([0x30, r.length + s.length + 4, 0x02, r.length]), r, Buffer.from([0x02, s.length]), s]);
      return `${hh}.${pp}.${der.toString('base64url')}`;
    }],
    ['an attestation JWT', () => h.b.attest('agent-a')],
    ['the operator token', () => OPERATOR.token],
    ['the client secret', () => CLIENT.secret],
    ['"a.b.c"', () => 'a.b.c'],
    ['"..."', () => '...'],
    ['"e30.e30.e30"', () => 'e30.e30.e30'],
    ['a JWE-shaped 5-part string', () => 'eyJhbGciOiJkaXIifQ..AAAA.AAAA.AAAA'],
    ['the token with a trailing dot', () => `${token}.`],
    ['the token with surrounding spaces', () => ` ${token} `],
    ['the token lowercased', () => token.toLowerCase()],
    ['the token in standard base64 (+/ and padding)', () => token.split('.').map((p) => Buffer.from(p, 'base64url').toString('base64')).join('.')],
    ['the token with a NUL appended', () => `${token}\u0000`],
    ['exactly 8192 characters of "A"', () => 'A'.repeat(8192)],
  ];
  for (const [label, make] of forged) {
    it(label, async () => {
      const t = await make();
      expectInactive(await h.a.introspect(t));
      expectInactive(await h.a.introspect(t, bearer(OPERATOR.token)));
    });
  }
  it('control: the genuine token is still active after all of the above', async () => {
    expect((await h.a.introspect(token)).body.active).toBe(true);
  });
});

describe('one character changed anywhere in a valid token makes it inactive', () => {
  it('every position of the header, the payload and the signature (but its last character) and both dots', async () => {
    const t = await fresh('agent-b');
    const lastSig = t.length - 1;
    const stillActive: number[] = [];
    for (let i = 0; i < lastSig; i++) {
      const r = await h.a.introspect(changeCharAt(t, i));
      if (r.status !== 200 || r.body.active !== false) stillActive.push(i);
    }
    expect(stillActive).toEqual([]);
    expect((await h.a.introspect(t)).body.active).toBe(true);
  });

  // An ES256 signature is 64 bytes = 85⅓ base64url characters: the last character carries 2 bits and
  // 4 padding bits that Buffer.from(s, 'base64url') (src/issue/jws.ts decodeOwnFormat) silently drops.
  // A verifier should accept only the canonical encoding (RFC 4648 §3.5; RFC 7515 §2), else one token
  // has 16 spellings that all introspect as active (and all but one miss any exact-string cache/denylist
  // a resource server keeps).
  it('changing only the padding bits of the last signature character makes the token inactive', async () => {
    const t = await fresh('agent-b');
    const last = t.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const i = alphabet.indexOf(last);
    const sameBits = alphabet.split('').filter((c, j) => c !== last && j >> 4 === i >> 4);
    expect(sameBits.length).toBe(15);
    const active: string[] = [];
    for (const c of sameBits) if ((await h.a.introspect(changeCharAt(t, t.length - 1, c))).body.active) active.push(c);
    expect(active).toEqual([]);
  });
});

describe('expiry', () => {
  it('a token past its exp is {active: false}', async () => {
    const t2 = (await h.a.openTask({ ...WIDE_TASK, ttl: '1h' })).body.task_id as string;
    const t = await fresh('agent-a', t2); // agent-a: max_ttl 2m
    h.clock.advance(120_000);
    expectInactive(await h.a.introspect(t));
    // and revoking it is a no-op that still answers 200
    const r = await h.a.revoke(t);
    expect(r.status).toBe(200);
  });
});

describe('RFC 7009 revocation', () => {
  it('answers 200 with an empty body for garbage, foreign and forged tokens, and revokes nothing', async () => {
    const victim = await fresh('agent-b');
    const garbage = [
      'garbage',
      'a.b.c',
      await h.b.attest('agent-b'),
      OPERATOR.token,
      compact({ alg: 'none', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(victim, 1)), // the victim's jti, unsigned
      `${victim.split('.')[0]}.${victim.split('.')[1]}.${'A'.repeat(86)}`, // the victim's claims, zero signature
      flipSignatureBit(victim, 5),
      es256({ alg: 'ES256', kid: ownKey().kid, typ: 'at+jwt' }, decodePart(victim, 1), (await attackerKey('x')).privateKey),
      'x'.repeat(8192),
    ];
    for (const g of garbage) {
      const r = await h.a.revoke(g);
      expect(r.status, r.text).toBe(200);
      expect(r.text).toBe('');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    expect((await h.a.introspect(victim)).body.active).toBe(true);
  });

  it('revokes a real token; the other tokens of the task stay active; the task still mints', async () => {
    const t = (await h.a.openTask(WIDE_TASK)).body.task_id as string;
    const [a, b, c] = [await fresh('agent-a', t), await fresh('agent-b', t), await fresh('agent-a', t)];
    const before = await counts(h, t);
    expect(before).toMatchObject({ issued: 3, active: 3 });

    const r = await h.a.revoke(a);
    expect(r.status).toBe(200);
    expectInactive(await h.a.introspect(a));
    expect((await h.a.introspect(b)).body.active).toBe(true);
    expect((await h.a.introspect(c)).body.active).toBe(true);

    const after = await counts(h, t);
    expect(after.issued).toBe(3);
    expect(after.active).toBe(2);

    const again = await h.a.revoke(a);
    expect(again.status).toBe(200);
    expect((await counts(h, t)).active).toBe(2);

    const d = await fresh('agent-a', t);
    expect((await h.a.introspect(d)).body.active).toBe(true);
    expect((await h.a.getTask(t, OPERATOR.token)).body.state).toBe('open');
  });

  it('an operator may revoke; a wrong token_type_hint does not stop it (RFC 7009 §2.1)', async () => {
    const t = await fresh('agent-b');
    const r = await postForm(revokeUrl(), { token: t, token_type_hint: 'refresh_token' }, bearer(OPERATOR.token));
    expect(r.status).toBe(200);
    expectInactive(await h.a.introspect(t));
  });

  it('a tampered copy of a real token (scope widened) does not revoke the original', async () => {
    const t = await fresh('agent-b');
    const tampered = `${t.split('.')[0]}.${b64u({ ...decodePart(t, 1), scope: 'admin' })}.${t.split('.')[2]}`;
    expect((await h.a.revoke(tampered)).status).toBe(200);
    expect((await h.a.introspect(t)).body.active).toBe(true);
  });

  it('introspection never returns claims for a revoked token, even to the operator', async () => {
    const t = await fresh('agent-a');
    await h.a.revoke(t);
    expectInactive(await h.a.introspect(t, bearer(OPERATOR.token)));
  });

  it('the answer for an active token names its audience (control for the shape above)', async () => {
    const t = await fresh('agent-a');
    const i = (await h.a.introspect(t)).body;
    expect(i).toMatchObject({ active: true, token_type: 'Bearer', aud: API, task_id: task });
  });
});
