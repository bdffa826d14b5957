/**
 * Malformed and hostile input at POST /oauth/token: wrong media types, repeated and missing parameters,
 * unknown grant and token types, delegation attempts, confusable Unicode, control characters, NUL bytes,
 * oversized values, path- and key-shaped task ids, invalid UTF-8 and oversized bodies. Every answer is
 * the right 4xx with {error, error_description}, and the task's issued count never moves.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, JWT_TYPE, OPERATOR, OTHER_API, postForm, TOKEN_EXCHANGE, WIDE_TASK, id } from '../helpers/broker.js';
import { expectError, FORM, hostileBroker, issued, JSON_CT, raw, type HostileBroker } from './support.js';

let h: HostileBroker;
let task: string;
let proof: string;

beforeAll(async () => {
  h = await hostileBroker();
  task = (await h.a.openTask(WIDE_TASK)).body.task_id;
  proof = await h.b.attest('agent-a');
});
afterAll(() => h.b.close());

const tokenUrl = () => `${h.b.url}/oauth/token`;
/** A complete, valid request; cases override or drop parts of it. */
const valid = (): Record<string, string | string[]> => ({ grant_type: TOKEN_EXCHANGE, subject_token: proof, subject_token_type: JWT_TYPE, task_id: task });
const without = (k: string) => {
  const v = valid();
  delete v[k];
  return v;
};

/** Posts a form and asserts the refusal and that the task's count did not move. */
async function refused(params: Record<string, string | string[]>, status: number, code: string) {
  const before = await issued(h, task);
  const r = await postForm(tokenUrl(), params);
  expectError(r, status, code);
  expect(await issued(h, task)).toBe(before);
  return r;
}

/** Raw bytes to /oauth/token, same assertions. */
async function refusedRaw(body: Buffer | string, headers: Record<string, string>, status: number, code: string, chunkSize?: number) {
  const before = await issued(h, task);
  const r = await raw(h.b.url, { path: '/oauth/token', body, headers, ...(chunkSize ? { chunkSize } : {}) });
  expectError(r, status, code);
  expect(await issued(h, task)).toBe(before);
  return r;
}

const formBody = (p: Record<string, string | string[]>) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) for (const x of Array.isArray(v) ? v : [v]) u.append(k, x);
  return u.toString();
};

describe('control', () => {
  it('the valid request is granted (so every refusal below is caused by its one change)', async () => {
    const r = await postForm(tokenUrl(), valid());
    expect(r.status, r.text).toBe(200);
  });
  it('media type parameters and case are tolerated', async () => {
    const r = await raw(h.b.url, { path: '/oauth/token', body: formBody(valid()), headers: { 'content-type': 'Application/X-WWW-Form-Urlencoded; charset=UTF-8' } });
    expect(r.status, r.text).toBe(200);
  });
  it('unknown extra parameters are ignored, never trusted (client_id, sub, act, scope-like names cannot change who the token is for)', async () => {
    const r = await postForm(tokenUrl(), { ...valid(), client_id: id('orch'), sub: id('agent/b'), act: id('orch'), on_behalf_of: 'user:root', 'scope[]': 'admin', claims: '{"scope":"admin"}' });
    expect(r.status, r.text).toBe(200);
    const i = (await h.a.introspect(r.body.access_token)).body;
    expect(i.client_id).toBe(id('agent/a'));
    expect(i.sub).toBe(id('agent/a'));
    expect(i.act).toBeUndefined();
    expect(i.scope.split(' ').sort()).toEqual(['read', 'write']);
  });
});

