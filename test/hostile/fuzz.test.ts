/**
 * Property-based fuzzing (fast-check) of every endpoint that reads a body or a path parameter.
 * Properties: never a 5xx; /oauth/token never answers 200 to random input; every refusal has the
 * standard error body; and for structured, mostly-valid requests, whatever is granted stays inside the
 * ceilings and the issued/task counts move exactly with the successes (no partial state).
 * Deterministic: a fixed seed (override with FUZZ_SEED=n), bounded runs (FUZZ_RUNS, default 200).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { API, basic, id, JWT_TYPE, OPERATOR, OTHER_API, OTHER_ISS, TOKEN_EXCHANGE, WIDE_TASK } from '../helpers/broker.js';
import { bearer, closeProbes, compact, counts, FORM, hostileBroker, JSON_CT, raw, taskRecordCount, type HostileBroker } from './support.js';
import type { Res } from '../helpers/broker.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_125);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const params = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: false });

let h: HostileBroker;
let wide: string;
let narrow: string;
let closed: string;
let proofs: Record<string, string>;
let realToken: string;

beforeAll(async () => {
  h = await hostileBroker();
  wide = (await h.a.openTask({ ...WIDE_TASK, ttl: '2h' })).body.task_id;
  narrow = (await h.a.openTask({ agents: [id('agent/b')], scopes: ['read'], tools: ['search'], audiences: [API], ttl: '2h' })).body.task_id;
  closed = (await h.a.openTask(WIDE_TASK)).body.task_id;
  await h.a.close(closed);
  proofs = {
    'agent-a': await h.b.attest('agent-a'),
    'agent-b': await h.b.attest('agent-b'),
    'other-x': await h.b.attest('x', { signer: h.b.signers.other, iss: OTHER_ISS }),
    orch: await h.b.attest('orch'),
    'orch-narrow': await h.b.attest('orch-narrow'),
    forged: compact({ alg: 'none', typ: 'JWT' }, { iss: 'https://attest.test', sub: 'agent-b', aud: 'mayfly', exp: 9_999_999_999 }),
  };
  realToken = (await h.a.exchange(proofs['agent-b']!, wide)).body.access_token;
});
afterAll(async () => {
  await closeProbes(h.b);
  await h.b.close();
});

/** No 5xx ever; a 4xx carries the standard body. */
function sane(r: Res, what: string): void {
  if (r.status >= 500) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status >= 400) {
    if (typeof r.body?.error !== 'string' || typeof r.body?.error_description !== 'string' || r.body.error_description.length === 0)
      throw new Error(`${what}: ${r.status} without the error body: ${r.text.slice(0, 300)}`);
  }
}

/** The POST endpoints that read a body, with the credentials each needs to get past authentication. */
const endpoints = () =>
  [
    { path: '/oauth/token', headers: {} as Record<string, string> },
    { path: '/oauth/introspect', headers: basic() },
    { path: '/oauth/revoke', headers: basic() },
    { path: '/v1/tasks', headers: bearer(OPERATOR.token) },
    { path: '/v1/audit/usage', headers: basic() },
    { path: '/v1/certificates', headers: bearer(OPERATOR.token) },
    { path: '/v1/join-tokens', headers: bearer(OPERATOR.token) },
  ] as const;

const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constant(FORM['content-type']) },
  { weight: 3, arbitrary: fc.constant(JSON_CT['content-type']) },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded; charset=latin1', 'application/ld+json', 'multipart/form-data; boundary=--', '') },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }) },
);

