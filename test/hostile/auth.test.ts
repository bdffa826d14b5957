/**
 * Operator-only surfaces under attack: /v1/identities/{id}[/lock], /v1/principals/{p}/revoke and
 * /v1/audit. Non-operators get 401 (no or malformed credentials) or 403 (a valid non-operator
 * credential); invalid SPIFFE IDs, principals and percent-encoding garbage are 400; nothing is changed by
 * a refused call; and no path trick reaches another resource.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, CLIENT, http, id, OPERATOR, WIDE_TASK } from '../helpers/broker.js';
import { bearer, expectClientError, expectError, hostileBroker, raw, type HostileBroker } from './support.js';

let h: HostileBroker;
let accessToken: string;
let task: string;
beforeAll(async () => {
  h = await hostileBroker();
  task = (await h.a.openTask(WIDE_TASK)).body.task_id;
  accessToken = (await h.a.exchange(await h.b.attest('agent-b'), task)).body.access_token;
});
afterAll(() => h.b.close());

const enc = encodeURIComponent;
const OP = () => bearer(OPERATOR.token);
const stillActive = async () => expect((await h.a.introspect(accessToken)).body.active).toBe(true);
const identityState = async (spiffe: string) => (await http(`${h.b.url}/v1/identities/${enc(spiffe)}`, { headers: OP() })).body;

/** Every operator-only call, aimed at agent/b (whose token must survive every refused attempt). */
const calls = (): [string, string, string][] => [
  ['POST', `/v1/identities/${enc(id('agent/b'))}/lock`, 'lock'],
  ['DELETE', `/v1/identities/${enc(id('agent/b'))}/lock`, 'unlock'],
  ['GET', `/v1/identities/${enc(id('agent/b'))}`, 'identity status'],
  ['POST', `/v1/principals/${enc('user:alice@example.com')}/revoke`, 'principal revoke'],
  ['GET', '/v1/audit', 'audit'],
];

describe('non-operators at operator-only endpoints', () => {
  const who = async (): Promise<[string, Record<string, string>, number, string][]> => [
    ['no Authorization', {}, 401, 'invalid_token'],
    // RFC 6750 §3.1: no credential of this broker at all is invalid_token (401); a caller it knows
    // (an attestation, one of its access tokens) without the operator role is refused (403)
    ['a garbage Bearer', bearer('garbage'), 401, 'invalid_token'],
    ['the operator token plus one character', bearer(`${OPERATOR.token}x`), 401, 'invalid_token'],
    ['the operator name as a Bearer', bearer(OPERATOR.name), 401, 'invalid_token'],
    ['client Basic credentials', basic(), 401, 'invalid_token'],
    ['the operator token over Basic', basic(OPERATOR.name, OPERATOR.token), 401, 'invalid_token'],
    ['the client secret as a Bearer', bearer(CLIENT.secret), 401, 'invalid_token'],
    ['an orchestrator attestation', bearer(await h.b.attest('orch')), 403, 'access_denied'],
    ['an agent attestation', bearer(await h.b.attest('agent-b')), 403, 'access_denied'],
    ['a Mayfly access token', bearer(accessToken), 403, 'access_denied'],
    ['a malformed Bearer header', { authorization: 'Bearer a b' }, 401, 'invalid_token'],
    ['the operator token without a scheme', { authorization: OPERATOR.token }, 401, 'invalid_token'],
  ];
  it('every call refuses every non-operator credential with 401/403 and changes nothing', async () => {
    for (const [label, headers, status, code] of await who()) {
      for (const [method, path, name] of calls()) {
        const r = await raw(h.b.url, { method, path, headers });
        try {
          expectError(r, status, code);
        } catch (e) {
          throw new Error(`${name} with ${label}: ${(e as Error).message}`);
        }
        if (status === 401) expect(r.headers.get('www-authenticate') ?? '').toMatch(/^Bearer realm="mayfly"/);
      }
    }
    expect((await identityState(id('agent/b'))).locked).toBe(false);
    await stillActive();
    // the principal was not revoked: a task for alice opened now still works
    const t = (await h.a.openTask({ ...WIDE_TASK, on_behalf_of: 'user:alice@example.com' })).body.task_id;
    expect((await h.a.exchange(await h.b.attest('agent-b'), t)).status).toBe(200);
  });
  it('control: the operator gets 200 on the read-only calls', async () => {
    expect((await raw(h.b.url, { method: 'GET', path: `/v1/identities/${enc(id('agent/b'))}`, headers: OP() })).status).toBe(200);
    expect((await raw(h.b.url, { method: 'GET', path: '/v1/audit', headers: OP() })).status).toBe(200);
  });
});

