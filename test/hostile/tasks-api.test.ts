/**
 * Hostile input at the tasks API: malformed JSON, wrong shapes, unknown (and prototype-polluting) fields,
 * invalid SPIFFE IDs and principals, absurd ttls, too many agents, wrong media types and credentials.
 * Every refusal is the right 4xx with {error, error_description} and creates no task record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, basic, id, OPERATOR, postJson, WIDE_TASK, http } from '../helpers/broker.js';
import { bearer, closeProbes, expectError, hostileBroker, JSON_CT, raw, taskRecordCount, type HostileBroker } from './support.js';

let h: HostileBroker;
beforeAll(async () => {
  h = await hostileBroker();
});
afterAll(async () => {
  await closeProbes(h.b);
  await h.b.close();
});

const OP = () => bearer(OPERATOR.token);
const tasksUrl = () => `${h.b.url}/v1/tasks`;

/** POSTs raw bytes as the operator and asserts the refusal created nothing. */
async function refusedRaw(body: string | Buffer, headers: Record<string, string>, status: number, code: string) {
  const before = await taskRecordCount(h.b);
  const r = await raw(h.b.url, { path: '/v1/tasks', body, headers });
  expectError(r, status, code);
  expect(await taskRecordCount(h.b)).toBe(before);
  return r;
}

async function refusedSpec(spec: unknown, status = 400, code = 'invalid_request', by: Record<string, string> = OP()) {
  const before = await taskRecordCount(h.b);
  const r = await postJson(tasksUrl(), spec, by);
  expectError(r, status, code);
  expect(await taskRecordCount(h.b)).toBe(before);
  return r;
}

describe('controls', () => {
  it('an operator token opens a task (201), named as the opener', async () => {
    const r = await postJson(tasksUrl(), WIDE_TASK, OP());
    expect(r.status, r.text).toBe(201);
    expect(r.body.opened_by).toBe(`operator:${OPERATOR.name}`);
    expect(r.headers.get('location')).toBe(`/v1/tasks/${r.body.task_id}`);
  });
  it('the minimal spec (agents only) opens a task with empty ceilings', async () => {
    const r = await postJson(tasksUrl(), { agents: [id('agent/a')] }, OP());
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ scopes: [], tools: [], audiences: [] });
  });
  it('a UTF-8 BOM before the object is ignored (RFC 8259 §8.1 allows it)', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: `\ufeff${JSON.stringify(WIDE_TASK)}`, headers: { ...JSON_CT, ...OP() } });
    expect(r.status, r.text).toBe(201);
  });
  it('+json media types are accepted', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(WIDE_TASK), headers: { 'content-type': 'application/vnd.mayfly+json; charset=utf-8', ...OP() } });
    expect(r.status, r.text).toBe(201);
  });
});

describe('malformed JSON and wrong shapes: 400 invalid_request, nothing created', () => {
  const H = () => ({ ...JSON_CT, ...OP() });
  for (const [label, body] of [
    ['truncated JSON', '{"agents": ["spiffe://test.local/agent/a"'],
    ['a lone brace', '{'],
    ['an empty body', ''],
    ['whitespace only', '   \n\t '],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['an array holding the valid spec', JSON.stringify([WIDE_TASK])],
    ['a JSON string', '"tsk"'],
    ['a number', '42'],
    ['true', 'true'],
    ['single-quoted pseudo-JSON', "{'agents': ['spiffe://test.local/agent/a']}"],
    ['a trailing comma', '{"agents": ["spiffe://test.local/agent/a"],}'],
    ['a comment', '{"agents": ["spiffe://test.local/agent/a"] /* hi */}'],
    ['NaN', '{"agents": ["spiffe://test.local/agent/a"], "ttl": NaN}'],
    ['two concatenated objects', `${JSON.stringify(WIDE_TASK)}${JSON.stringify(WIDE_TASK)}`],
    ['deeply nested arrays (60k)', `${'['.repeat(30_000)}${']'.repeat(30_000)}`],
    ['deeply nested objects in purpose', `{"agents":["${id('agent/a')}"],"purpose":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`],
    ['a form body labelled as JSON', 'agents=spiffe%3A%2F%2Ftest.local%2Fagent%2Fa'],
  ] as const) {
    it(label, async () => {
      await refusedRaw(body, H(), 400, 'invalid_request');
    });
  }
  it('invalid UTF-8 bytes inside a string', async () => {
    const body = Buffer.concat([Buffer.from('{"agents":["spiffe://test.local/agent/a"],"purpose":"'), Buffer.from([0xed, 0xa0, 0x80, 0xff]), Buffer.from('"}')]);
    await refusedRaw(body, H(), 400, 'invalid_request');
  });
});