describe('random bytes and strings as bodies never produce a 5xx (and never a token)', () => {
  for (const [i, ep] of endpoints().entries()) {
    it(`random bytes → POST ${ep.path}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), contentType, async (bytes, ct) => {
          const r = await raw(h.b.url, { path: ep.path, body: Buffer.from(bytes), headers: { ...ep.headers, ...(ct ? { 'content-type': ct } : {}) } });
          sane(r, `${ep.path} bytes`);
          if (ep.path === '/oauth/token') expect(r.status).not.toBe(200);
          if (ep.path === '/v1/tasks') expect(r.status).not.toBe(201);
        }),
        params(i),
      );
    });
    it(`random strings (any code point) as form and JSON → POST ${ep.path}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.string({ unit: 'grapheme-ascii', maxLength: 600 }), fc.json({ maxDepth: 4 })), contentType, async (s, ct) => {
          const r = await raw(h.b.url, { path: ep.path, body: s, headers: { ...ep.headers, ...(ct ? { 'content-type': ct } : {}) } });
          sane(r, `${ep.path} string ${JSON.stringify(s).slice(0, 80)}`);
          if (ep.path === '/oauth/token') expect(r.status).not.toBe(200);
        }),
        params(10 + i),
      );
    });
    it(`random form dictionaries → POST ${ep.path}`, async () => {
      const key = fc.oneof(fc.constantFrom('grant_type', 'subject_token', 'subject_token_type', 'task_id', 'scope', 'tools', 'audience', 'resource', 'token', 'token_type_hint', 'actor_token', 'requested_token_type'), fc.string({ maxLength: 20 }));
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(key, fc.string({ unit: 'binary', maxLength: 200 })), { maxLength: 12 }), async (pairs) => {
          const body = new URLSearchParams();
          for (const [k, v] of pairs) body.append(k, v);
          const r = await raw(h.b.url, { path: ep.path, body: body.toString(), headers: { ...ep.headers, ...FORM } });
          sane(r, `${ep.path} form ${body.toString().slice(0, 120)}`);
          if (ep.path === '/oauth/token') expect(r.status).not.toBe(200);
        }),
        params(20 + i),
      );
    });
  }
});

/** Registration ceilings from test/helpers/broker.ts baseDoc. */
const REG: Record<string, { spiffe: string; scopes: string[]; tools: string[]; audiences: string[] }> = {
  'agent-a': { spiffe: id('agent/a'), scopes: ['read', 'write'], tools: ['search', 'edit'], audiences: [API] },
  'agent-b': { spiffe: id('agent/b'), scopes: ['read', 'admin'], tools: ['search', 'deploy'], audiences: [API, OTHER_API] },
  'other-x': { spiffe: id('agent/other'), scopes: ['read'], tools: ['search'], audiences: [API] },
};
const TASKS = () => ({
  wide: { id: wide, agents: ['*'], scopes: WIDE_TASK.scopes, tools: WIDE_TASK.tools, audiences: WIDE_TASK.audiences },
  narrow: { id: narrow, agents: [id('agent/b')], scopes: ['read'], tools: ['search'], audiences: [API] },
});
const subset = (xs: string[], of: string[]) => xs.every((x) => of.includes(x));
const TOKEN_CODES = new Set(['invalid_request', 'invalid_scope', 'invalid_target', 'unsupported_grant_type']);

