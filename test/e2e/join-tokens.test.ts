/**
 * One-time join tokens: an operator makes one for an identity registered with `attestor: join`; the
 * workload uses it once (token exchange, or Bearer for a certificate), and never again, on either store.
 * The CLI's `join-token create` makes one a workload can then use with `mayfly token`.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, baseDoc, bearer, http, id, newSigner, OPERATOR, postForm, startTestBroker, TOKEN_EXCHANGE, WIDE_TASK, api, type TestBroker, STORES } from '../helpers/broker.js';
import type { ManualClock } from '../../src/clock.js';
import { newKeyAndCsr } from '../../src/sdk/client/csr.js';

const JOIN_TYPE = 'urn:mayfly:params:oauth:token-type:join-token';
const JOINER = id('agent/joiner');

function mayfly(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

/** The test registrations plus JOINER, registered for join tokens. */
const withJoiner = async () => [
  ...baseDoc(0, { main: await newSigner('x'), other: await newSigner('y') }).registrations,
  { spiffe_id: JOINER, attestor: 'join', owner: 'edge@example.com', roles: ['agent'], scopes: ['read'], tools: ['search'], audiences: [API], certificates: true },
];

describe.each(STORES)('join tokens (%s)', (store) => {
  let b: TestBroker;
  let taskId: string;
  beforeAll(async () => {
    b = await startTestBroker({ store, extra: { registrations: await withJoiner() } });
    taskId = (await api(b).openTask(WIDE_TASK)).body.task_id;
  });
  afterAll(() => b.close());

  const create = (body: unknown, token = OPERATOR.token) =>
    http(`${b.url}/v1/join-tokens`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const exchange = (subject: string, type = JOIN_TYPE) =>
    postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: type, task_id: taskId });

  it('attests its identity once, and is refused the second time', async () => {
    const c = await create({ spiffe_id: JOINER, ttl: '5m' });
    expect(c.status).toBe(201);
    expect(c.headers.get('cache-control')).toBe('no-store');
    expect(c.body).toMatchObject({ spiffe_id: JOINER, token: expect.stringMatching(/^mfjt_[A-Za-z0-9_-]{43}$/) });
    expect(Date.parse(c.body.expires_at) - b.clock.now()).toBeLessThanOrEqual(5 * 60_000);
    const first = await exchange(c.body.token);
    expect(first.status).toBe(200);
    const claims = JSON.parse(Buffer.from(first.body.access_token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ client_id: JOINER, sub: JOINER, scope: 'read', tools: ['search'] });
    const again = await exchange(c.body.token);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_request');
  });

  it('works as the Bearer attestation for a certificate, once', async () => {
    const { token } = (await create({ spiffe_id: JOINER })).body;
    const pem = newKeyAndCsr().csrPem;
    const issue = () => http(`${b.url}/v1/certificates`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify({ task_id: taskId, csr: pem }) });
    const r = await issue();
    expect(r.status).toBe(201);
    expect(r.body.spiffe_id).toBe(JOINER);
    expect((await issue()).status).toBe(401); // invalid_token, as for any refused attestation on this route
  });

  it('refuses what it must: expired, forged, mistyped, non-operator, unregistered, bad ttl', async () => {
    const { token } = (await create({ spiffe_id: JOINER, ttl: '1m' })).body;
    (b.clock as ManualClock).advance(61_000);
    expect((await exchange(token)).status).toBe(400); // expired (and gone: it was taken)
    (b.clock as ManualClock).advance(-61_000);
    expect((await exchange(`mfjt_${'A'.repeat(43)}`)).status).toBe(400); // never issued
    expect((await exchange('mfjt_short')).status).toBe(400);
    const fresh = (await create({ spiffe_id: JOINER })).body.token;
    expect((await exchange(fresh, 'urn:ietf:params:oauth:token-type:jwt')).body.error).toBe('invalid_request'); // wrong type
    expect((await exchange(await b.attest('agent-b'), JOIN_TYPE)).body.error).toBe('invalid_request'); // a JWT is no join token
    // presented, even mistyped, it is spent: whoever saw that request cannot use it after
    expect((await exchange(fresh)).body.error).toBe('invalid_request');
    const another = (await create({ spiffe_id: JOINER })).body.token;
    const badScope = await postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: another, subject_token_type: JOIN_TYPE, task_id: taskId, scope: 'bad\u0001scope' });
    expect(badScope.body.error).toBe('invalid_scope');
    expect((await exchange(another)).status).toBe(400); // refused before the exchange: spent all the same
    expect((await exchange((await create({ spiffe_id: JOINER })).body.token)).status).toBe(200);

    expect((await create({ spiffe_id: JOINER }, 'not-an-operator')).status).toBe(401); // no credential of this broker
    expect((await create({ spiffe_id: JOINER }, await b.attest('orch'))).status).toBe(403); // a known caller, not an operator
    expect((await http(`${b.url}/v1/join-tokens`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(401);
    expect((await create({ spiffe_id: id('agent/b') })).body.error).toBe('invalid_request'); // registered, but not for join tokens
    expect((await create({ spiffe_id: id('nobody') })).status).toBe(400);
    expect((await create({ spiffe_id: JOINER, ttl: '25h' })).status).toBe(400);
    expect((await create({ spiffe_id: JOINER, ttl: 'soon' })).status).toBe(400);
    for (const ttl of [0, -5, 1.5, 86_401, '60', true]) expect((await create({ spiffe_id: JOINER, ttl })).status, String(ttl)).toBe(400);
    // whole seconds as a number, as POST /v1/tasks takes them
    const secs = await create({ spiffe_id: JOINER, ttl: 90 });
    expect(secs.status, secs.text).toBe(201);
    expect(Date.parse(secs.body.expires_at) - b.clock.now()).toBeGreaterThan(80_000);
    expect(Date.parse(secs.body.expires_at) - b.clock.now()).toBeLessThanOrEqual(90_000);
    expect((await create({ spiffe_id: JOINER, extra: 1 })).status).toBe(400);
    expect((await create({})).status).toBe(400);
    const audit = JSON.stringify((await http(`${b.url}/v1/audit?limit=200`, { headers: bearer(OPERATOR.token) })).body);
    expect(audit).toContain('join_token.created');
    expect(audit).not.toContain(fresh); // only a hash prefix is audited
  });
});