describe('unknown and dangerous fields: 400 invalid_request, nothing created', () => {
  for (const extra of [
    { admin: true },
    { opened_by: id('orch') },
    { openedBy: 'operator:root' },
    { state: 'closed' },
    { task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' },
    { id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' },
    { expires_at: '2999-01-01T00:00:00Z' },
    { created_at: 0 },
    { onBehalfOf: 'user:root' },
    { Agents: [id('orch')] },
    { constructor: { prototype: { admin: true } } },
  ]) {
    it(`extra field ${Object.keys(extra)[0]}`, async () => {
      await refusedSpec({ ...WIDE_TASK, ...extra });
    });
  }
  it('a "__proto__" key (prototype pollution attempt)', async () => {
    const body = `{"__proto__": {"scopes": ["root"], "polluted": true}, ${JSON.stringify(WIDE_TASK).slice(1)}`;
    await refusedRaw(body, { ...JSON_CT, ...OP() }, 400, 'invalid_request');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it('a duplicated "agents" key: the broker sees one value and validates it', async () => {
    const body = `{"agents": ["${id('agent/a')}"], "agents": ["spiffe://evil.local/agent/a"], "scopes": ["read"]}`;
    await refusedRaw(body, { ...JSON_CT, ...OP() }, 400, 'invalid_request');
  });
});

describe('agents: invalid SPIFFE IDs and patterns (400 invalid_request), nothing created', () => {
  const bad: [string, unknown][] = [
    ['uppercase trust domain', 'spiffe://TEST.local/agent/a'],
    ['uppercase scheme', 'SPIFFE://test.local/agent/a'],
    ['a .. segment', 'spiffe://test.local/agent/../orch'],
    ['a . segment', 'spiffe://test.local/agent/./a'],
    ['a percent-encoded slash', 'spiffe://test.local/agent%2Fa'],
    ['a percent-encoded dot-dot', 'spiffe://test.local/agent/%2e%2e/orch'],
    ['a trailing slash', 'spiffe://test.local/agent/a/'],
    ['an empty segment', 'spiffe://test.local/agent//a'],
    ['no path', 'spiffe://test.local'],
    ['only a slash', 'spiffe://test.local/'],
    ['a query', 'spiffe://test.local/agent/a?x=1'],
    ['a fragment', 'spiffe://test.local/agent/a#x'],
    ['a port', 'spiffe://test.local:443/agent/a'],
    ['userinfo', 'spiffe://user@test.local/agent/a'],
    ['another scheme', 'https://test.local/agent/a'],
    ['no scheme', 'test.local/agent/a'],
    ['a Cyrillic homoglyph', 'spiffe://test.local/\u0430gent/a'],
    ['a space', 'spiffe://test.local/agent/a b'],
    ['a NUL', 'spiffe://test.local/agent/a\u0000'],
    ['a newline', 'spiffe://test.local/agent/a\n'],
    ['a wildcard mid-path', 'spiffe://test.local/*/a'],
    ['a double wildcard', 'spiffe://test.local/agent/**'],
    ['a bare wildcard segment without slash', 'spiffe://test.local/agent*'],
    ['a root wildcard', 'spiffe://test.local/*'],
    ['longer than 2048 characters', `spiffe://test.local/${'a'.repeat(2100)}`],
    ['the empty string', ''],
    ['a number', 42],
    ['null', null],
    ['an object', { id: 'spiffe://test.local/agent/a' }],
    ['a nested array', ['spiffe://test.local/agent/a']],
  ];
  for (const [label, agent] of bad) {
    it(label, async () => {
      await refusedSpec({ ...WIDE_TASK, agents: [agent] });
    });
  }
  it('another trust domain (well-formed)', async () => {
    await refusedSpec({ ...WIDE_TASK, agents: ['spiffe://evil.local/agent/a'] });
  });
  it('a valid agent next to an invalid one is refused whole', async () => {
    await refusedSpec({ ...WIDE_TASK, agents: [id('agent/a'), 'spiffe://test.local/agent/../orch'] });
  });
  it('an empty agents list', async () => {
    await refusedSpec({ ...WIDE_TASK, agents: [] });
  });
  it('no agents field', async () => {
    const { agents: _drop, ...rest } = WIDE_TASK;
    await refusedSpec(rest);
  });
  it('agents as a string instead of a list', async () => {
    await refusedSpec({ ...WIDE_TASK, agents: id('agent/a') });
  });
  it('257 agents', async () => {
    await refusedSpec({ ...WIDE_TASK, agents: Array.from({ length: 257 }, (_, i) => id(`agent/n${i}`)) });
  });
  it('256 agents is the limit and is accepted', async () => {
    const r = await postJson(tasksUrl(), { ...WIDE_TASK, agents: Array.from({ length: 256 }, (_, i) => id(`agent/n${i}`)) }, OP());
    expect(r.status, r.text).toBe(201);
  });
});

describe('principals (on_behalf_of): 400 invalid_request, nothing created', () => {
  for (const p of ['alice', 'user:', ':alice', 'User:alice', '1user:alice', 'user:al ice', 'user:al\u00efce', 'user:alice\u0000', 'user:alice\n', `user:${'a'.repeat(300)}`, `${'k'.repeat(40)}:alice`, '', 42, {}, ['user:alice'], true]) {
    it(`on_behalf_of ${JSON.stringify(p)?.slice(0, 40)}`, async () => {
      await refusedSpec({ ...WIDE_TASK, on_behalf_of: p });
    });
  }
  it('null means "on nobody\'s behalf" (control)', async () => {
    const r = await postJson(tasksUrl(), { ...WIDE_TASK, on_behalf_of: null }, OP());
    expect(r.status, r.text).toBe(201);
    expect(r.body.on_behalf_of).toBeNull();
  });
});

describe('ttl: 400 invalid_request, nothing created', () => {
  for (const ttl of [-1, 0, -0.5, 1.5, 1e300, 10 * 365 * 86400 + 1, Number.MAX_SAFE_INTEGER, 'abc', '-5m', '5', '', '0s', '0m', '1y', '1w', '999999999d', '30m ', ' 30m', '30 m', '30M', '1e3s', '0x10s', '30m\u0000', 'P1D', '1ms', '999ms', `${'9'.repeat(40)}s`, true, false, [], {}, ['30m']]) {
    it(`ttl ${JSON.stringify(ttl)}`, async () => {
      await refusedSpec({ ...WIDE_TASK, ttl });
    });
  }
  it('the largest numeric ttl is accepted and capped at tasks.max_ttl (2 h)', async () => {
    const r = await postJson(tasksUrl(), { ...WIDE_TASK, ttl: 10 * 365 * 86400 }, OP());
    expect(r.status, r.text).toBe(201);
    expect(Date.parse(r.body.expires_at) - h.clock.now()).toBe(2 * 3_600_000);
  });
  it('a huge duration string within range is capped, not overflowed', async () => {
    const r = await postJson(tasksUrl(), { ...WIDE_TASK, ttl: '999999999h' }, OP());
    expect(r.status, r.text).toBe(201);
    expect(Date.parse(r.body.expires_at) - h.clock.now()).toBe(2 * 3_600_000);
  });
});

describe('scopes, tools, audiences, purpose: 400 invalid_request, nothing created', () => {
  for (const [field, v] of [
    ['scopes', ['read write']],
    ['scopes', ['']],
    ['scopes', ['re\u0430d']],
    ['scopes', ['read\u0000']],
    ['scopes', 'read'],
    ['scopes', [1]],
    ['scopes', Array.from({ length: 257 }, (_, i) => `s${i}`)],
    ['scopes', ['s'.repeat(129)]],
    ['tools', ['se\u0430rch']],
    ['tools', ['a"b']],
    ['tools', [null]],
    ['audiences', ['https://api.test/ x']],
    ['audiences', [`https://${'a'.repeat(600)}`]],
    ['audiences', ['https://\u0430pi.test']],
    ['audiences', {}],
    ['purpose', 'p'.repeat(1025)],
    ['purpose', 42],
    ['purpose', ['x']],
  ] as const) {
    it(`${field} = ${JSON.stringify(v).slice(0, 50)}`, async () => {
      await refusedSpec({ ...WIDE_TASK, [field]: v });
    });
  }
  it('an orchestrator asking for a well-formed scope outside its registration gets invalid_scope', async () => {
    await refusedSpec({ ...WIDE_TASK, scopes: ['root'] }, 400, 'invalid_scope', bearer(await h.b.attest('orch')));
  });
  it('an orchestrator asking for an audience outside its registration gets invalid_target', async () => {
    await refusedSpec({ ...WIDE_TASK, audiences: [API, 'https://evil.test'] }, 400, 'invalid_target', bearer(await h.b.attest('orch')));
  });
});

describe('media type: 415 unsupported_media_type, nothing created', () => {
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', 'application/json-seq', 'text/json', '']) {
    it(`Content-Type ${JSON.stringify(ct)}`, async () => {
      await refusedRaw(JSON.stringify(WIDE_TASK), ct ? { 'content-type': ct, ...OP() } : OP(), 415, 'unsupported_media_type');
    });
  }
});

describe('credentials at POST /v1/tasks', () => {
  it('no Authorization: 401 invalid_token with a Bearer challenge, nothing created', async () => {
    const r = await refusedRaw(JSON.stringify(WIDE_TASK), JSON_CT, 401, 'invalid_token');
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="mayfly"/);
  });
  it('Authorization: Basic with valid client credentials: 401 invalid_token', async () => {
    await refusedRaw(JSON.stringify(WIDE_TASK), { ...JSON_CT, ...basic() }, 401, 'invalid_token');
  });
  it('Authorization: Basic carrying the operator token: 401 invalid_token', async () => {
    await refusedRaw(JSON.stringify(WIDE_TASK), { ...JSON_CT, authorization: `Basic ${Buffer.from(`${OPERATOR.name}:${OPERATOR.token}`).toString('base64')}` }, 401, 'invalid_token');
  });
  for (const [label, value] of [
    ['a bare "Bearer"', 'Bearer'],
    ['Bearer with two tokens', `Bearer ${OPERATOR.token} ${OPERATOR.token}`],
    ['Bearer with a comma-joined token', `Bearer ${OPERATOR.token},x`],
    ['Bearer with the operator token plus a character', `Bearer ${OPERATOR.token}x`],
    ['Bearer with a prefix of the operator token', `Bearer ${OPERATOR.token.slice(0, -1)}`],
    ['Bearer with the operator token in upper case', `Bearer ${OPERATOR.token.toUpperCase()}`],
    ['the operator token without a scheme', OPERATOR.token],
    ['a Token scheme', `Token ${OPERATOR.token}`],
    ['Digest', 'Digest username="x"'],
    ['Bearer garbage', 'Bearer garbage'],
    ['the client secret as Bearer', 'Bearer rs-secret-0123456789'],
  ] as const) {
    it(`${label}: 401 invalid_token, nothing created`, async () => {
      await refusedRaw(JSON.stringify(WIDE_TASK), { ...JSON_CT, authorization: value }, 401, 'invalid_token');
    });
  }
  it("one of the broker's access tokens is a caller it knows without the role: 403 access_denied at every task call", async () => {
    const task = (await postJson(tasksUrl(), WIDE_TASK, OP())).body.task_id as string;
    const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: await h.b.attest('agent-b'), subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', task_id: task });
    const access = (await http(`${h.b.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })).body.access_token as string;
    expect(access).toBeTruthy();
    await refusedRaw(JSON.stringify(WIDE_TASK), { ...JSON_CT, ...bearer(access) }, 403, 'access_denied');
    expectError(await http(`${h.b.url}/v1/tasks`, { headers: bearer(access) }), 403, 'access_denied');
    expectError(await http(`${h.b.url}/v1/tasks/${task}`, { headers: bearer(access) }), 403, 'access_denied');
    expectError(await http(`${h.b.url}/v1/tasks/${task}/close`, { method: 'POST', headers: bearer(access) }), 403, 'access_denied');
    expect((await http(`${h.b.url}/v1/tasks/${task}`, { headers: OP() })).body.state).toBe('open');
  });
  it('a lower-case scheme and extra spaces are tolerated (control)', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(WIDE_TASK), headers: { ...JSON_CT, authorization: `bearer   ${OPERATOR.token}` } });
    expect(r.status, r.text).toBe(201);
  });
  it('two credentials folded into one header (garbage, operator): 401, never a 500', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(WIDE_TASK), headers: { ...JSON_CT, authorization: `Bearer x, Bearer ${OPERATOR.token}` } });
    expectError(r, 401, 'invalid_token');
  });
  it('a 9 KiB Bearer (an oversized attestation) is 401 invalid_token, nothing created', async () => {
    await refusedRaw(JSON.stringify(WIDE_TASK), { ...JSON_CT, authorization: `Bearer ${'e'.repeat(9 * 1024)}` }, 401, 'invalid_token');
  });
  it('a 20 KiB Authorization header is stopped by the HTTP layer (431) and the broker keeps serving', async () => {
    // Node's header limit (16 KiB) answers before the app: a 4xx, though without the JSON error body
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(WIDE_TASK), headers: { ...JSON_CT, authorization: `Bearer ${'e'.repeat(20 * 1024)}` } });
    expect(r.status).toBe(431);
    expect((await raw(h.b.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
  });
  it('auth is checked before the body: no Authorization and a wrong media type is 401, not 415', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: 'x', headers: { 'content-type': 'text/plain' } });
    expectError(r, 401, 'invalid_token');
  });
});

describe('GET /v1/tasks/{id} and close with hostile ids: 404 not_found, never 500', () => {
  const hostileIds = ['..', '..%2F..%2Fv1%2Faudit', '%2e%2e', '{x}', '%7Bx%7D', 'tsk_%00AAAAAAAAAAAAAAAA', `tsk_${'A'.repeat(10_000)}`, 'tsk_AAAAAAAAAAAAAAAA%0D%0AFLUSHALL', '*', 'tsk_*', '%ZZ', 'tsk_AAAAAAAAAAAAAAAAAAAAAA'];
  for (const t of hostileIds) {
    it(`GET and close ${JSON.stringify(t.length > 40 ? `${t.slice(0, 30)}…` : t)}`, async () => {
      for (const [method, suffix] of [['GET', ''], ['POST', '/close']] as const) {
        const r = await raw(h.b.url, { method, path: `/v1/tasks/${t}${suffix}`, headers: OP() });
        expect(r.status, `${method} ${t}${suffix}: ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(typeof r.body?.error).toBe('string');
        expect(r.body.error_description.length).toBeGreaterThan(0);
      }
    });
  }
  it('a hostile id without credentials is 401 (auth first, no existence oracle)', async () => {
    const r = await http(`${h.b.url}/v1/tasks/tsk_AAAAAAAAAAAAAAAAAAAAAA`);
    expectError(r, 401, 'invalid_token');
  });
  it('GET /v1/tasks/ (empty id) and unknown sub-resources are 404 with the error body (GET /v1/tasks is the inventory)', async () => {
    for (const path of ['/v1/tasks/', '/v1/tasks/tsk_AAAAAAAAAAAAAAAAAAAAAA/open', '/v1/tasks/tsk_AAAAAAAAAAAAAAAAAAAAAA/credentials']) {
      const r = await raw(h.b.url, { method: 'GET', path, headers: OP() });
      expectError(r, 404, 'not_found');
    }
  });
});
