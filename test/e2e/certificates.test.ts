/**
 * X.509-SVIDs for tasks over HTTP, checked with real tools: openssl verifies the chain, reads the
 * certificate, the CRL and OCSP answers; closing the task, locking the identity or revoking the serial
 * revokes the certificate everywhere.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { api, basic, bearer, http, id, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker, STORES } from '../helpers/broker.js';
import type { ManualClock } from '../../src/clock.js';

const dir = mkdtempSync(join(tmpdir(), 'mayfly-certs-'));
const ossl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const file = (name: string, content?: string | Buffer) => {
  const p = join(dir, name);
  if (content !== undefined) writeFileSync(p, content);
  return p;
};

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/**
 * A CSR asking for content the broker decides itself (another subject, key usages, EKU, a challenge
 * password), all of it ignored; `exts` adds requested extensions (`-addext` values).
 */
function csr(name: string, keyArgs: string[] = P256, exts: string[] = []): { pem: string; der: Buffer } {
  ossl('req', '-new', ...keyArgs, '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', '/CN=evil/O=attacker',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature', '-addext', 'extendedKeyUsage=codeSigning,emailProtection',
    ...exts.flatMap((e) => ['-addext', e]));
  ossl('req', '-in', file(`${name}.csr`), '-outform', 'DER', '-out', file(`${name}.csr.der`));
  return { pem: readFileSync(file(`${name}.csr`), 'utf8'), der: readFileSync(file(`${name}.csr.der`)) };
}