describe('method override tricks', () => {
  it('X-HTTP-Method-Override / X-HTTP-Method on a POST lock does not turn it into an unlock', async () => {
    const target = id('agent/override');
    expect((await raw(h.b.url, { method: 'POST', path: `/v1/identities/${enc(target)}/lock`, headers: OP() })).status).toBe(200);
    for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      const r = await raw(h.b.url, { method: 'POST', path: `/v1/identities/${enc(target)}/lock`, headers: { ...OP(), [header]: 'DELETE' } });
      expect(r.status).toBe(200);
      expect(r.body.locked).toBe(true);
    }
    expect((await identityState(target)).locked).toBe(true);
  });
  it('a _method query parameter does not turn a GET into a lock', async () => {
    const target = id('agent/override-get');
    const r = await raw(h.b.url, { method: 'GET', path: `/v1/identities/${enc(target)}/lock?_method=POST`, headers: OP() });
    // GET on the lock is 405 (Allow: DELETE, OPTIONS, POST): neither a lock nor another identity's state
    expect(r.status, r.text).toBe(405);
    expect(r.headers.get('allow')).toBe('DELETE, OPTIONS, POST');
    expect((await identityState(target)).locked).toBe(false);
  });
});

describe('invalid SPIFFE IDs in identity paths: 400 invalid_request, nothing locked', () => {
  const bad: [string, string][] = [
    ['not a SPIFFE ID', enc('agent-b')],
    ['uppercase trust domain', enc('spiffe://TEST.local/agent/b')],
    ['a .. segment', enc('spiffe://test.local/agent/../orch')],
    ['a . segment', enc('spiffe://test.local/./agent/b')],
    ['a trailing slash', enc('spiffe://test.local/agent/b/')],
    ['an empty segment', enc('spiffe://test.local/agent//b')],
    ['no path', enc('spiffe://test.local')],
    ['a pattern, not an ID', enc('spiffe://test.local/agent/*')],
    ['a query inside the ID', enc('spiffe://test.local/agent/b?x')],
    ['a NUL inside the ID', enc('spiffe://test.local/agent/b\u0000')],
    ['a Cyrillic homoglyph', enc('spiffe://test.local/\u0430gent/b')],
    ['a percent-encoded byte inside the ID', enc('spiffe://test.local/agent%2Fb')],
    ['double-encoded', enc(enc(id('agent/b')))],
    ['percent-encoding garbage %ZZ', '%ZZ'],
    ['a lone %', 'spiffe%3A%2F%2Ftest.local%2Fagent%2F%'],
    ['a truncated escape %E0%A4%A', 'spiffe%3A%2F%2Ftest.local%2Fagent%2F%E0%A4%A'],
    ['an encoded invalid UTF-8 byte %FF', 'spiffe%3A%2F%2Ftest.local%2Fagent%2F%FF'],
    ['an overlong encoding of "/" (%C0%AF)', 'spiffe%3A%2F%2Ftest.local%2Fagent%C0%AFb'],
    ['longer than 2048 characters', enc(`spiffe://test.local/${'a'.repeat(2100)}`)],
  ];
  for (const [label, seg] of bad) {
    it(label, async () => {
      for (const [method, suffix] of [['POST', '/lock'], ['DELETE', '/lock'], ['GET', '']] as const) {
        const r = await raw(h.b.url, { method, path: `/v1/identities/${seg}${suffix}`, headers: OP() });
        try {
          expectError(r, 400, 'invalid_request');
        } catch (e) {
          throw new Error(`${method} ${suffix}: ${(e as Error).message}`);
        }
      }
      expect((await identityState(id('agent/b'))).locked).toBe(false);
      expect((await identityState(id('orch'))).locked).toBe(false);
      await stillActive();
    });
  }
  it('an unencoded ID in the path is still exactly that ID (and valid ones are accepted)', async () => {
    const r = await raw(h.b.url, { method: 'GET', path: `/v1/identities/${id('agent/b')}`, headers: OP() });
    expect(r.status, r.text).toBe(200);
    expect(r.body.spiffe_id).toBe(id('agent/b'));
  });
  it('a path that smuggles ".." cannot reach another identity or resource', async () => {
    for (const path of [
      `/v1/identities/${enc(id('agent/a'))}/..%2F..%2F${enc(id('agent/b'))}/lock`,
      `/v1/identities/${enc(id('x'))}%2F..%2F..%2Flock`,
      `/v1/identities/..%2F..%2Fv1%2Faudit/lock`,
    ]) {
      const r = await raw(h.b.url, { method: 'POST', path, headers: OP() });
      expect([400, 404, 405], `${path}: ${r.text}`).toContain(r.status); // 400 bad ID, 404 no such route, 405 a route of another method
      expectClientError(r);
    }
    expect((await identityState(id('agent/b'))).locked).toBe(false);
    await stillActive();
  });
});

