/**
 * The client-side CLI as a user runs it: `node --import tsx src/cli/main.ts ...` in a child process
 * against a real broker (real Redis), checking output and exit codes (0 ok, 1 refused/inactive, 2 usage).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, API, CLIENT, http, id, OPERATOR, OTHER_API, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { createClient } from '../../src/sdk/client/index.js';

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function mayfly(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { ...process.env, MAYFLY_URL: '', MAYFLY_TOKEN: '', MAYFLY_OPERATOR_TOKEN: '', MAYFLY_CLIENT_ID: '', MAYFLY_CLIENT_SECRET: '', MAYFLY_CONFIG: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdin.end(stdin ?? '');
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

describe('mayfly CLI', { timeout: 60_000 }, () => {
  let b: TestBroker;
  let env: Record<string, string>;
  const op = () => ({ ...env, MAYFLY_OPERATOR_TOKEN: OPERATOR.token });
  const rs = () => ({ ...env, MAYFLY_CLIENT_ID: CLIENT.id, MAYFLY_CLIENT_SECRET: CLIENT.secret });
  beforeAll(async () => {
    b = await startTestBroker();
    env = { MAYFLY_URL: b.url };
  });
  afterAll(() => b.close());

  it('explains itself: help, per-command --help, usage errors exit 2 on stderr', async () => {
    const [help, taskHelp, bad, none, unknown] = await Promise.all([
      mayfly(['help']),
      mayfly(['task', '--help']),
      mayfly(['task', 'open', '--bogus']),
      mayfly(['introspect', 'x.y.z'], env),
      mayfly(['frobnicate']),
    ]);
    expect(help.code).toBe(0);
    for (const c of ['serve', 'dev', 'task open|show|close', 'token', 'introspect', 'revoke', 'inspect', 'keys', 'join-token']) expect(help.out).toContain(c);
    expect(taskHelp).toMatchObject({ code: 0, err: '' });
    expect(taskHelp.out).toMatch(/usage: mayfly task open --agent ID/);
    expect(taskHelp.out).toMatch(/exit codes: 0 ok, 1 refused or inactive, 2 usage/);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('');
    expect(bad.err).toMatch(/Unknown option '--bogus'[\s\S]*see mayfly task --help/);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/needs --client-id and --client-secret, or --operator-token/);
    expect(unknown.code).toBe(2);
    const empty = await mayfly(['revoke', 'principal', '', '--operator-token', 'x']);
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/an empty argument/);
    // the two server commands too: help on stdout, a bad option a usage error (never a stack trace)
    for (const cmd of ['serve', 'dev']) {
      const h = await mayfly([cmd, '--help']);
      expect(h, cmd).toMatchObject({ code: 0, err: '' });
      expect(h.out).toMatch(new RegExp(`^mayfly ${cmd} \\[--`));
      const wrong = await mayfly([cmd, '--bogus']);
      expect(wrong.code, cmd).toBe(2);
      expect(wrong.err).toMatch(new RegExp(`Unknown option '--bogus'[\\s\\S]*see mayfly ${cmd} --help`));
      expect(wrong.err).not.toMatch(/\n\s+at /);
    }
  });

  it('task open/show/close, token, introspect and inspect through a task lifetime', async () => {
    const opened = await mayfly(['task', 'open', '--agent', id('agent/*'), '--scope', 'read', '--scope', 'write', '--tool', 'search', '--audience', API, '--ttl', '20m', '--purpose', 'cli test', '--on-behalf-of', 'user:fay@example.com'], {
      ...env,
      MAYFLY_TOKEN: await b.attest('orch'),
    });
    expect(opened.err).toBe('');
    expect(opened.code).toBe(0);
    const task = opened.out.trim();
    expect(task).toMatch(/^tsk_[A-Za-z0-9_-]+$/);

    const tok = await mayfly(['token', '--task', task, '--scope', 'read', '--token', await b.attest('agent-a')], env);
    expect(tok.code, tok.err).toBe(0);
    const token = tok.out.trim();
    expect(token.split('.')).toHaveLength(3);

    const refused = await mayfly(['token', '--task', task, '--scope', 'admin'], { ...env, MAYFLY_TOKEN: await b.attest('agent-a') });
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/invalid_scope/);

    // ceilings left out: the orchestrator's registration's, so the task is usable
    const bare = await mayfly(['task', 'open', '--agent', id('agent/a'), '--json'], { ...env, MAYFLY_TOKEN: await b.attest('orch') });
    expect(bare.code, bare.err).toBe(0);
    expect(JSON.parse(bare.out)).toMatchObject({ scopes: ['read', 'write', 'admin'], audiences: [API, OTHER_API] });
    expect((await mayfly(['token', '--task', JSON.parse(bare.out).task_id, '--scope', 'read', '--token', await b.attest('agent-a')], env)).code).toBe(0);
    // an operator token the broker refuses: a configuration error (2), not a verdict
    expect((await mayfly(['inspect', token], { ...env, MAYFLY_OPERATOR_TOKEN: 'nope-nope-nope' })).code).toBe(2);

    const [decoded, intro, inspected, shown] = await Promise.all([
      mayfly(['token', '--decode', '-'], {}, token),
      mayfly(['introspect', token], rs()),
      mayfly(['inspect', token], op()),
      mayfly(['task', 'show', task], op()),
    ]);
    expect(decoded.code).toBe(0);
    expect(JSON.parse(decoded.out)).toMatchObject({ header: { typ: 'at+jwt', alg: 'ES256' }, payload: { task_id: task, scope: 'read', sub: 'user:fay@example.com' } });
    expect(intro.code).toBe(0);
    expect(intro.out).toMatch(/^active\s+yes$/m);
    expect(intro.out).toMatch(new RegExp(`^task\\s+${task}$`, 'm'));
    expect(inspected.code, inspected.err).toBe(0);
    expect(inspected.out).toMatch(/^signature\s+valid \(ES256/m);
    expect(inspected.out).toMatch(/^feed\s+checked against the revocation feed$/m);
    expect(inspected.out).toMatch(/^verdict\s+ACTIVE: signed by the broker, unexpired, and not revoked$/m);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^state\s+open$/m);
    expect(shown.out).toMatch(/^purpose\s+cli test$/m);
    expect(shown.out).toMatch(/^credentials\s+1 issued, 1 active/m);

    const closed = await mayfly(['task', 'close', task], op());
    expect(closed).toMatchObject({ code: 0, out: `closed ${task}: 1 credential revoked\n` });

    const [intro2, inspected2, json] = await Promise.all([mayfly(['introspect', token], rs()), mayfly(['inspect', token], op()), mayfly(['inspect', token, '--json'], rs())]);
    expect(intro2).toMatchObject({ code: 1, out: 'inactive\n' });
    expect(inspected2.code).toBe(1);
    expect(inspected2.out).toMatch(new RegExp(`^verdict\\s+INACTIVE: its task ${task} was closed \\(closed by operator, .* ago\\)$`, 'm'));
    expect(inspected2.out).toMatch(/^task state\s+closed \(closed by operator\)$/m);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ active: false, code: 'revoked', reason: 'task_closed', checks: { signature: 'valid', feed: 'checked', introspection: 'inactive' } });
  });

  it('cert writes an X509-SVID, its key (0600) and the bundle; openssl verifies it; refused without certificates: true', async () => {
    const task = (await api(b).openTask({ agents: [id('agent/*')], scopes: ['read'], tools: ['search'], audiences: [API], ttl: '20m' })).body.task_id;
    const out = mkdtempSync(join(tmpdir(), 'mayfly-cli-cert-'));
    const r = await mayfly(['cert', '--task', task, '--out', out, '--token', await b.attest('agent-b')], env);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`^spiffe_id\\s+${id('agent/b')}$`, 'm'));
    expect(readdirSync(out).sort()).toEqual(['bundle.pem', 'svid-key.pem', 'svid.pem']);
    expect(statSync(join(out, 'svid-key.pem')).mode & 0o777).toBe(0o600);
    const verified = spawnSync('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), join(out, 'svid.pem')], { encoding: 'utf8' });
    expect(verified.stdout).toMatch(/OK/);
    const serial = /^serial\s+([0-9a-f]+)$/m.exec(r.out)![1]!;
    expect((await http(`${b.url}/v1/certificates/${serial}`)).body).toMatchObject({ status: 'good', task_id: task });
    const refused = await mayfly(['cert', '--task', task, '--out', out, '--token', await b.attest('agent-a')], env);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/access_denied|not registered for certificates/);
    expect((await mayfly(['cert', '--out', out], env)).code).toBe(2);

    // a key file already there, world-readable: the new key replaces it with mode 0600
    chmodSync(join(out, 'svid-key.pem'), 0o644);
    const again = await mayfly(['cert', '--task', task, '--out', out, '--token', await b.attest('agent-b')], env);
    expect(again.code, again.err).toBe(0);
    expect(statSync(join(out, 'svid-key.pem')).mode & 0o777).toBe(0o600);
    expect(readdirSync(out).sort()).toEqual(['bundle.pem', 'svid-key.pem', 'svid.pem']);
    // a directory it cannot write to: a usage error before anything is asked of the broker
    const before = (await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: { authorization: `Bearer ${OPERATOR.token}` } })).body.certificates.length;
    const missing = await mayfly(['cert', '--task', task, '--out', join(out, 'nope'), '--token', await b.attest('agent-b')], env);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--out .*nope: no such directory/);
    expect(missing.err).not.toMatch(/\n\s+at /); // no stack trace
    expect((await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: { authorization: `Bearer ${OPERATOR.token}` } })).body.certificates.length).toBe(before);
  });

  it('revoke token, identity (and unlock) and principal, and inspect says why', async () => {
    const a = api(b);
    const t1 = (await a.openTask({ agents: [id('agent/*')], scopes: ['read'], audiences: [API], ttl: '20m', on_behalf_of: 'user:gus@example.com' })).body.task_id;
    const mint = async (agent: string) => (await a.exchange(await b.attest(agent), t1)).body.access_token as string;
    const [ta, tb, tc] = [await mint('agent-b'), await mint('agent-a'), await mint('agent-b')];

    expect(await mayfly(['revoke', 'token', ta], rs())).toMatchObject({ code: 0 });
    const locked = await mayfly(['revoke', 'identity', id('agent/a')], op());
    expect(locked.code, locked.err).toBe(0);
    expect(locked.out).toMatch(/^locked spiffe:\/\/test.local\/agent\/a: every credential issued up to .* is inactive/);
    const [ia, ib] = await Promise.all([mayfly(['inspect', ta], rs()), mayfly(['inspect', tb], op())]);
    expect(ia.code).toBe(1);
    expect(ia.out).toMatch(/^verdict\s+INACTIVE: this token was revoked on its own \(RFC 7009\)$/m);
    expect(ib.code).toBe(1);
    expect(ib.out).toMatch(/^verdict\s+INACTIVE: the agent identity spiffe:\/\/test.local\/agent\/a is locked$/m);
    expect(ib.out).toMatch(/^identity\s+locked$/m);
    expect((await mayfly(['revoke', 'identity', id('agent/a'), '--unlock'], op())).out).toMatch(/^unlocked/);
    expect((await mayfly(['inspect', tb], op())).out).toMatch(/^verdict\s+INACTIVE: the agent identity .* was locked when this token was issued/m);

    const p = await mayfly(['revoke', 'principal', 'user:gus@example.com', '--json'], op());
    expect(JSON.parse(p.out)).toMatchObject({ principal: 'user:gus@example.com', revoked: true });
    const ic = await mayfly(['inspect', tc], op());
    expect(ic.code).toBe(1);
    expect(ic.out).toMatch(/^verdict\s+INACTIVE: everything acting for user:gus@example.com was revoked, which closed its task/m);

    const t2 = (await a.openTask({ agents: [id('agent/*')], scopes: ['read'], audiences: [API], ttl: '20m' })).body.task_id;
    const cert = await createClient({ brokerUrl: b.url, attestation: { kind: 'test', token: () => b.attest('agent-b') } }).certificate({ task: t2 });
    const rc = await mayfly(['revoke', 'certificate', cert.serial.toUpperCase()], rs());
    expect(rc.code, rc.err).toBe(0);
    expect(rc.out).toMatch(new RegExp(`^revoked certificate ${cert.serial} \\(at `));
    expect((await http(`${b.url}/v1/certificates/${cert.serial}`)).body.status).toBe('revoked');
    expect(await mayfly(['revoke', 'certificate', 'abcdef'], rs())).toMatchObject({ code: 1, err: expect.stringMatching(/not_found/) });

    const noOp = await mayfly(['revoke', 'principal', 'user:x@example.com'], rs());
    expect(noOp.code).toBe(2);
    expect(noOp.err).toMatch(/needs --operator-token/);
    const wrongOp = await mayfly(['revoke', 'principal', 'user:x@example.com'], { ...env, MAYFLY_OPERATOR_TOKEN: 'nope-nope-nope' });
    // credentials the broker does not accept: a configuration error (2), as a wrong client secret is
    expect(wrongOp.code).toBe(2);
    expect(wrongOp.err).toMatch(/did not accept the credentials: invalid_token/);
  });

  it('inspect explains forged and foreign tokens, and says when revocation was not checked', async () => {
    const t = (await api(b).openTask({ agents: [id('agent/*')], scopes: ['read'], audiences: [API], ttl: '20m' })).body.task_id;
    const token = (await api(b).exchange(await b.attest('agent-b'), t)).body.access_token as string;
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'read admin deploy' })).toString('base64url')}.${s}`;
    const attestation = await b.attest('agent-b');
    const [f, g, att, unchecked, aud] = await Promise.all([
      mayfly(['inspect', forged], rs()),
      mayfly(['inspect', 'garbage'], rs()),
      mayfly(['inspect', attestation], rs()),
      mayfly(['inspect', token], env),
      mayfly(['inspect', token, '--audience', 'https://elsewhere.test'], rs()),
    ]);
    expect(f.code).toBe(1);
    expect(f.out).toMatch(/^signature\s+NOT valid/m);
    expect(f.out).toMatch(/INACTIVE: its signature does not verify/);
    expect(g.code).toBe(1);
    expect(g.out).toMatch(/INACTIVE: not a compact JWT/);
    expect(att.code).toBe(1);
    expect(att.out).toMatch(/INACTIVE: it is signed with a key \(kid main-1\) the broker does not publish/);
    // never ACTIVE on its signature alone: a closed task's token has a valid one too
    expect(unchecked.code).toBe(1);
    expect(unchecked.out).toMatch(/^verdict\s+UNKNOWN: .*revocation NOT checked/m);
    expect(aud.code).toBe(1);
    expect(aud.out).toMatch(/INACTIVE: it is not meant for https:\/\/elsewhere.test/);
  });

  it('keys lists the key directory with kids; keys rotate adds a 0600 key that signs next', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cli-keys-'));
    cpSync(b.running.broker.config.keysDir, dir, { recursive: true });
    const jwks = (await http(`${b.url}/.well-known/jwks.json`)).body;
    const listed = await mayfly(['keys', '--dir', dir, '--json']);
    expect(listed.code, listed.err).toBe(0);
    const before = JSON.parse(listed.out);
    expect(before.keys.map((k: { kid: string }) => k.kid)).toEqual(jwks.keys.map((k: { kid: string }) => k.kid));
    expect(before.keys[0]).toMatchObject({ signing: true, type: 'EC P-256', algs: ['ES256'] });

    const rotated = await mayfly(['keys', 'rotate', '--dir', dir, '--json']);
    expect(rotated.code, rotated.err).toBe(0);
    const r = JSON.parse(rotated.out);
    expect(r).toMatchObject({ alg: 'ES256', published: 2 });
    expect(statSync(r.file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.endsWith('.pem'))).toHaveLength(2);
    const human = await mayfly(['keys', 'list', '--dir', dir]);
    expect(human.out).toMatch(new RegExp(`^\\* ${r.kid}\\s+EC P-256 .*\\(signs\\)$`, 'm'));
    expect(human.out).toContain(`  ${before.keys[0].kid}`);
    expect((await mayfly(['keys', 'rotate', '--dir', dir, '--alg', 'HS256'])).code).toBe(2);
    // a corrupt key in the directory: named, exit 2, and no key written
    writeFileSync(join(dir, 'broken.pem'), 'not a key');
    const pems = readdirSync(dir).filter((n) => n.endsWith('.pem')).length;
    const corrupt = await mayfly(['keys', 'rotate', '--dir', dir]);
    expect(corrupt.code).toBe(2);
    expect(corrupt.err).toMatch(/broken\.pem: not a PEM private key/);
    expect(corrupt.err).not.toMatch(/\n\s+at /);
    expect(readdirSync(dir).filter((n) => n.endsWith('.pem')).length).toBe(pems);
  });

  it('serve on a listen.host that is no address of this machine: named, exit 2, no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cli-host-'));
    for (const host of ['no-such-host.invalid', '192.0.2.1']) {
      const cfg = join(dir, 'mayfly.yaml');
      writeFileSync(cfg, `issuer: https://m.example\ntrust_domain: example.com\nstore: memory\nlisten: {host: ${JSON.stringify(host)}, port: 0}\nkeys: {dir: ${JSON.stringify(join(dir, 'keys'))}}\n`);
      const r = await mayfly(['serve', '--config', cfg]);
      expect(r.code, `${host}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(/listen\.host: cannot listen there/);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it('keys rotate with keys.publish_ahead in the config: the new key is published, and says from when it signs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cli-keys-'));
    cpSync(b.running.broker.config.keysDir, dir, { recursive: true });
    const cfg = join(dir, 'mayfly.yaml');
    writeFileSync(cfg, `issuer: https://m.example\ntrust_domain: example.com\nstore: memory\nkeys: {dir: ${JSON.stringify(dir)}, publish_ahead: 10m}\n`);
    const before = Date.now();
    const rotated = await mayfly(['keys', 'rotate', '--config', cfg, '--json']);
    expect(rotated.code, rotated.err).toBe(0);
    const r = JSON.parse(rotated.out);
    const from = Date.parse(r.signs_from);
    expect(from).toBeGreaterThanOrEqual(before + 600_000 - 2000);
    expect(from).toBeLessThanOrEqual(Date.now() + 600_000);
    const list = JSON.parse((await mayfly(['keys', '--config', cfg, '--json'])).out).keys as Array<{ kid: string; signing: boolean; signs_from?: string }>;
    expect(list.find((k) => k.kid === r.kid)).toMatchObject({ signing: false, signs_from: r.signs_from });
    expect(list.filter((k) => k.signing)).toHaveLength(1);
    expect((await mayfly(['keys', '--config', cfg])).out).toMatch(new RegExp(`^  ${r.kid}.*\\(published; signs from ${r.signs_from}\\)$`, 'm'));
  });

  it('a broker that takes the connection and never answers: --timeout (or $MAYFLY_TIMEOUT) seconds, then exit 2 naming it; a bad --timeout is a usage error', async () => {
    const { createServer } = await import('node:net');
    const held: import('node:net').Socket[] = [];
    const mute = createServer((s) => void held.push(s)); // reads nothing, answers nothing
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(mute.address() as { port: number }).port}`;
    try {
      const started = Date.now();
      const [flag, byEnv, dev] = await Promise.all([
        mayfly(['task', 'show', 'tsk_0000000000000000', '--timeout', '1'], { MAYFLY_URL: url, MAYFLY_OPERATOR_TOKEN: OPERATOR.token }),
        mayfly(['introspect', 'x.y.z'], { MAYFLY_URL: url, MAYFLY_TIMEOUT: '1', MAYFLY_CLIENT_ID: CLIENT.id, MAYFLY_CLIENT_SECRET: CLIENT.secret }),
        mayfly(['cert', '--task', 'tsk_0000000000000000', '--dev-workload', 'agent-a', '--out', mkdtempSync(join(tmpdir(), 'mayfly-cli-')), '--timeout', '1'], { MAYFLY_URL: url }),
      ]);
      for (const r of [flag, byEnv, dev]) {
        expect(r.code, r.err).toBe(2);
        expect(r.err).toContain(`no answer from the broker at ${url} within 1 s (--timeout)`);
      }
      expect(Date.now() - started).toBeLessThan(20_000); // not the default 30 s
    } finally {
      for (const s of held) s.destroy();
      mute.close();
    }
    // headers sent, then the body stalls: the same deadline and the same message
    const { createServer: createHttp } = await import('node:http');
    const stalling = createHttp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"task_id":');
    });
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', () => r()));
    const slowUrl = `http://127.0.0.1:${(stalling.address() as { port: number }).port}`;
    try {
      const r = await mayfly(['task', 'show', 'tsk_0000000000000000', '--timeout', '1'], { MAYFLY_URL: slowUrl, MAYFLY_OPERATOR_TOKEN: OPERATOR.token });
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`no answer from the broker at ${slowUrl} within 1 s (--timeout)`);
    } finally {
      stalling.closeAllConnections();
      stalling.close();
    }
    for (const bad of ['0', '1.5', 'soon', '3601']) {
      const r = await mayfly(['task', 'show', 'tsk_0000000000000000', '--timeout', bad], { MAYFLY_URL: b.url, MAYFLY_OPERATOR_TOKEN: OPERATOR.token });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--timeout \(\$MAYFLY_TIMEOUT\): whole seconds from 1 to 3600/);
    }
  });

  it('join-token create without a SPIFFE ID is a usage error (exit 2); an unreachable broker is a configuration error', async () => {
    const [jt, down] = await Promise.all([mayfly(['join-token', 'create'], op()), mayfly(['task', 'show', 'tsk_0000000000000000'], { MAYFLY_URL: 'http://127.0.0.1:9', MAYFLY_OPERATOR_TOKEN: OPERATOR.token })]);
    expect(jt).toMatchObject({ code: 2, out: '' });
    expect(jt.err).toMatch(/expected 1 argument/);
    expect(down.code).toBe(2);
    expect(down.err).toMatch(/cannot reach the broker at http:\/\/127.0.0.1:9/);
  });
});