describe.each(STORES)('certificates for tasks (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let bundle: string;
  beforeAll(async () => {
    b = await startTestBroker({ store });
    a = api(b);
    bundle = file(`bundle-${store}.pem`, (await http(`${b.url}/v1/ca/bundle`)).text);
  });
  afterAll(() => b.close());
  const request = async (taskId: string, pem: string, who = 'agent-b') =>
    http(`${b.url}/v1/certificates`, { method: 'POST', headers: { ...bearer(await b.attest(who)), 'content-type': 'application/json' }, body: JSON.stringify({ task_id: taskId, csr: pem }) });
  // async: the broker runs in this process, so a synchronous child would block the answer it waits for
  const ocsp = async (cert: string) =>
    (await promisify(execFile)('openssl', ['ocsp', '-issuer', bundle, '-CAfile', bundle, '-cert', cert, '-url', `${b.url}/v1/ca/ocsp`, '-no_nonce'], { timeout: 10_000 })).stdout;

  it('answers alike whether node:http takes the request directly (application/json) or the hono app does (a charset parameter)', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const closed = (await a.openTask(WIDE_TASK)).body.task_id;
    await a.close(closed);
    const agent = await b.attest('agent-b');
    const good = JSON.stringify({ task_id: task, csr: csr(`same-${store}`).pem });
    const cases: Array<[string, Record<string, string>, string]> = [
      ['issued', bearer(agent), good],
      ['not JSON', bearer(agent), '{"task_id":'],
      ['an array', bearer(agent), '[]'],
      ['a duplicate key', bearer(agent), `{"task_id":"${task}","task_id":"${task}","csr":"x"}`],
      ['an unknown field', bearer(agent), JSON.stringify({ task_id: task, csr: 'x', extra: 1 })],
      ['no csr', bearer(agent), JSON.stringify({ task_id: task })],
      ['a malformed task id', bearer(agent), JSON.stringify({ task_id: '../x', csr: 'x' })],
      ['a closed task', bearer(agent), JSON.stringify({ task_id: closed, csr: csr(`closed-${store}`).pem })],
      ['garbage PEM', bearer(agent), JSON.stringify({ task_id: task, csr: 'not a csr' })],
      ['a garbage attestation', bearer('garbage'), good],
      ['a malformed Bearer', { authorization: 'Bearer a b' }, good],
      ['an orchestrator', bearer(await b.attest('orch')), good],
      ['invalid UTF-8', bearer(agent), '{"task_id":"\xff"}'],
    ];
    for (const [label, auth, body] of cases) {
      const [fast, viaHono] = await Promise.all(
        ['application/json', 'application/json; charset=utf-8'].map((ct) =>
          http(`${b.url}/v1/certificates`, { method: 'POST', headers: { ...auth, 'content-type': ct }, body: label === 'invalid UTF-8' ? Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) : body }),
        ),
      );
      const shape = (r: Awaited<ReturnType<typeof http>>) => ({
        status: r.status,
        type: r.headers.get('content-type'),
        cache: r.headers.get('cache-control'),
        nosniff: r.headers.get('x-content-type-options'),
        challenge: r.headers.get('www-authenticate'),
        keys: Object.keys(r.body ?? {}).sort(),
        error: r.body?.error,
        description: r.body?.error_description,
      });
      expect(shape(fast!), label).toEqual(shape(viaHono!));
    }
  });

  it('a repeated Authorization or Content-Type is refused, whichever copy is good (never the first one taken)', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const agent = await b.attest('agent-b');
    const body = JSON.stringify({ task_id: task, csr: csr(`twice-${store}`).pem });
    const send = (extra: string[]) =>
      new Promise<string>((resolve, reject) => {
        const u = new URL(b.url);
        const sock = connect(Number(u.port), u.hostname, () => {
          sock.write(['POST /v1/certificates HTTP/1.1', `Host: ${u.host}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`, ...extra, '', body].join('\r\n'));
        });
        let out = '';
        sock.on('data', (d) => (out += d));
        sock.on('end', () => resolve(out.split('\r\n')[0]!));
        sock.on('error', reject);
      });
    const json = 'Content-Type: application/json';
    for (const extra of [
      [json, `Authorization: Bearer ${agent}`, 'Authorization: Bearer garbage'],
      [json, 'Authorization: Bearer garbage', `Authorization: Bearer ${agent}`],
      [json, 'Content-Type: text/plain', `Authorization: Bearer ${agent}`],
    ])
      expect(await send(extra), extra.join(' | ').slice(0, 60)).not.toMatch(/ 201 /);
    expect(await send([json, `Authorization: Bearer ${agent}`])).toMatch(/ 201 /); // (control)
  });

  it('issues a SPIFFE X509-SVID that openssl verifies, deciding its content itself', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const r = await request(task, csr(`a-${store}`).pem);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ spiffe_id: id('agent/b'), task_id: task });
    expect(r.body.serial).toMatch(/^[0-9a-f]{16,40}$/);
    expect(Array.isArray(r.body.chain)).toBe(true);
    const leaf = file(`leaf-${store}.pem`, r.body.certificate);
    expect(ossl('verify', '-CAfile', bundle, leaf)).toMatch(/OK/);
    const text = ossl('x509', '-in', leaf, '-noout', '-text');
    expect(text).toContain(`URI:${id('agent/b')}`);
    expect(text).not.toContain('evil');
    expect(text).not.toContain('Certificate Sign');
    expect(text).not.toContain('Code Signing');
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/TLS Web Client Authentication/);
    expect(text).toMatch(/TLS Web Server Authentication/);
    expect(text).toContain('1.3.6.1.4.1.59470.1.1');
    expect(text).toContain(`${b.url}/v1/ca/crl`);
    // not_after <= min(registration max_ttl (none: tokens.default_ttl 5m), task deadline)
    expect(Date.parse(r.body.not_after) - b.clock.now()).toBeLessThanOrEqual(5 * 60_000);
    const status = await http(`${b.url}/v1/certificates/${r.body.serial}`);
    expect(status.body).toMatchObject({ serial: r.body.serial, status: 'good', spiffe_id: id('agent/b'), task_id: task });
    expect(await ocsp(leaf)).toMatch(/: good/);
  });

  it('accepts a DER body as application/pkcs10 with ?task_id=', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const r = await http(`${b.url}/v1/certificates?task_id=${task}`, {
      method: 'POST',
      headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/pkcs10' },
      body: new Uint8Array(csr(`der-${store}`, ["-newkey", "ed25519"]).der),
    });
    expect(r.status).toBe(201);
  });

  it('closing the task revokes the certificate in status, OCSP and the CRL', async () => {
    const orch = await b.attest('orch');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const r = await request(task, csr(`c-${store}`).pem);
    const leaf = file(`closed-${store}.pem`, r.body.certificate);
    const closed = await a.close(task, orch);
    expect(closed.body.revoked).toBe(1);
    expect((await http(`${b.url}/v1/certificates/${r.body.serial}`)).body).toMatchObject({ status: 'revoked', reason: 'task_closed' });
    expect(await ocsp(leaf)).toMatch(/: revoked/);
    const crl = await http(`${b.url}/v1/ca/crl`);
    expect(crl.status).toBe(200);
    expect(crl.headers.get('content-type')).toBe('application/pkix-crl');
    const crlRes = await fetch(`${b.url}/v1/ca/crl`);
    const crlFile = file(`crl-${store}.der`, Buffer.from(await crlRes.arrayBuffer()));
    const crlText = ossl('crl', '-inform', 'DER', '-in', crlFile, '-CAfile', bundle, '-noout', '-text');
    expect(crlText).toContain(r.body.serial.toUpperCase());
    expect(crlText).toMatch(/CRL Number/);
    expect(crlText).toMatch(/Next Update/);
    // and no new certificate for a closed task
    expect((await request(task, csr(`c2-${store}`).pem)).status).toBe(400);
  });

  it('locking the identity or revoking the serial revokes it; each revocation is a feed event', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const one = (await request(task, csr(`l1-${store}`).pem)).body;
    const two = (await request(task, csr(`l2-${store}`).pem)).body;
    const cursor = (await http(`${b.url}/v1/revocations`, { headers: basic() })).body.cursor;
    const rv = await http(`${b.url}/v1/certificates/${one.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(rv.status).toBe(200);
    expect((await http(`${b.url}/v1/certificates/${one.serial}`)).body.status).toBe('revoked');
    expect((await http(`${b.url}/v1/certificates/${two.serial}`)).body.status).toBe('good');
    const events = (await http(`${b.url}/v1/revocations?since=${cursor}`, { headers: basic() })).body.events;
    expect(events).toEqual([expect.objectContaining({ type: 'certificate.revoked', serial: one.serial, task_id: task })]);
    await a.lock(id('agent/b'));
    expect((await http(`${b.url}/v1/certificates/${two.serial}`)).body).toMatchObject({ status: 'revoked', reason: 'identity_locked' });
    // this process granted agent-b a certificate just before the lock, with the state it then saw:
    // the store's assertion catches the lock, and the fresh decision refuses it, recording nothing
    const issuedBefore = (await http(`${b.url}/v1/tasks/${task}`, { headers: bearer(OPERATOR.token) })).body.credentials;
    const refused = await request(task, csr(`l3-${store}`).pem);
    expect(refused.status).toBe(400);
    expect(refused.body.error_description).toMatch(/locked/);
    expect((await http(`${b.url}/v1/tasks/${task}`, { headers: bearer(OPERATOR.token) })).body.credentials).toEqual(issuedBefore);
    const crlFile = file(`crl2-${store}.der`, Buffer.from(await (await fetch(`${b.url}/v1/ca/crl`)).arrayBuffer()));
    const crlText = ossl('crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text');
    expect(crlText).toContain(one.serial.toUpperCase());
    expect(crlText).toContain(two.serial.toUpperCase());
    await a.lock(id('agent/b'), 'DELETE');
    // in the very second of the unlock, a certificate would be revoked at birth (fail closed): none is signed
    const born = await request(task, csr(`l4-${store}`).pem);
    expect(born.status).toBe(503);
    expect(born.body.error).toBe('temporarily_unavailable');
    (b.clock as ManualClock).advance(1000);
  });

  it('a principal revoked after a grant: the next request for its task is refused, nothing recorded', async () => {
    const principal = `user:cert-${store}`;
    const task = (await a.openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id;
    // a grant: this process now decides on the principal's cutoff it confirmed (none)
    expect((await request(task, csr(`p1-${store}`).pem)).status).toBe(201);
    expect((await a.revokePrincipal(principal)).status).toBe(200);
    const view = async () => (await http(`${b.url}/v1/tasks/${task}`, { headers: bearer(OPERATOR.token) })).body.credentials;
    const before = await view();
    const r = await request(task, csr(`p2-${store}`).pem);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_request');
    expect(await view()).toEqual(before);
  });

  it("counts a task's certificates among its active credentials until revoked, locked or closed", async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const creds = async () => (await a.getTask(task)).body.credentials;
    const one = (await request(task, csr(`n1-${store}`).pem)).body;
    expect((await request(task, csr(`n2-${store}`).pem)).status).toBe(201);
    expect((await a.exchange(await b.attest('agent-b'), task)).status).toBe(200);
    expect(await creds()).toMatchObject({ issued: 3, active: 3 });
    const revoked = await http(`${b.url}/v1/certificates/${one.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(revoked.status).toBe(200);
    expect(await creds()).toMatchObject({ issued: 3, active: 2 });
    // revoked again: nothing more to count out
    await http(`${b.url}/v1/certificates/${one.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(await creds()).toMatchObject({ active: 2 });
    expect((await a.lock(id('agent/b'))).status).toBe(200);
    expect(await creds()).toMatchObject({ issued: 3, active: 0, locked_agents: [id('agent/b')] });
    expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
    (b.clock as ManualClock).advance(1000); // a new grant in a later second than the lock's
    expect((await request(task, csr(`n3-${store}`).pem)).status).toBe(201);
    expect(await creds()).toMatchObject({ issued: 4, active: 1 });
    // the close counts the unexpired credentials not revoked one by one (a lock's, as for tokens, included)
    expect((await a.close(task)).body.revoked).toBe(3);
  });

  it('every refusal before issuance is audited too: no credentials, a malformed task id or body, another media type', async () => {
    // the whole log after `after`, page by page
    const audit = async (after = '') => {
      const all: Array<{ id: string; type: string; reason?: string }> = [];
      for (;;) {
        const page = (await http(`${b.url}/v1/audit?limit=1000${after ? `&after=${after}` : ''}`, { headers: bearer(OPERATOR.token) })).body as { events: typeof all };
        all.push(...page.events);
        if (page.events.length < 1000) return all;
        after = page.events.at(-1)!.id;
      }
    };
    const since = (await audit()).at(-1)?.id ?? '';
    const pem = csr(`pre-${store}`).pem;
    const post = async (headers: Record<string, string>, body: string | Buffer, query = '') => http(`${b.url}/v1/certificates${query}`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
    const json = { 'content-type': 'application/json' };
    const agent = bearer(await b.attest('agent-b'));
    const answers = [
      await post(json, JSON.stringify({ task_id: 'tsk_x', csr: pem })), // no credentials (the fast path does not take it)
      await post({ ...agent, ...json }, JSON.stringify({ task_id: 'not a task id', csr: pem })), // fast path
      await post({ ...agent, ...json }, JSON.stringify({ csr: pem })),
      await post({ ...agent, 'content-type': 'text/plain' }, 'hello'),
      await post({ ...agent, 'content-type': 'application/pkcs10' }, csr(`pre-der-${store}`).der), // no ?task_id=
    ];
    expect(answers.map((r) => r.status)).toEqual([401, 400, 400, 415, 400]);
    const events = await audit(since);
    expect(events.filter((e) => e.type === 'certificate.denied').map((e) => e.reason)).toEqual(['no_credentials', 'malformed_request', 'malformed_request', 'bad_media_type', 'malformed_request']);
  });

  it('a withdrawal whose revocation landed but answered too late, and whose audit write failed once, is still audited once', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const store = b.running.broker.store;
    const real = { record: store.recordCertificate.bind(store), revoke: store.revokeCertificate.bind(store), append: store.appendAudit.bind(store) };
    let recorded = '';
    let auditFailed = false;
    const late = new StoreUnavailableError(new Error('Command timed out'));
    const spies = [
      vi.spyOn(store, 'recordCertificate').mockImplementationOnce(async (rec, ...rest) => {
        await real.record(rec, ...rest);
        recorded = rec.serial;
        throw late;
      }),
      vi.spyOn(store, 'revokeCertificate').mockImplementationOnce(async (...args) => {
        await real.revoke(...args); // the withdrawal lands, its answer does not: the retry finds it done
        throw late;
      }),
      vi.spyOn(store, 'appendAudit').mockImplementation(async (e, log) => {
        if (e.reason === 'withheld' && !auditFailed) {
          auditFailed = true; // the withdrawal's audit write fails once
          throw late;
        }
        return real.append(e, log);
      }),
    ];
    try {
      expect((await request(task, csr(`late2-${store.kind}`).pem)).status).toBe(503);
      const withheld = async () =>
        ((await http(`${b.url}/v1/audit?task_id=${task}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; reason?: string; serial?: string }>).filter(
          (e) => e.serial === recorded && e.type === 'certificate.revoked',
        );
      await vi.waitFor(async () => expect(await withheld()).toHaveLength(1), { timeout: 5000 });
      await new Promise((r) => setTimeout(r, 600));
      expect((await withheld()).map((e) => e.reason)).toEqual(['withheld']);
      expect((await http(`${b.url}/v1/certificates/${recorded}`)).body.status).toBe('revoked');
      expect(auditFailed).toBe(true);
    } finally {
      for (const x of spies) x.mockRestore();
    }
  });

  it('a record the store took but answered too late (503) is withdrawn: never good, its withholding audited after its grant', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const store = b.running.broker.store;
    const real = store.recordCertificate.bind(store);
    let recorded = '';
    const late = vi.spyOn(store, 'recordCertificate').mockImplementationOnce(async (rec, ...rest) => {
      await real(rec, ...rest); // it lands...
      recorded = rec.serial;
      throw new StoreUnavailableError(new Error('Command timed out')); // ...but the answer never came
    });
    try {
      const r = await request(task, csr(`late-${store.kind}`).pem);
      expect(r.status).toBe(503);
      expect(r.body.certificate).toBeUndefined();
    } finally {
      late.mockRestore();
    }
    expect(recorded).not.toBe('');
    await vi.waitFor(async () => expect((await http(`${b.url}/v1/certificates/${recorded}`)).body.status).toBe('revoked'), { timeout: 5000 });
    const listed = (await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: bearer(OPERATOR.token) })).body.certificates as Array<{ status: string }>;
    expect(listed.map((c) => c.status)).toEqual(['revoked']);
    expect((await a.getTask(task)).body.credentials).toMatchObject({ active: 0 });
    // the grant was written with the record (one store call), so the trail tells both: granted, then withheld
    const events = (await http(`${b.url}/v1/audit?task_id=${task}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; reason?: string; serial?: string }>;
    expect(events.filter((e) => e.serial === recorded).map((e) => [e.type, e.reason])).toEqual([
      ['certificate.granted', undefined],
      ['certificate.revoked', 'withheld'],
    ]);
  });

  it('refuses what it must, recording and signing nothing', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const made = csr(`r-${store}`);
    const good = made.pem;
    const notAllowed = await request(task, good, 'agent-a'); // registration without certificates: true
    expect(notAllowed.status).toBe(403);
    expect(notAllowed.body.error).toBe('access_denied');
    const weak = csr(`weak-${store}`, ['-newkey', 'rsa:1024']).pem;
    expect((await request(task, weak)).body.error).toBe('invalid_request');
    const flipped = Buffer.from(made.der);
    flipped[flipped.length - 1]! ^= 0x01; // last byte of the CSR's signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${flipped.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await request(task, tampered)).status).toBe(400);
    expect((await request(task, 'garbage')).status).toBe(400);
    expect((await request('tsk_AAAAAAAAAAAAAAAAAAAAAA', good)).status).toBe(400);
    expect((await http(`${b.url}/v1/certificates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_id: task, csr: good }) })).status).toBe(401);
    expect((await a.getTask(task)).body.credentials.issued).toBe(0);
    expect((await http(`${b.url}/v1/certificates/zz`)).status).toBe(400);
    expect((await http(`${b.url}/v1/certificates/00112233445566778899`)).status).toBe(404);
  });

  it('refuses a CSR asking for CA:TRUE or a name other than its own SPIFFE ID, recording nothing; its own name is fine', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const refusals: [string, string[], string][] = [
      ['ca', ['basicConstraints=critical,CA:TRUE'], 'csr_asks_ca'],
      ['ca-noncritical', ['basicConstraints=CA:TRUE,pathlen:0'], 'csr_asks_ca'],
      ['other-agent', [`subjectAltName=URI:${id('orch')}`], 'csr_foreign_san'],
      ['own-and-other', [`subjectAltName=URI:${id('agent/b')},URI:${id('agent/a')}`], 'csr_foreign_san'],
      ['dns', ['subjectAltName=DNS:api.example'], 'csr_foreign_san'],
      ['ip-email', ['subjectAltName=IP:10.0.0.1,email:b@example.com'], 'csr_foreign_san'],
      ['other-domain', [`subjectAltName=URI:spiffe://evil.local/agent/b`], 'csr_foreign_san'],
    ];
    for (const [name, exts, reason] of refusals) {
      const r = await request(task, csr(`ask-${name}-${store}`, P256, exts).pem);
      expect(r.status, name).toBe(400);
      expect(r.body.error, name).toBe('invalid_request');
      expect(r.body.error_description, name).toMatch(reason === 'csr_asks_ca' ? /CA:TRUE/ : /subjectAltName/);
    }
    // the DER form is judged the same way
    const der = await http(`${b.url}/v1/certificates?task_id=${task}`, {
      method: 'POST',
      headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/pkcs10' },
      body: new Uint8Array(csr(`ask-der-${store}`, P256, [`subjectAltName=URI:${id('orch')}`]).der),
    });
    expect(der.status).toBe(400);
    expect(der.body.error_description).toContain(id('orch'));
    expect((await a.getTask(task)).body.credentials.issued).toBe(0);
    expect((await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: bearer(OPERATOR.token) })).body.total).toBe(0);
    const denials = (await http(`${b.url}/v1/audit?task_id=${task}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events
      .filter((e: { type: string }) => e.type === 'certificate.denied')
      .map((e: { reason: string }) => e.reason);
    expect(denials).toEqual([...refusals.map((r) => r[2]), 'csr_foreign_san']);

    // naming only itself is no request for more: issued
    const own = await request(task, csr(`ask-own-${store}`, P256, [`subjectAltName=URI:${id('agent/b')}`]).pem);
    expect(own.status).toBe(201);
    expect(ossl('x509', '-in', file(`own-${store}.pem`, own.body.certificate), '-noout', '-ext', 'subjectAltName')).toContain(`URI:${id('agent/b')}`);
  });

  it('its status agrees with the certificate, under any common spelling of the serial', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const r = await request(task, csr(`status-${store}`).pem);
    const cert = new X509Certificate(r.body.certificate);
    expect(Date.parse(r.body.not_after)).toBe(Date.parse(cert.validTo));
    const s = r.body.serial as string;
    const spellings = [s, s.toUpperCase(), s.match(/../g)!.join(':'), `00${s}`, cert.serialNumber];
    for (const sp of spellings) {
      const st = await http(`${b.url}/v1/certificates/${sp}`);
      expect(st.status, sp).toBe(200);
      expect(st.body).toMatchObject({ serial: s, status: 'good', not_after: r.body.not_after });
    }
    expect((await http(`${b.url}/v1/certificates/not-hex`)).status).toBe(400);
  });

  it('POST /oauth/revoke takes a certificate too: its serial or the PEM; an unknown one is 200 and changes nothing', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const one = (await request(task, csr(`rv1-${store}`).pem)).body;
    const two = (await request(task, csr(`rv2-${store}`).pem)).body;
    const three = (await request(task, csr(`rv3-${store}`).pem)).body;
    expect((await a.revoke(one.serial.toUpperCase())).status).toBe(200);
    expect((await a.revoke(two.certificate)).status).toBe(200);
    expect((await a.revoke('0badc0ffee0badc0ffee')).status).toBe(200);
    const status = async (serial: string) => (await http(`${b.url}/v1/certificates/${serial}`)).body.status;
    expect(await status(one.serial)).toBe('revoked');
    expect(await status(two.serial)).toBe('revoked');
    expect(await status(three.serial)).toBe('good');
    // without client credentials: refused, nothing revoked
    expect((await a.revoke(three.serial, {} as never)).status).toBe(401);
    expect(await status(three.serial)).toBe('good');
  });

  it('a refused attestation is 401 invalid_token, a workload without the agent role 403', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const send = (auth: string) =>
      http(`${b.url}/v1/certificates`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ task_id: task, csr: csr(`auth-${store}`).pem }) });
    const forged = await send(`Bearer ${(await b.attest('agent-b', { signer: b.signers.other })).toString()}`);
    expect(forged.status).toBe(401);
    expect(forged.body.error).toBe('invalid_token');
    const orch = await send(`Bearer ${await b.attest('orch')}`);
    expect(orch.status).toBe(403);
    expect(orch.body.error).toBe('access_denied');
    expect((await send('Basic Zm9vOmJhcg==')).status).toBe(401);
    expect((await a.getTask(task)).body.credentials.issued).toBe(0);
  });

  it('serves the trust bundle as PEM and as a SPIFFE JWKS', async () => {
    const jwks = (await http(`${b.url}/v1/ca/spiffe-bundle`)).body;
    expect(jwks.keys[0].use).toBe('x509-svid');
    expect(jwks.keys[0].x5c).toHaveLength(1);
    // the anchor's own key, and a sequence that grows with a new CA (its notBefore, in seconds)
    const anchor = new X509Certificate(Buffer.from(jwks.keys[0].x5c[0], 'base64'));
    expect(anchor.publicKey.export({ format: 'jwk' }).x).toBe(jwks.keys[0].x);
    expect(jwks.spiffe_sequence).toBe(Math.floor(Date.parse(anchor.validFrom) / 1000));
    expect((await http(`${b.url}/v1/ca/bundle?format=jwks`)).body).toEqual(jwks);
    expect((await http(`${b.url}/v1/ca/bundle?format=pem`, { headers: { accept: 'application/json' } })).text).toBe(readFileSync(bundle, 'utf8'));
    // a format it does not serve is refused, not answered in another one
    for (const q of ['format=der', 'format=xyz', 'format=', 'format=jwks&format=pem']) {
      const r = await http(`${b.url}/v1/ca/bundle?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error, q).toBe('invalid_request');
    }
    // content negotiation: JSON only when the client asks for nothing PEM would also satisfy
    for (const accept of ['application/jwk-set+json', 'application/json', 'application/json; q=1.0', 'text/html, application/jwk-set+json;q=0.9']) {
      const r = await http(`${b.url}/v1/ca/bundle`, { headers: { accept } });
      expect(r.body, accept).toEqual(jwks);
      // answered in the media type asked for: the JWK Set's own (RFC 7517 §8.5) when named
      expect(r.headers.get('content-type'), accept).toBe(accept.includes('jwk-set') ? 'application/jwk-set+json' : 'application/json');
    }
    for (const accept of ['*/*', 'application/json, text/plain, */*', 'application/x-pem-file', 'application/pem-certificate-chain', 'text/plain', 'application/json, application/x-pem-file']) {
      const pem = await http(`${b.url}/v1/ca/bundle`, { headers: { accept } });
      expect(pem.headers.get('content-type'), accept).toBe('application/x-pem-file');
      expect(pem.text, accept).toMatch(/^-----BEGIN CERTIFICATE-----/);
    }
  });

  it('after it ends, its status says expired (for as long again as it lived), and revoking it changes nothing', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const r = await request(task, csr(`exp-${store}`).pem);
    (b.clock as ManualClock).set(Date.parse(r.body.not_after) + 1000);
    const st = await http(`${b.url}/v1/certificates/${r.body.serial}`);
    expect(st.body).toMatchObject({ serial: r.body.serial, status: 'expired' });
    const rv = await http(`${b.url}/v1/certificates/${r.body.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(rv.body).toMatchObject({ status: 'expired' });
  });

  it('one revoked before it ended stays revoked after it (JSON status and OCSP agree with the CRL that lists it)', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const r = await request(task, csr(`rx-${store}`).pem);
    const leaf = file(`rx-${store}.pem`, r.body.certificate);
    const closed = await a.close(task);
    (b.clock as ManualClock).set(Date.parse(r.body.not_after) + 1000);
    const st = await http(`${b.url}/v1/certificates/${r.body.serial}`);
    expect(st.body).toMatchObject({ serial: r.body.serial, status: 'revoked', reason: 'task_closed', revoked_at: closed.body.closed_at });
    // (openssl warns that the answer's times lie ahead of its own clock, the broker's being moved on)
    expect(await ocsp(leaf)).toMatch(/(: |\n)revoked\n/);
    // revoked by serial, then expired: still revoked after CRL rebuilds have dropped it from their
    // indexes (the revocation is kept with the certificate's record); the revoke call says the same
    const task3 = (await a.openTask(WIDE_TASK)).body.task_id;
    const r3 = await request(task3, csr(`rx3-${store}`).pem);
    const rv3 = await http(`${b.url}/v1/certificates/${r3.body.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    (b.clock as ManualClock).set(Date.parse(r3.body.not_after) + 1000);
    expect((await a.close((await a.openTask(WIDE_TASK)).body.task_id)).status).toBe(200); // another revocation:
    await fetch(`${b.url}/v1/ca/crl`).then((x) => x.arrayBuffer()); // a CRL rebuild
    expect((await http(`${b.url}/v1/certificates/${r3.body.serial}`)).body).toMatchObject({ status: 'revoked', reason: 'certificate_revoked', revoked_at: rv3.body.revoked_at });
    const again = await http(`${b.url}/v1/certificates/${r3.body.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    expect(again.body).toMatchObject({ status: 'revoked', revoked_at: rv3.body.revoked_at });
    // one whose task closed only after it ended was never revoked: expired
    const task2 = (await a.openTask(WIDE_TASK)).body.task_id;
    const r2 = await request(task2, csr(`rx2-${store}`).pem);
    (b.clock as ManualClock).set(Date.parse(r2.body.not_after) + 1000);
    expect((await a.close(task2)).status).toBe(200);
    expect((await http(`${b.url}/v1/certificates/${r2.body.serial}`)).body).toMatchObject({ status: 'expired' });
  });
});

describe('certificates from the generated CA with a configured backdate', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker({ store: 'memory', extra: { ca: { backdate: '5s' } } });
  });
  afterAll(() => b.close());

  it('sets not_before that far back, no further', async () => {
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const before = b.clock.now(); // the broker's (manual) clock: issuance happens at this instant
    const r = await http(`${b.url}/v1/certificates`, {
      method: 'POST',
      headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: task, csr: csr('backdate').pem }),
    });
    expect(r.status).toBe(201);
    const notBefore = Date.parse(new X509Certificate(r.body.certificate).validFrom);
    // floored to the second: within [issuance - 5 s - 1 s, issuance - 5 s]
    expect(notBefore).toBeGreaterThanOrEqual(before - 6_000);
    expect(notBefore).toBeLessThanOrEqual(before - 5_000);
  });
});

describe('certificates from a configured intermediate CA whose key is encrypted (ca.key_password_file)', () => {
  let b: TestBroker;
  const ext = file('int-ext.cnf', '[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n[v3_int]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n');
  beforeAll(async () => {
    ossl('req', '-x509', '-new', ...P256, '-nodes', '-keyout', file('cfg-root.key'), '-subj', '/O=Test/CN=cfg root', '-days', '30', '-config', ext, '-extensions', 'v3_ca', '-out', file('cfg-root.pem'));
    ossl('req', '-new', ...P256, '-nodes', '-keyout', file('cfg-int.plain.key'), '-subj', '/O=Test/CN=cfg intermediate', '-out', file('cfg-int.csr'));
    ossl('x509', '-req', '-in', file('cfg-int.csr'), '-CA', file('cfg-root.pem'), '-CAkey', file('cfg-root.key'), '-set_serial', '0x77', '-days', '30', '-extfile', ext, '-extensions', 'v3_int', '-out', file('cfg-int.pem'));
    ossl('pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', file('cfg-int.plain.key'), '-out', file('cfg-int.key'), '-passout', 'pass:open sesame');
    file('cfg-int.pass', 'open sesame\n');
    b = await startTestBroker({ store: 'memory', extra: { ca: { cert_file: file('cfg-int.pem'), key_file: file('cfg-int.key'), key_password_file: file('cfg-int.pass'), chain_file: file('cfg-root.pem') } } });
  });
  afterAll(() => b?.close());

  it('signs with the decrypted key: the bundle is the root, the chain the intermediate, and openssl verifies the leaf to the root', async () => {
    expect(readFileSync(file('cfg-int.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect((await http(`${b.url}/v1/ca/bundle`)).text).toBe(readFileSync(file('cfg-root.pem'), 'utf8'));
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const r = await http(`${b.url}/v1/certificates`, {
      method: 'POST',
      headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: task, csr: csr('cfg-leaf').pem }),
    });
    expect(r.status).toBe(201);
    expect(r.body.chain).toEqual([readFileSync(file('cfg-int.pem'), 'utf8')]);
    file('cfg-leaf.pem', r.body.certificate);
    file('cfg-chain.pem', r.body.chain.join(''));
    expect(ossl('verify', '-x509_strict', '-CAfile', file('cfg-root.pem'), '-untrusted', file('cfg-chain.pem'), file('cfg-leaf.pem'))).toContain('OK');
  });
});

describe('a CA near its notAfter: certificates stop at it, and an expired one issues nothing', () => {
  let b: TestBroker;
  const ext = file('short-ext.cnf', '[v3_int]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n');
  beforeAll(async () => {
    ossl('req', '-x509', '-new', ...P256, '-nodes', '-keyout', file('short-ca.key'), '-subj', '/O=Test/CN=short-lived CA', '-days', '1', '-config', ext, '-extensions', 'v3_int', '-out', file('short-ca.pem'));
    b = await startTestBroker({ store: 'memory', extra: { ca: { cert_file: file('short-ca.pem'), key_file: file('short-ca.key') } } });
  });
  afterAll(() => b?.close());

  it('the certificate, its record and status end at the CA notAfter (OCSP then says good: known, not revoked); past it, 503 ca_expired, audited, nothing recorded', async () => {
    const caNotAfter = Date.parse(new X509Certificate(readFileSync(file('short-ca.pem'))).validTo);
    const clock = b.clock as ManualClock;
    clock.set(caNotAfter - 60_000); // a minute left: less than any lifetime the registration allows
    const task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    const ask = async (name: string) =>
      http(`${b.url}/v1/certificates`, { method: 'POST', headers: { ...bearer(await b.attest('agent-b')), 'content-type': 'application/json' }, body: JSON.stringify({ task_id: task, csr: csr(name).pem }) });
    const ready = await http(`${b.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.ca).toEqual({ status: 'expiring', not_after: new Date(caNotAfter).toISOString() });
    const r = await ask('short-1');
    expect(r.status, r.text).toBe(201);
    expect(Date.parse(new X509Certificate(r.body.certificate).validTo)).toBe(caNotAfter);
    expect(Date.parse(r.body.not_after)).toBe(caNotAfter);
    const status = await http(`${b.url}/v1/certificates/${r.body.serial}`);
    expect(Date.parse(status.body.not_after)).toBe(caNotAfter);
    clock.set(caNotAfter + 1000);
    const late = await ask('short-2');
    expect(late.status, late.text).toBe(503);
    expect(late.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(late.body.error_description).toMatch(/CA certificate expired at/);
    // still ready (tokens are issued), and says why certificates are not
    const expiredReady = await http(`${b.url}/readyz`);
    expect(expiredReady.status).toBe(200);
    expect(expiredReady.body.ca.status).toBe('expired');
    expect((await http(`${b.url}/v1/certificates/${r.body.serial}`)).body.status).toBe('expired');
    // OCSP still knows it, and never revoked it: good (RFC 6960 §2.2), not unknown
    file('short-leaf.pem', r.body.certificate);
    ossl('ocsp', '-issuer', file('short-ca.pem'), '-cert', file('short-leaf.pem'), '-reqout', file('short-req.der'), '-no_nonce');
    const resp = await fetch(`${b.url}/v1/ca/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: readFileSync(file('short-req.der')) });
    file('short-resp.der', Buffer.from(await resp.arrayBuffer()));
    expect(ossl('ocsp', '-respin', file('short-resp.der'), '-resp_text', '-noverify')).toMatch(/Cert Status: good/);
    const events = (await http(`${b.url}/v1/audit?task_id=${task}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; reason?: string }>;
    expect(events.filter((e) => e.type.startsWith('certificate.')).map((e) => [e.type, e.reason])).toEqual([
      ['certificate.granted', undefined],
      ['certificate.denied', 'ca_expired'],
    ]);
    expect((await api(b).getTask(task)).body.credentials).toMatchObject({ issued: 1 });
  });
});
