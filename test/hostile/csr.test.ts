/**
 * Hostile certificate requests over HTTP (POST /v1/certificates): every case of the certificate issue's
 * bad-input list gets a 4xx with the standard error body, and nothing is recorded or signed: the task's
 * certificate inventory, its issued count and the audit's grants stay where they were. Then a
 * property over mutated CSRs, in both request forms: never a 5xx, never a certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, http, id, OPERATOR, WIDE_TASK, type Res } from '../helpers/broker.js';
import { expectClientError, expectError, hostileBroker, type HostileBroker } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'mayfly-hostile-csr-'));
const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A CSR made by openssl with `keyArgs` (a `-newkey` spec or `-key file`) and `-addext` values. */
function opensslCsr(name: string, keyArgs: string[], exts: string[] = []): { pem: string; der: Buffer } {
  ossl('req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=agent', ...exts.flatMap((e) => ['-addext', e]));
  ossl('req', '-in', `${name}.csr`, '-outform', 'DER', '-out', `${name}.der`);
  return { pem: readFileSync(join(dir, `${name}.csr`), 'utf8'), der: readFileSync(join(dir, `${name}.der`)) };
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const pemOf = (der: Uint8Array) => `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;

let h: HostileBroker;
let good: { pem: string; der: Buffer };
let dsaKey: string;
afterAll(async () => {
  await h?.b.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(async () => {
  h = await hostileBroker();
  good = opensslCsr('good', P256);
  ossl('genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', 'dsa.params');
  ossl('genpkey', '-paramfile', 'dsa.params', '-out', 'dsa.key');
  dsaKey = 'dsa.key';
});

const asJson = async (task: string, csr: unknown, who = 'agent-b') =>
  http(`${h.b.url}/v1/certificates`, { method: 'POST', headers: { ...bearer(await h.b.attest(who)), 'content-type': 'application/json' }, body: JSON.stringify({ task_id: task, csr }) });
const asDer = async (task: string, body: Uint8Array, who = 'agent-b') =>
  http(`${h.b.url}/v1/certificates?task_id=${encodeURIComponent(task)}`, { method: 'POST', headers: { ...bearer(await h.b.attest(who)), 'content-type': 'application/pkcs10' }, body: new Uint8Array(body) });

/** What a refused request must leave unchanged: the task's certificates, its issued count, the grants in its story. */
async function footprint(task: string): Promise<{ certificates: number; issued: number; granted: number }> {
  const op = bearer(OPERATOR.token);
  const certs = await http(`${h.b.url}/v1/tasks/${task}/certificates`, { headers: op });
  const t = await http(`${h.b.url}/v1/tasks/${task}`, { headers: op });
  const audit = await http(`${h.b.url}/v1/audit?task_id=${task}&limit=1000`, { headers: op });
  return {
    certificates: certs.body.total,
    issued: t.body.credentials.issued,
    granted: audit.body.events.filter((e: { type: string }) => e.type === 'certificate.granted').length,
  };
}

const noCertificate = (r: Res) => expect(r.text).not.toContain('BEGIN CERTIFICATE-----');

describe('the bad-input list, over HTTP: 4xx, nothing recorded, nothing signed', () => {
  it('malformed, tampered, weak or unsupported CSRs (JSON and DER forms)', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const before = await footprint(task);
    const flippedSig = Buffer.from(good.der);
    flippedSig[flippedSig.length - 1]! ^= 0x01;
    const flippedBody = Buffer.from(good.der);
    flippedBody[flippedBody.indexOf(Buffer.from('agent'))]! ^= 0x20;
    const cases: [string, string | Uint8Array, number][] = [
      ['garbage PEM', '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all!\n-----END CERTIFICATE REQUEST-----\n', 400],
      ['no PEM at all', 'hello', 400],
      ['truncated DER', good.der.subarray(0, good.der.length - 7), 400],
      ['truncated PEM', pemOf(good.der.subarray(0, 60)), 400],
      ['trailing bytes', Buffer.concat([good.der, Buffer.from([0, 0])]), 400],
      ['signature that does not verify', flippedSig, 400],
      ['signed part changed', flippedBody, 400],
      ['RSA 1024', opensslCsr('rsa1024', ['-newkey', 'rsa:1024']).der, 400],
      ['P-192', opensslCsr('p192', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime192v1']).der, 400],
      ['DSA', opensslCsr('dsa', ['-key', dsaKey]).der, 400],
      ['P-521', opensslCsr('p521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']).der, 400],
      ['a certificate instead of a CSR', ossl('req', '-x509', ...P256, '-nodes', '-keyout', 'x.key', '-subj', '/CN=x', '-days', '1'), 400],
      ['oversized (20 KiB of PEM)', `${good.pem}${'A'.repeat(20 * 1024)}`, 413],
    ];
    for (const [name, csr, status] of cases) {
      const viaJson = await asJson(task, typeof csr === 'string' ? csr : pemOf(csr));
      expectError(viaJson, status, 'invalid_request');
      noCertificate(viaJson);
      if (typeof csr !== 'string') {
        const viaDer = await asDer(task, csr);
        expect(viaDer.status, name).toBe(status);
        expectError(viaDer, status, 'invalid_request');
        noCertificate(viaDer);
      }
    }
    expect(await footprint(task)).toEqual(before);
  });

  it('a CSR asking for CA:TRUE or for SANs of another identity', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const before = await footprint(task);
    for (const exts of [
      ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign'],
      [`subjectAltName=URI:${id('orch')}`],
      [`subjectAltName=URI:${id('agent/b')},URI:${id('agent/a')}`],
      ['subjectAltName=DNS:localhost,IP:127.0.0.1'],
      [`subjectAltName=URI:${id('agent/b').toUpperCase()}`],
    ]) {
      const made = opensslCsr(`ask-${exts.join('-').replace(/[^a-z0-9]/gi, '')}`, P256, exts);
      for (const r of [await asJson(task, made.pem), await asDer(task, made.der)]) {
        expectError(r, 400, 'invalid_request');
        noCertificate(r);
      }
    }
    expect(await footprint(task)).toEqual(before);
  });

  it('a closed task, an unknown task, and a registration without certificates: true', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    expectError(await asJson(task, good.pem, 'agent-a'), 403, 'access_denied');
    expect((await h.a.close(task)).status).toBe(200);
    const before = await footprint(task);
    expectError(await asJson(task, good.pem), 400, 'invalid_request');
    expectError(await asDer(task, good.der), 400, 'invalid_request');
    expect(await footprint(task)).toEqual(before);
    expectError(await asJson('tsk_AAAAAAAAAAAAAAAAAAAAAA', good.pem), 400, 'invalid_request');
    expectError(await asJson('../../etc/passwd', good.pem), 400, 'invalid_request');
  });

  it('a task named twice, or in two places: 400, whichever task the copies name', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const other = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const before = await footprint(task);
    const post = async (query: string, type: string, body: string | Uint8Array) =>
      http(`${h.b.url}/v1/certificates${query}`, { method: 'POST', headers: { ...bearer(await h.b.attest('agent-b')), 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    for (const [a, b] of [[task, other], [task, task]]) {
      const twice = await post(`?task_id=${a}&task_id=${b}`, 'application/pkcs10', good.der);
      expectError(twice, 400, 'invalid_request');
      expect(twice.body.error_description).toMatch(/task_id must be given once/);
      const both = await post(`?task_id=${b}`, 'application/json', JSON.stringify({ task_id: a, csr: good.pem }));
      expectError(both, 400, 'invalid_request');
      expect(both.body.error_description).toMatch(/task_id goes in the body only/);
    }
    expect(await footprint(task)).toEqual(before);
  });

  it('the same good CSR is then issued: the refusals above were about the requests, not the broker', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const r = await asJson(task, good.pem);
    expect(r.status).toBe(201);
    expect(await footprint(task)).toEqual({ certificates: 1, issued: 1, granted: 1 });
  });
});

describe('mutated CSRs over HTTP (fast-check): never a 5xx, never a certificate', () => {
  it('single-byte changes, truncations and insertions of a valid CSR, as DER and as PEM', async () => {
    const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
    const before = await footprint(task);
    const der = good.der;
    const mutation = fc.oneof(
      fc.record({ at: fc.nat({ max: der.length - 1 }), xor: fc.integer({ min: 1, max: 255 }) }).map(({ at, xor }) => {
        const m = Buffer.from(der);
        m[at]! ^= xor;
        return m;
      }),
      fc.nat({ max: der.length - 1 }).map((n) => der.subarray(0, n)),
      fc.record({ at: fc.nat({ max: der.length }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }).map(({ at, bytes }) =>
        Buffer.concat([der.subarray(0, at), bytes, der.subarray(at)]),
      ),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fc.boolean(), async (m, asPem) => {
        if (m.length > 0 && Buffer.from(m).equals(der)) return; // an xor can't give this, but a no-op must not count
        const r = asPem ? await asJson(task, pemOf(m)) : await asDer(task, m);
        expectClientError(r);
        noCertificate(r);
      }),
      { numRuns: 120, seed: 0x4d4159 },
    );
    expect(await footprint(task)).toEqual(before);
  });
});