describe('invalid principals: 400 invalid_request, nothing revoked', () => {
  for (const [label, seg] of [
    ['no kind', enc('alice')],
    ['upper-case kind', enc('User:alice@example.com')],
    ['empty value', enc('user:')],
    ['empty kind', enc(':alice')],
    ['a space', enc('user:al ice')],
    ['non-ASCII', enc('user:al\u00efce')],
    ['a NUL', enc('user:alice\u0000')],
    ['a 300-character value', enc(`user:${'a'.repeat(300)}`)],
    ['percent-encoding garbage %ZZ', '%ZZ'],
    ['a lone %', 'user%3Aalice%'],
    ['an encoded invalid UTF-8 byte', 'user%3A%FF'],
  ] as const) {
    it(label, async () => {
      const r = await raw(h.b.url, { method: 'POST', path: `/v1/principals/${seg}/revoke`, headers: OP() });
      expectError(r, 400, 'invalid_request');
    });
  }
  it('a newline (%0A) in the principal: a 4xx (the route does not match a line break), nothing revoked', async () => {
    const r = await raw(h.b.url, { method: 'POST', path: `/v1/principals/${enc('user:alice\nuser:bob')}/revoke`, headers: OP() });
    expect([400, 404]).toContain(r.status);
    expectClientError(r);
  });
  it('a principal containing "/" is one principal, not a path', async () => {
    const t = (await h.a.openTask({ ...WIDE_TASK, on_behalf_of: 'team:a/b' })).body.task_id;
    const tok = (await h.a.exchange(await h.b.attest('agent-b'), t)).body.access_token;
    const r = await raw(h.b.url, { method: 'POST', path: `/v1/principals/${enc('team:a/b')}/revoke`, headers: OP() });
    expect(r.status, r.text).toBe(200);
    expect(r.body.principal).toBe('team:a/b');
    expect((await h.a.introspect(tok)).body).toEqual({ active: false });
    await stillActive();
  });
  it('wrong methods on the principal route are 405 (Allow: POST), not a revocation', async () => {
    for (const method of ['GET', 'DELETE', 'PUT']) {
      const r = await raw(h.b.url, { method, path: `/v1/principals/${enc('user:zed@example.com')}/revoke`, headers: OP() });
      expectError(r, 405, 'method_not_allowed');
      expect(r.headers.get('allow')).toBe('OPTIONS, POST');
    }
    const revoked = (await raw(h.b.url, { method: 'GET', path: '/v1/principals', headers: OP() })).body.revoked as { principal: string }[];
    expect(revoked.map((p) => p.principal)).not.toContain('user:zed@example.com');
  });
});