describe('structured, mostly-valid token exchanges: grants stay inside the ceilings, counts move only on success', () => {
  it('property over grant, proof, token types, task, scope, tools, audience and extra/duplicated parameters', async () => {
    const start = { wide: (await counts(h, wide)).issued, narrow: (await counts(h, narrow)).issued, closed: (await counts(h, closed)).issued };
    let granted = 0;
    const grantedIn = { wide: 0, narrow: 0 };
    // mostly well-formed (so grants happen and their invariants are exercised), with hostile deviations
    const usually = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: bad });
    const rarely = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
    const optional = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: good }, { weight: 1, arbitrary: bad });
    const request = fc.record({
      grant: usually(fc.constant(TOKEN_EXCHANGE), fc.string({ maxLength: 60 })),
      proof: usually(fc.constantFrom('agent-a', 'agent-b', 'other-x'), fc.constantFrom('orch', 'orch-narrow', 'forged', 'realToken', 'empty', 'garbage')),
      stt: usually(fc.constant(JWT_TYPE), fc.constantFrom('urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:access_token', 'x')),
      task: usually(fc.constantFrom('wide', 'narrow'), fc.constantFrom('closed', 'unknown', 'garbage')),
      scope: optional(fc.subarray(['read', 'write', 'admin'], { minLength: 1 }).map((a) => a.join(' ')), fc.oneof(fc.constantFrom('superuser', 're\u0430d', 'READ', 'read  write', ''), fc.string({ maxLength: 30 }))),
      tools: optional(fc.subarray(['search', 'edit', 'deploy'], { minLength: 1 }).map((a) => a.join(' ')), fc.oneof(fc.constantFrom('shell', '*', 'se\u0430rch'), fc.string({ maxLength: 30 }))),
      audience: optional(fc.subarray([API, OTHER_API], { minLength: 1 }), fc.subarray([API, 'https://evil.test', `${API}/`, h.b.url], { minLength: 1 })),
      rtt: rarely(fc.constantFrom('urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token')),
      dupe: rarely(fc.constantFrom('scope', 'task_id', 'grant_type', 'subject_token', 'actor_token')),
      extra: rarely(fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 }), { maxKeys: 3 })),
    });
    await fc.assert(
      fc.asyncProperty(request, async (q) => {
        const proof = q.proof === 'realToken' ? realToken : q.proof === 'empty' ? '' : q.proof === 'garbage' ? 'a.b.c' : proofs[q.proof]!;
        const taskId = q.task === 'wide' ? wide : q.task === 'narrow' ? narrow : q.task === 'closed' ? closed : q.task === 'unknown' ? 'tsk_AAAAAAAAAAAAAAAAAAAAAA' : '../x';
        const body = new URLSearchParams({ grant_type: q.grant, subject_token: proof, subject_token_type: q.stt, task_id: taskId });
        if (q.scope !== undefined) body.append('scope', q.scope);
        if (q.tools !== undefined) body.append('tools', q.tools);
        for (const a of q.audience ?? []) body.append('audience', a);
        if (q.rtt !== undefined) body.append('requested_token_type', q.rtt);
        if (q.dupe !== undefined) body.append(q.dupe, body.get(q.dupe) ?? 'x');
        for (const [k, v] of Object.entries(q.extra ?? {})) body.append(k, v);

        const r = await raw(h.b.url, { path: '/oauth/token', body: body.toString(), headers: FORM });
        sane(r, `token ${JSON.stringify(q)}`);
        if (r.status !== 200) {
          expect(r.status, r.text).toBe(400);
          expect(TOKEN_CODES.has(r.body.error), r.text).toBe(true);
          return;
        }
        // a grant: it must be for a real agent in an open task, within every ceiling
        granted++;
        const reg = REG[q.proof];
        const task = q.task === 'wide' || q.task === 'narrow' ? TASKS()[q.task] : undefined;
        expect(reg, `granted to ${q.proof}`).toBeDefined();
        expect(task, `granted in task ${q.task}`).toBeDefined();
        grantedIn[q.task as 'wide' | 'narrow']++;
        const i = (await raw(h.b.url, { path: '/oauth/introspect', body: new URLSearchParams({ token: r.body.access_token }).toString(), headers: { ...FORM, ...basic() } })).body;
        expect(i.active).toBe(true);
        expect(i.client_id).toBe(reg!.spiffe);
        expect(i.task_id).toBe(task!.id);
        expect(task!.agents[0] === '*' || task!.agents.includes(reg!.spiffe)).toBe(true);
        const scopes = (i.scope as string).split(' ').filter(Boolean);
        expect(subset(scopes, task!.scopes) && subset(scopes, reg!.scopes), `scope ${i.scope}`).toBe(true);
        if (q.scope !== undefined && q.scope !== '') expect(new Set(scopes)).toEqual(new Set(q.scope.split(' ')));
        expect(subset(i.tools, task!.tools) && subset(i.tools, reg!.tools), `tools ${i.tools}`).toBe(true);
        if (q.tools !== undefined && q.tools !== '') expect(new Set(i.tools)).toEqual(new Set(q.tools.split(' ')));
        const aud = typeof i.aud === 'string' ? [i.aud] : (i.aud as string[]);
        expect(aud.length).toBeGreaterThan(0);
        expect(subset(aud, task!.audiences) && subset(aud, reg!.audiences), `aud ${aud}`).toBe(true);
      }),
      params(100),
    );
    // no partial state: the counts moved exactly by the grants, and never in the closed task
    expect((await counts(h, wide)).issued).toBe(start.wide + grantedIn.wide);
    expect((await counts(h, narrow)).issued).toBe(start.narrow + grantedIn.narrow);
    expect((await counts(h, closed)).issued).toBe(start.closed);
    expect(granted).toBe(grantedIn.wide + grantedIn.narrow);
    expect(granted, 'the generator must reach the success path too').toBeGreaterThan(0);
  });
});