describe('media type and encoding', () => {
  it('text/plain with a form body: 400 invalid_request', async () => {
    await refusedRaw(formBody(valid()), { 'content-type': 'text/plain' }, 400, 'invalid_request');
  });
  it('no Content-Type at all: 400 invalid_request', async () => {
    await refusedRaw(formBody(valid()), {}, 400, 'invalid_request');
  });
  it('a JSON body with every parameter: 400 invalid_request', async () => {
    await refusedRaw(JSON.stringify(valid()), JSON_CT, 400, 'invalid_request');
  });
  it('a JSON body labelled as a form: the parse finds no grant_type, 400 invalid_request', async () => {
    await refusedRaw(JSON.stringify(valid()), FORM, 400, 'invalid_request');
  });
  it('multipart/form-data: 400 invalid_request', async () => {
    const boundary = 'XyZ';
    const body = Object.entries(valid())
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(v)}\r\n`)
      .join('') + `--${boundary}--\r\n`;
    await refusedRaw(body, { 'content-type': `multipart/form-data; boundary=${boundary}` }, 400, 'invalid_request');
  });
  it('parameters in the query string instead of the body: 400 invalid_request', async () => {
    const before = await issued(h, task);
    const r = await raw(h.b.url, { path: `/oauth/token?${formBody(valid())}`, body: '', headers: FORM });
    expectError(r, 400, 'invalid_request');
    expect(await issued(h, task)).toBe(before);
  });
  it('invalid UTF-8 bytes in the body: 400 invalid_request', async () => {
    const body = Buffer.concat([Buffer.from(formBody(valid())), Buffer.from('&scope=re'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('ad')]);
    await refusedRaw(body, FORM, 400, 'invalid_request');
  });
  it('an overlong UTF-8 encoding of "/" (0xC0 0xAF) in task_id: 400 invalid_request', async () => {
    const body = Buffer.concat([Buffer.from(formBody(without('task_id'))), Buffer.from('&task_id=tsk_'), Buffer.from([0xc0, 0xaf]), Buffer.from('AAAAAAAAAAAAAAAAAA')]);
    await refusedRaw(body, FORM, 400, 'invalid_request');
  });
  it('percent-encoded invalid UTF-8 in scope (%FF): 400 invalid_scope', async () => {
    await refusedRaw(`${formBody(valid())}&scope=re%FFad`, FORM, 400, 'invalid_scope');
  });
  it('a UTF-16 body: 400 invalid_request', async () => {
    await refusedRaw(Buffer.from(formBody(valid()), 'utf16le'), { 'content-type': 'application/x-www-form-urlencoded; charset=utf-16' }, 400, 'invalid_request');
  });
  it('a charset other than UTF-8 declared on a UTF-8 form: 400 invalid_request (never decoded as something else)', async () => {
    for (const charset of ['iso-8859-1', 'utf-16', '"latin1"'])
      await refusedRaw(formBody(valid()), { 'content-type': `application/x-www-form-urlencoded; charset=${charset}` }, 400, 'invalid_request');
  });
  it('a Content-Encoding (gzip, deflate, br): 415, the body is never read as if it were plain', async () => {
    for (const enc of ['gzip', 'deflate', 'br', 'x-custom'])
      await refusedRaw(formBody(valid()), { ...FORM, 'content-encoding': enc }, 415, 'unsupported_media_type');
    const r = await raw(h.b.url, { path: '/oauth/token', body: formBody(valid()), headers: { ...FORM, 'content-encoding': 'identity' } });
    expect(r.status, r.text).toBe(200);
  });
  it('a JSON body declared in another charset: 415 at JSON endpoints', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify(WIDE_TASK), headers: { 'content-type': 'application/json; charset=utf-16', authorization: `Bearer ${await h.b.attest('orch')}` } });
    expectError(r, 415, 'unsupported_media_type');
  });
  it('an empty body: 400 invalid_request', async () => {
    await refusedRaw('', FORM, 400, 'invalid_request');
  });
  it('a body of only separators and equals signs: 400 invalid_request', async () => {
    await refusedRaw('&&&===&=&', FORM, 400, 'invalid_request');
  });
});

describe('repeated parameters (RFC 6749 §3.1: at most once)', () => {
  for (const k of ['grant_type', 'subject_token', 'subject_token_type', 'task_id', 'scope', 'tools', 'requested_token_type']) {
    it(`two "${k}": 400 invalid_request`, async () => {
      const v = valid();
      const second = k === 'scope' ? 'admin' : k === 'tools' ? 'deploy' : k === 'requested_token_type' ? 'urn:ietf:params:oauth:token-type:access_token' : String(v[k] ?? 'x');
      const first = k === 'scope' ? 'read' : k === 'tools' ? 'search' : second;
      await refused({ ...v, [k]: [first, second] }, 400, 'invalid_request');
    });
  }
  it('a JSON body naming a field twice (parser differential): 400 invalid_request', async () => {
    const orch = `Bearer ${await h.b.attest('orch')}`;
    const body = JSON.stringify(WIDE_TASK).replace(/^\{/, '{"scopes":["read"],');
    const r = await raw(h.b.url, { path: '/v1/tasks', body, headers: { ...JSON_CT, authorization: orch } });
    expectError(r, 400, 'invalid_request');
    expect(r.body.error_description).toContain("'scopes' twice");
  });
  it('a repeated scope where one copy is empty is still repeated', async () => {
    await refused({ ...valid(), scope: ['', 'admin'] }, 400, 'invalid_request');
  });
  it('audience may repeat (RFC 8693) but not beyond 32 values: 400 invalid_target', async () => {
    await refused({ ...valid(), audience: Array.from({ length: 33 }, (_, i) => `https://a${i}.test`) }, 400, 'invalid_target');
  });
  it('repeating an allowed audience is harmless (deduplicated)', async () => {
    const r = await h.a.exchange(await h.b.attest('agent-b'), task, { audience: [API, API, API], resource: API });
    expect(r.status, r.text).toBe(200);
    expect((await h.a.introspect(r.body.access_token)).body.aud).toBe(API);
  });
});