describe('join tokens through the CLI', () => {
  let b: TestBroker;
  let taskId: string;
  beforeAll(async () => {
    b = await startTestBroker({ extra: { registrations: await withJoiner() } });
    taskId = (await api(b).openTask(WIDE_TASK)).body.task_id;
  });
  afterAll(() => b.close());

  it('mayfly join-token create, then mayfly token with it', async () => {
    const env = { MAYFLY_URL: b.url, MAYFLY_OPERATOR_TOKEN: OPERATOR.token, MAYFLY_TOKEN: '', MAYFLY_CLIENT_ID: '', MAYFLY_CLIENT_SECRET: '' };
    const made = await mayfly(['join-token', 'create', JOINER, '--ttl', '5m'], env);
    expect(made.code, made.err).toBe(0);
    const token = made.out.trim();
    expect(token).toMatch(/^mfjt_/);
    expect(made.err).toContain(JOINER);
    const used = await mayfly(['token', '--task', taskId, '--token', token], { ...env, MAYFLY_OPERATOR_TOKEN: '' });
    expect(used.code, used.err).toBe(0);
    expect(used.out.trim().split('.')).toHaveLength(3);
    const reused = await mayfly(['token', '--task', taskId, '--token', token], { ...env, MAYFLY_OPERATOR_TOKEN: '' });
    expect(reused.code).toBe(1);
    expect((await mayfly(['join-token', 'create', id('agent/b')], env)).code).toBe(1);
    expect((await mayfly(['join-token', 'create'], env)).code).toBe(2);
    // --ttl as whole seconds
    const secs = await mayfly(['join-token', 'create', JOINER, '--ttl', '90', '--json'], env);
    expect(secs.code, secs.err).toBe(0);
    expect(Date.parse(JSON.parse(secs.out).expires_at) - b.clock.now()).toBeLessThanOrEqual(90_000);
    const task = await mayfly(['task', 'open', '--agent', JOINER, '--ttl', '90', '--json'], env);
    expect(task.code, task.err).toBe(0);
  });
});