describe('structured task opens by orch-narrow: a created task is always within its registration', () => {
  const NARROW_REG = { scopes: ['read'], tools: ['search'], audiences: [API], agents: id('agent/') };
  it('property over agents, scopes, tools, audiences, ttl, principal, purpose and unknown fields', async () => {
    const before = await taskRecordCount(h.b);
    let created = 0;
    const junk = fc.anything({ maxDepth: 2, withNullPrototype: true, withObjectString: true });
    const usually = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: bad });
    const spec = fc.record(
      {
        agents: usually(
          fc.subarray([id('agent/a'), id('agent/*'), id('agent/b/*'), id('agent/x/y')], { minLength: 1 }),
          fc.oneof(fc.subarray([id('agent/a'), id('orch'), id('agent'), id('agentx/*'), 'spiffe://evil.local/agent/a', id('agent/../orch'), `${id('agent/a')}/`, id('*')]), junk),
        ),
        scopes: usually(fc.subarray(['read']), fc.oneof(fc.subarray(['read', 'write', 'admin', 're\u0430d', ''], { minLength: 1 }), junk)),
        tools: usually(fc.subarray(['search']), fc.oneof(fc.subarray(['search', 'edit', 'deploy'], { minLength: 1 }), junk)),
        audiences: usually(fc.subarray([API]), fc.oneof(fc.subarray([API, OTHER_API, `${API}/`], { minLength: 1 }), junk)),
        ttl: usually(fc.oneof(fc.constantFrom('10m', '1h', '48h', '90s'), fc.integer({ min: 1, max: 100_000 })), fc.oneof(fc.constantFrom('0s', '-1m', ''), fc.integer(), fc.double(), fc.string({ maxLength: 12 }), junk)),
        on_behalf_of: usually(fc.constantFrom('user:alice@example.com', 'svc:batch', null), fc.oneof(fc.constantFrom('User:x', 'alice', ''), fc.string({ maxLength: 40 }), junk)),
        purpose: usually(fc.string({ maxLength: 40 }), fc.oneof(fc.string({ minLength: 1025, maxLength: 1100 }), junk)),
        extra: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: junk }), // undefined: left out by JSON
      },
      { requiredKeys: ['agents'] },
    );
    await fc.assert(
      fc.asyncProperty(spec, async (s) => {
        const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(s), headers: { ...JSON_CT, ...bearer(proofs['orch-narrow']!) } });
        sane(r, `task ${JSON.stringify(s).slice(0, 200)}`);
        if (r.status === 201) {
          created++;
          const v = r.body;
          expect(v.opened_by).toBe(id('orch-narrow'));
          expect(v.agents.length).toBeGreaterThan(0);
          for (const a of v.agents as string[]) expect(a.startsWith(NARROW_REG.agents) && a.length > NARROW_REG.agents.length, a).toBe(true);
          expect(subset(v.scopes, NARROW_REG.scopes)).toBe(true);
          expect(subset(v.tools, NARROW_REG.tools)).toBe(true);
          expect(subset(v.audiences, NARROW_REG.audiences)).toBe(true);
          expect(Date.parse(v.expires_at) - h.clock.now()).toBeLessThanOrEqual(2 * 3_600_000);
          return;
        }
        expect([400, 403], r.text).toContain(r.status);
        if (r.status === 403) expect(r.body.error).toBe('access_denied');
        else expect(['invalid_request', 'invalid_scope', 'invalid_target']).toContain(r.body.error);
      }),
      params(200),
    );
    expect(await taskRecordCount(h.b)).toBe(before + created);
    expect(created, 'the generator must reach the success path too').toBeGreaterThan(0);
  });
});