describe('the audit endpoint with hostile cursors', () => {
  for (const q of ['after=abc', 'after=1-2-3', 'after=-1', 'after=1-', 'after=%00', 'after=1-1%0D%0AXADD', 'limit=0x10', 'limit=-1', 'limit=99999', 'limit=abc', `after=${'9'.repeat(21)}-0`]) {
    it(`${q}: 400 invalid_request`, async () => {
      const r = await raw(h.b.url, { method: 'GET', path: `/v1/audit?${q}`, headers: OP() });
      expectError(r, 400, 'invalid_request');
    });
  }
  // src/http/routes/audit.ts accepts up to 20 digits per part, but Redis stream ids are unsigned 64-bit
  // (max 18446744073709551615): XRANGE fails, RedisStore.cmd wraps it as StoreUnavailableError, and a
  // bad cursor is answered 503 "credential store unreachable" (with Retry-After) instead of 400.
  for (const q of ['after=99999999999999999999-0', 'after=18446744073709551615-18446744073709551615', 'after=18446744073709551616-0']) {
    it(`${q} (beyond 64 bits): 400 invalid_request, not 503 "store unreachable"`, async () => {
      const r = await raw(h.b.url, { method: 'GET', path: `/v1/audit?${q}`, headers: OP() });
      expectError(r, 400, 'invalid_request');
    });
    it(`${q}: never a 500`, async () => {
      const r = await raw(h.b.url, { method: 'GET', path: `/v1/audit?${q}`, headers: OP() });
      expect(r.status).not.toBe(500);
      expect(r.status).not.toBe(200);
    });
  }
  it('limit=1 and limit=1000 are the bounds (control); limit=0 is refused, not clamped', async () => {
    expect((await raw(h.b.url, { method: 'GET', path: '/v1/audit?limit=1', headers: OP() })).status).toBe(200);
    expect((await raw(h.b.url, { method: 'GET', path: '/v1/audit?limit=1000', headers: OP() })).status).toBe(200);
    expectError(await raw(h.b.url, { method: 'GET', path: '/v1/audit?limit=0', headers: OP() }), 400, 'invalid_request');
  });
  it('no audit event carries a token or a secret, even after hostile calls', async () => {
    const r = await raw(h.b.url, { method: 'GET', path: '/v1/audit?limit=1000', headers: OP() });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain(accessToken);
    expect(r.text).not.toContain(OPERATOR.token);
    expect(r.text).not.toContain(CLIENT.secret);
    expect(r.text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});

describe('the revocation feed (GET /v1/revocations) with hostile cursors and credentials', () => {
  it('no credentials, a garbage Basic and a non-operator Bearer: 401 invalid_client', async () => {
    for (const headers of [{}, { authorization: 'Basic !!!' }, bearer(accessToken)]) {
      const r = await raw(h.b.url, { method: 'GET', path: '/v1/revocations', headers });
      expectError(r, 401, 'invalid_client');
    }
  });
  for (const q of ['since=abc', 'since=1-', 'since=-1-1', 'since=1-1%00', 'limit=0', 'limit=10001', 'limit=-5', 'limit=1e3']) {
    it(`${q}: 400 invalid_request`, async () => {
      expectError(await raw(h.b.url, { method: 'GET', path: `/v1/revocations?${q}`, headers: basic() }), 400, 'invalid_request');
    });
  }
  // src/feed/read.ts CURSOR accepts 20 digits per part; Redis stream ids are unsigned 64-bit, so
  // RedisStore.readRevocations' XRANGE fails and the error is reported as a store outage (503).
  for (const q of ['since=99999999999999999999-0', 'since=18446744073709551615-18446744073709551615']) {
    it(`${q} (beyond 64 bits): 400 invalid_request, not 503 "store unreachable"`, async () => {
      expectError(await raw(h.b.url, { method: 'GET', path: `/v1/revocations?${q}`, headers: basic() }), 400, 'invalid_request');
    });
    it(`${q}: never a 500 or a 200`, async () => {
      const r = await raw(h.b.url, { method: 'GET', path: `/v1/revocations?${q}`, headers: basic() });
      expect(r.status).not.toBe(500);
      expect(r.status).not.toBe(200);
    });
  }
});