describe('missing or empty required parameters: 400 invalid_request', () => {
  for (const k of ['grant_type', 'subject_token', 'subject_token_type', 'task_id']) {
    it(`no ${k}`, async () => {
      await refused(without(k), 400, 'invalid_request');
    });
    it(`empty ${k}`, async () => {
      await refused({ ...valid(), [k]: '' }, 400, 'invalid_request');
    });
  }
  it('only a grant_type', async () => {
    await refused({ grant_type: TOKEN_EXCHANGE }, 400, 'invalid_request');
  });
});

describe('grant and token types', () => {
  for (const g of ['client_credentials', 'password', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:Token-Exchange', `${TOKEN_EXCHANGE} `, `${TOKEN_EXCHANGE}\u0000`, 'token-exchange']) {
    it(`grant_type ${JSON.stringify(g)}: 400 unsupported_grant_type`, async () => {
      await refused({ ...valid(), grant_type: g }, 400, 'unsupported_grant_type');
    });
  }
  for (const t of ['urn:ietf:params:oauth:token-type:saml2', 'urn:ietf:params:oauth:token-type:saml1', 'urn:ietf:params:oauth:token-type:refresh_token', 'urn:ietf:params:oauth:token-type:JWT', 'jwt', 'urn:x:evil']) {
    it(`subject_token_type ${t}: 400 invalid_request`, async () => {
      await refused({ ...valid(), subject_token_type: t }, 400, 'invalid_request');
    });
  }
  it('subject_token_type access_token (delegation) without actor_token: 400 invalid_request', async () => {
    await refused({ ...valid(), subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }, 400, 'invalid_request');
  });
  it('actor_token with an attestation as subject_token (not a delegation): 400 invalid_request', async () => {
    const actor = await h.b.attest('orch');
    await refused({ ...valid(), actor_token: actor, actor_token_type: JWT_TYPE }, 400, 'invalid_request');
  });
  it('actor_token present but empty is still refused', async () => {
    await refused({ ...valid(), actor_token: '' }, 400, 'invalid_request');
  });
  for (const t of ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:refresh_token', 'urn:ietf:params:oauth:token-type:saml2', 'bearer', 'x']) {
    it(`requested_token_type ${t}: 400 invalid_request`, async () => {
      await refused({ ...valid(), requested_token_type: t }, 400, 'invalid_request');
    });
  }
});

describe('confusable Unicode, control characters and NUL bytes', () => {
  const cyrillicA = '\u0430';
  for (const [label, scope] of [
    ['Cyrillic а in "reаd"', `re${cyrillicA}d`],
    ['fullwidth ｒｅａｄ', '\uff52\uff45\uff41\uff44'],
    ['zero-width space inside read', 're\u200bad'],
    ['combining mark after read', 'read\u0301'],
    ['Kelvin sign K in ADMIN-like', 'admin\u212a'],
    ['right-to-left override', '\u202eread'],
  ] as const) {
    it(`scope with ${label}: 400 invalid_scope`, async () => {
      await refused({ ...valid(), scope }, 400, 'invalid_scope');
    });
  }
  it('tool with a Cyrillic homoglyph (seаrch): 400 invalid_scope', async () => {
    await refused({ ...valid(), tools: `se${cyrillicA}rch` }, 400, 'invalid_scope');
  });
  it('audience with a Cyrillic homoglyph (https://аpi.test): 400 invalid_target', async () => {
    await refused({ ...valid(), audience: `https://${cyrillicA}pi.test` }, 400, 'invalid_target');
  });
  it('audience as punycode of the homoglyph: 400 invalid_target', async () => {
    await refused({ ...valid(), audience: 'https://xn--pi-8kc.test' }, 400, 'invalid_target');
  });
  for (const [label, scope] of [
    ['newline', 'read\nadmin'],
    ['tab', 'read\tadmin'],
    ['carriage return', 'read\r'],
    ['NUL', 'read\u0000'],
    ['NUL then admin', 'read\u0000admin'],
    ['DEL', 'read\u007f'],
    ['double space', 'read  write'],
    ['leading space', ' read'],
    ['trailing space', 'read '],
    ['a double quote', 'read"'],
    ['a backslash', 'read\\'],
  ] as const) {
    it(`scope with ${label}: 400 invalid_scope`, async () => {
      await refused({ ...valid(), scope }, 400, 'invalid_scope');
    });
  }
  it('NUL in task_id: 400 invalid_request', async () => {
    await refused({ ...valid(), task_id: `${task}\u0000` }, 400, 'invalid_request');
  });
  it('NUL inside the subject_token: 400 invalid_request', async () => {
    await refused({ ...valid(), subject_token: `${proof.slice(0, 20)}\u0000${proof.slice(20)}` }, 400, 'invalid_request');
  });
  it('NUL or newline in audience: 400 invalid_target', async () => {
    await refused({ ...valid(), audience: `${API}\u0000` }, 400, 'invalid_target');
    await refused({ ...valid(), audience: `${API}\n${OTHER_API}` }, 400, 'invalid_target');
  });
});

describe('oversized values', () => {
  it('a 10 KB scope: 400 invalid_request', async () => {
    await refused({ ...valid(), scope: 'a'.repeat(10_000) }, 400, 'invalid_request');
  });
  it('a 129-character scope token: 400 invalid_scope', async () => {
    await refused({ ...valid(), scope: 'r'.repeat(129) }, 400, 'invalid_scope');
  });
  it('a thousand distinct scope tokens: refused, not a 500', async () => {
    await refused({ ...valid(), scope: Array.from({ length: 1000 }, (_, i) => `s${i}`).join(' ') }, 400, 'invalid_request');
  });
  it('a 10 KB tools list: 400 invalid_request', async () => {
    await refused({ ...valid(), tools: 'x '.repeat(5000).trim() }, 400, 'invalid_request');
  });
  it('a 600-character audience: 400 invalid_target', async () => {
    await refused({ ...valid(), audience: `https://${'a'.repeat(600)}.test` }, 400, 'invalid_target');
  });
  it('a 10 KB subject_token: 400 invalid_request', async () => {
    await refused({ ...valid(), subject_token: 'e'.repeat(10_000) }, 400, 'invalid_request');
  });
  it('a 10 KB grant_type: 400 (unsupported or invalid, never 500)', async () => {
    const r = await refused({ ...valid(), grant_type: 'g'.repeat(10_000) }, 400, 'invalid_request');
    expect(r.body.error_description).toMatch(/too long/);
  });
  it('ten thousand unknown parameters under the body cap: ignored, not a 500', async () => {
    const body = `${formBody(valid())}&${Array.from({ length: 6000 }, (_, i) => `p${i}=1`).join('&')}`;
    expect(body.length).toBeLessThan(65_536);
    const r = await raw(h.b.url, { path: '/oauth/token', body, headers: FORM });
    expect(r.status, r.text).toBe(200);
  });
});

describe('task_id shapes', () => {
  for (const t of ['../', '../../etc/passwd', '..%2F..%2F', '{x}', 'tsk_{x}', 'tsk_AAAAAAAAAAAAAAAA}:creds', 'tsk_AAAAAAAAAAAAAAAA:creds', '*', 'tsk_*', 'tsk_????????????????', 'TSK_AAAAAAAAAAAAAAAAAAAA', ' tsk_AAAAAAAAAAAAAAAAAAAA', 'tsk_short', 'tsk_AAAAAAAAAAAAAAAAAAAA\r\nDEL *', `tsk_${'a'.repeat(10_000)}`, `tsk_${'A'.repeat(65)}`, '%00', 'null', '[]', '{"$ne":null}', 'tsk_AAAAAAAAAAAAAAAAAAAA']) {
    it(`task_id ${JSON.stringify(t.length > 40 ? `${t.slice(0, 30)}…(${t.length})` : t)}: 400 invalid_request`, async () => {
      await refused({ ...valid(), task_id: t }, 400, 'invalid_request');
    });
  }
  it('a real task id with a suffix or its last character changed is another (unknown) task', async () => {
    await refused({ ...valid(), task_id: `${task}A` }, 400, 'invalid_request');
    await refused({ ...valid(), task_id: `${task.slice(0, -1)}${task.endsWith('A') ? 'a' : 'A'}` }, 400, 'invalid_request');
  });
});

describe('body size cap (64 KiB → 413)', () => {
  const big = (n: number) => {
    const base = formBody(valid());
    return `${base}&pad=${'x'.repeat(n - base.length - 5)}`;
  };
  it('a 65 KiB body with Content-Length: 413 with the error body', async () => {
    await refusedRaw(big(65 * 1024), FORM, 413, 'invalid_request');
  });
  it('a 65 537-byte body (one over): 413', async () => {
    const body = big(65_537);
    expect(body.length).toBe(65_537);
    await refusedRaw(body, FORM, 413, 'invalid_request');
  });
  it('exactly 65 536 bytes is accepted (not an off-by-one refusal)', async () => {
    const body = big(65_536);
    expect(body.length).toBe(65_536);
    const r = await raw(h.b.url, { path: '/oauth/token', body, headers: FORM });
    expect(r.status, r.text).toBe(200);
  });
  it('a chunked body (no Content-Length) over the cap: 413', async () => {
    await refusedRaw(big(70_000), FORM, 413, 'invalid_request', 4096);
  });
  it('a 1 MiB body with Content-Length: 413 without reading it', async () => {
    await refusedRaw(Buffer.alloc(1024 * 1024, 0x61), FORM, 413, 'invalid_request');
  });
  it('a Content-Length claiming 10 GB: 413', async () => {
    const r = await raw(h.b.url, { path: '/oauth/token', headers: { ...FORM, 'content-length': String(10 * 1024 ** 3) }, body: undefined });
    expectError(r, 413, 'invalid_request');
  });
  it('a 1 MiB chunked body: 413, and the broker keeps serving', async () => {
    await refusedRaw(Buffer.alloc(1024 * 1024, 0x61), FORM, 413, 'invalid_request', 64 * 1024);
    expect((await raw(h.b.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
  });
  it('a 65 KiB JSON body to /v1/tasks: 413', async () => {
    const r = await raw(h.b.url, { path: '/v1/tasks', body: JSON.stringify({ ...WIDE_TASK, purpose: 'p'.repeat(66 * 1024) }), headers: { ...JSON_CT, authorization: 'Bearer op-token-0123456789abcdef' } });
    expectError(r, 413, 'invalid_request');
  });
  it('a 65 KiB body to /oauth/introspect and /oauth/revoke: 413', async () => {
    for (const path of ['/oauth/introspect', '/oauth/revoke']) {
      const r = await raw(h.b.url, { path, body: `token=${'x'.repeat(66 * 1024)}`, headers: FORM });
      expectError(r, 413, 'invalid_request');
    }
  });
});

describe('wrong methods and paths', () => {
  it('GET /oauth/token: a 4xx with the error body', async () => {
    const r = await raw(h.b.url, { method: 'GET', path: `/oauth/token?${formBody(valid())}` });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(typeof r.body.error).toBe('string');
    expect(r.body.error_description.length).toBeGreaterThan(0);
  });
  // (/oauth/./token is the same URL after RFC 3986 dot-segment removal, so it is rightly served)
  it('PUT, a trailing slash, a doubled slash, upper case: 4xx, nothing issued', async () => {
    const before = await issued(h, task);
    for (const [method, path] of [['PUT', '/oauth/token'], ['DELETE', '/oauth/token'], ['POST', '/oauth/token/'], ['POST', '//oauth/token'], ['POST', '/OAUTH/TOKEN'], ['POST', '/oauth/token%00']] as const) {
      const r = await raw(h.b.url, { method, path, body: formBody(valid()), headers: FORM });
      expect(r.status === 200 || r.status >= 500, `${method} ${path} → ${r.status} ${r.text}`).toBe(false);
    }
    expect(await issued(h, task)).toBe(before);
  });
});

describe('every error answer, however early, carries the standard body and no-store / nosniff', () => {
  const rawBytes = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const u = new URL(h.b.url);
      const sock = connect(Number(u.port), u.hostname, () => sock.write(bytes));
      let out = '';
      sock.on('data', (d) => (out += d));
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
  const check = (r: { status: number; headers: Headers; body: { error?: string } }, status: number) => {
    expect(r.status).toBe(status);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(typeof r.body.error).toBe('string');
  };
  it('413 over the body limit, 415 for a Content-Encoding, 404, 405', async () => {
    check(await raw(h.b.url, { path: '/v1/certificates', body: 'x'.repeat(70_000), headers: JSON_CT }), 413);
    check(await raw(h.b.url, { path: '/v1/tasks', body: '{}', headers: { ...JSON_CT, 'content-encoding': 'gzip' } }), 415);
    check(await raw(h.b.url, { method: 'GET', path: '/v1/nothing-here' }), 404);
    check(await raw(h.b.url, { method: 'PUT', path: '/v1/tasks', body: '{}', headers: JSON_CT }), 405);
  });
  it('Expect: 100-continue is answered 413 at once for a body over the limit, 100 for one it takes; another expectation is 417', async () => {
    const u = new URL(h.b.url);
    const head = (extra: string) => `POST /v1/tasks HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${OPERATOR.token}\r\n${extra}\r\n`;
    const big = await rawBytes(head('Expect: 100-continue\r\nContent-Length: 1000000\r\n'));
    expect(big).toMatch(/^HTTP\/1\.1 413 /); // no 100 Continue first: the body is never asked for
    expect(big).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
    expect(big).toMatch(/"error":"invalid_request"/);
    const body = JSON.stringify(WIDE_TASK);
    const small = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname, () => sock.write(head(`Expect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n`)));
      let out = '';
      sock.on('data', (d) => {
        out += d;
        if (/^HTTP\/1\.1 100 /.test(out) && !out.includes('201')) sock.write(body);
      });
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
    expect(small).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
    const odd = await rawBytes(head('Expect: something-else\r\nContent-Length: 2\r\nConnection: close\r\n') + '{}');
    expect(odd).toMatch(/^HTTP\/1\.1 417 /);
    expect(odd).toMatch(/"error":"invalid_request"/);
  });
  it('a request Node itself refuses (malformed) gets them too', async () => {
    const out = await rawBytes('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(out).toMatch(/\r\nCache-Control: no-store\r\n/i);
    expect(out).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
  });
  it('CONNECT and an HTTP/1.1 request without Host get the standard body (501, 400); HTTP/1.0 needs no Host', async () => {
    const standard = (out: string, status: number) => {
      expect(out).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(out).toMatch(/\r\nCache-Control: no-store\r\n/i);
      expect(out).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
      expect(JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
    };
    standard(await rawBytes('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), 501);
    standard(await rawBytes('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'), 400);
    standard(await rawBytes(`POST /v1/certificates HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`), 400);
    expect(await rawBytes('GET /healthz HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    // two Host fields (RFC 9112 section 3.2: 400), and the request target * (OPTIONS only)
    standard(await rawBytes('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'), 400);
    standard(await rawBytes('GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400);
    const star = await rawBytes('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(star).toMatch(/^HTTP\/1\.1 204 /);
    expect(star).toMatch(/\r\nAllow: DELETE, GET, HEAD, OPTIONS, POST\r\n/i);
  });
});