describe('introspection and revocation of random tokens', () => {
  it('any string introspects as {active: false} (or 400 when over 8 KiB), and revokes nothing', async () => {
    const tokenish = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.array(fc.base64String({ maxLength: 200 }).map((x) => x.replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '')), { minLength: 1, maxLength: 6 }).map((p) => p.join('.')),
      fc.nat({ max: realToken.length - 1 }).chain((i) => fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'.split('')).map((c) => `${realToken.slice(0, i)}${c}${realToken.slice(i + 1)}`)),
    );
    await fc.assert(
      fc.asyncProperty(tokenish, async (t) => {
        if (t === realToken || t === '') return;
        const body = new URLSearchParams({ token: t }).toString();
        const i = await raw(h.b.url, { path: '/oauth/introspect', body, headers: { ...FORM, ...basic() } });
        sane(i, `introspect ${JSON.stringify(t).slice(0, 80)}`);
        if (i.status === 200 && i.body.active === true) {
          // only the padding-bit spellings of the real token's last signature character (see introspection.test.ts)
          expect(t.slice(0, -1)).toBe(realToken.slice(0, -1));
        } else if (i.status === 200) expect(i.body).toEqual({ active: false });
        if (i.status === 200 && i.body.active === true) return; // revoking a spelling of the real token would rightly revoke it
        const rv = await raw(h.b.url, { path: '/oauth/revoke', body, headers: { ...FORM, ...basic() } });
        sane(rv, 'revoke');
        if (i.status === 200) expect(rv.status).toBe(200);
      }),
      params(300),
    );
  });
  it('random Authorization headers at introspection: 200 only for a real client or the operator, else 401', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
    const auth = fc.oneof(
      printable,
      fc.tuple(fc.constantFrom('Basic ', 'Bearer ', 'basic ', 'bearer  '), printable).map(([a, b]) => a + b),
      fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 30 })).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
    );
    await fc.assert(
      fc.asyncProperty(auth, async (a) => {
        const r = await raw(h.b.url, { path: '/oauth/introspect', body: `token=${realToken}`, headers: { ...FORM, authorization: a } });
        sane(r, `auth ${a}`);
        if (r.status === 200) throw new Error(`random Authorization ${JSON.stringify(a)} was accepted`);
        expect(r.status).toBe(401);
      }),
      params(400),
    );
  });
});

describe('hostile path parameters never produce a 5xx', () => {
  const segment = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }).map(encodeURIComponent),
    fc.string({ unit: fc.constantFrom(...'%0123456789abcdefABCDEFZz:/._-~'.split('')), maxLength: 40 }).map((s) => s.replace(/\//g, '%2F')),
    fc.constantFrom('%ZZ', '%', '%%', '%2', '%E0%A4%A', '%C0%AF', '%FF', '..', '.', '%2e%2e', 'spiffe:%2F%2Ftest.local%2F..'),
  );
  const routes: [string, (s: string) => string][] = [
    ['POST', (s) => `/v1/identities/${s}/lock`],
    ['DELETE', (s) => `/v1/identities/${s}/lock`],
    ['GET', (s) => `/v1/identities/${s}`],
    ['POST', (s) => `/v1/principals/${s}/revoke`],
    ['GET', (s) => `/v1/tasks/${s}`],
    ['POST', (s) => `/v1/tasks/${s}/close`],
    ['GET', (s) => `/v1/tasks/${s}/certificates`],
    ['GET', (s) => `/v1/certificates/${s}`],
    ['POST', (s) => `/v1/certificates/${s}/revoke`],
    ['GET', (s) => `/v1/tasks?${s}`],
    ['GET', (s) => `/v1/tasks/${wide}/certificates?${s}`],
    ['GET', (s) => `/v1/audit?${s}`],
    ['GET', (s) => `/v1/revocations?${s}`],
    ['GET', (s) => `/v1/identities?${s}`],
    ['GET', (s) => `/v1/principals?${s}`],
    ['GET', (s) => `/v1/ca/bundle?${s}`],
    ['GET', (s) => `/v1/ca/crl?${s}`],
    ['GET', (s) => `/v1/ca/spiffe-bundle?${s}`],
  ];
  for (const [i, [method, path]] of routes.entries()) {
    it(`${method} ${path('{x}')}`, async () => {
      await fc.assert(
        fc.asyncProperty(segment, async (s) => {
          if (s === '') return;
          const r = await raw(h.b.url, { method, path: path(s), headers: bearer(OPERATOR.token) });
          sane(r, `${method} ${path(s)}`);
        }),
        params(500 + i),
      );
    });
  }
  it('any Accept header at GET /v1/ca/bundle: 200, the PEM bundle or the JWK Set, nothing else', async () => {
    const token = fc.constantFrom('application/json', 'application/jwk-set+json', 'text/plain', '*/*', 'application/*', 'application/x-pem-file', ';q=0', ';q=1', ',', ' ', 'JSON');
    const accept = fc.oneof(
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
      fc.array(token, { maxLength: 8 }).map((t) => t.join('')),
    );
    let json = 0;
    await fc.assert(
      fc.asyncProperty(accept, async (accept) => {
        const r = await raw(h.b.url, { method: 'GET', path: '/v1/ca/bundle', headers: { accept } });
        expect(r.status, accept).toBe(200);
        const ct = r.headers.get('content-type') ?? '';
        if (ct.startsWith('application/json') || ct === 'application/jwk-set+json') {
          expect(r.body.keys[0].use).toBe('x509-svid');
          json++;
        } else expect([ct, r.text.startsWith('-----BEGIN CERTIFICATE-----')]).toEqual(['application/x-pem-file', true]);
      }),
      params(600),
    );
    expect(json).toBeGreaterThan(0); // both answers were exercised
  });

  it('any cursor at GET /v1/revocations/stream (query since or Last-Event-ID): a 400 with the error body, or the event stream', async () => {
    const cursor = fc.oneof(
      fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }),
      fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}-${b}`),
      fc.constantFrom('0', '0-0', '-', '+', '$', '>', '99999999999999999999-1', '1-99999999999999999999', '1-', '-1', '1-1-1', '01-1'),
    );
    let streams = 0;
    await fc.assert(
      fc.asyncProperty(cursor, fc.boolean(), async (since, asHeader) => {
        const ac = new AbortController();
        const url = asHeader ? `${h.b.url}/v1/revocations/stream` : `${h.b.url}/v1/revocations/stream?since=${encodeURIComponent(since)}`;
        const r = await fetch(url, { headers: { ...basic(), ...(asHeader ? { 'last-event-id': since } : {}) }, signal: ac.signal });
        try {
          if (r.status === 200) {
            expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
            streams++;
          } else {
            expect(r.status, since).toBe(400);
            const body = (await r.json()) as { error: string; error_description: string };
            expect(body.error).toBe('invalid_request');
            expect(body.error_description.length).toBeGreaterThan(0);
          }
        } finally {
          ac.abort();
        }
      }),
      params(601),
    );
    expect(streams).toBeGreaterThan(0);
  });

  it('the fixtures survived the fuzzing: the real token is active and the tasks are open', async () => {
    expect((await h.a.introspect(realToken)).body.active).toBe(true);
    expect((await h.a.getTask(wide, OPERATOR.token)).body.state).toBe('open');
    expect((await h.a.getTask(narrow, OPERATOR.token)).body.state).toBe('open');
  });
});
