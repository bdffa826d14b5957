/**
 * Hostile OCSP requests over HTTP (POST /v1/ca/ocsp, GET /v1/ca/ocsp/{base64}). RFC 6960 §2.3 answers
 * a bad request with an OCSP error status, not an HTTP error: whatever arrives, the answer is a 200
 * `application/ocsp-response` that decodes as an OCSPResponse, never a 5xx. And no change to a real
 * request makes the responder vouch for what it did not issue: `good` only ever answers the CertID of
 * the certificate this suite was issued (its serial, this CA's name and key hashes).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, CertID, OCSPResponse, OCSPResponseStatus } from '@peculiar/asn1-ocsp';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, http, WIDE_TASK } from '../helpers/broker.js';
import { hostileBroker, type HostileBroker } from './support.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_126);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const params = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: false });

const dir = mkdtempSync(join(tmpdir(), 'mayfly-hostile-ocsp-'));
const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let h: HostileBroker;
/** Real requests for the issued certificate: SHA-1 CertID with a nonce, SHA-256 CertID without. */
let requests: Buffer[];
/** The issued certificate's CertIDs as DER (what `good` may answer). */
let ours: Set<string>;

afterAll(async () => {
  await h?.b.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(async () => {
  h = await hostileBroker();
  const task = (await h.a.openTask(WIDE_TASK)).body.task_id;
  ossl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=agent');
  const issued = await http(`${h.b.url}/v1/certificates`, {
    method: 'POST',
    headers: { ...bearer(await h.b.attest('agent-b')), 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: task, csr: readFileSync(join(dir, 'leaf.csr'), 'utf8') }),
  });
  expect(issued.status).toBe(201);
  writeFileSync(join(dir, 'leaf.pem'), issued.body.certificate);
  // the issuer of the leaf: the dev CA itself (no intermediate), as the bundle serves it
  writeFileSync(join(dir, 'ca.pem'), (await http(`${h.b.url}/v1/ca/bundle`)).text);
  ossl('ocsp', '-issuer', 'ca.pem', '-cert', 'leaf.pem', '-reqout', 'sha1.der');
  ossl('ocsp', '-issuer', 'ca.pem', '-sha256', '-cert', 'leaf.pem', '-reqout', 'sha256.der', '-no_nonce');
  requests = ['sha1.der', 'sha256.der'].map((f) => readFileSync(join(dir, f)));
  ours = new Set();
  for (const req of requests) {
    const answer = await ocspPost(req);
    const singles = responses(answer);
    expect(singles.map((s) => s.status)).toEqual(['good']); // the fixture is a real, good certificate
    ours.add(singles[0]!.certId);
  }
});

async function ocspPost(body: Uint8Array, contentType = 'application/ocsp-request'): Promise<Buffer> {
  const r = await fetch(`${h.b.url}/v1/ca/ocsp`, { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) });
  return checked(r);
}

async function checked(r: Response): Promise<Buffer> {
  const der = Buffer.from(await r.arrayBuffer());
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${der.toString('utf8').slice(0, 200)}`);
  expect(r.headers.get('content-type')).toBe('application/ocsp-response');
  return der;
}

/** The response's single responses (none for an error status), each with its CertID as DER. */
function responses(der: Buffer): { certId: string; status: 'good' | 'revoked' | 'unknown' }[] {
  const resp = AsnConvert.parse(der, OCSPResponse); // throws on anything that is not an OCSPResponse
  if (resp.responseStatus !== OCSPResponseStatus.successful) {
    expect([OCSPResponseStatus.malformedRequest, OCSPResponseStatus.tryLater]).toContain(resp.responseStatus);
    expect(resp.responseBytes).toBeUndefined();
    return [];
  }
  const basic = AsnConvert.parse(resp.responseBytes!.response, BasicOCSPResponse);
  return basic.tbsResponseData.responses.map((s) => ({
    certId: Buffer.from(AsnConvert.serialize(s.certID as CertID)).toString('hex'),
    status: s.certStatus.good !== undefined ? 'good' : s.certStatus.revoked !== undefined ? 'revoked' : 'unknown',
  }));
}

/** A real request with one change: bytes flipped, cut, inserted or removed. */
const mutated = fc
  .record({
    which: fc.nat({ max: 1 }),
    kind: fc.constantFrom('flip', 'set', 'cut', 'insert', 'remove'),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
    count: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ which, kind, at, byte, count }) => {
    const src = requests[which]!;
    const i = at % src.length;
    if (kind === 'flip') return Buffer.from(src.map((b, k) => (k >= i && k < i + count ? b ^ (1 << (byte % 8)) : b)));
    if (kind === 'set') return Buffer.from(src.map((b, k) => (k === i ? byte : b)));
    if (kind === 'cut') return src.subarray(0, i);
    if (kind === 'insert') return Buffer.concat([src.subarray(0, i), Buffer.alloc(count, byte), src.subarray(i)]);
    return Buffer.concat([src.subarray(0, i), src.subarray(i + count)]);
  });

describe('OCSP over HTTP: hostile requests get an OCSP answer, never a 5xx, and good only for what was issued', () => {
  it('random bytes, under any content type: 200 and an OCSPResponse (malformedRequest unless it parses)', async () => {
    const ct = fc.constantFrom('application/ocsp-request', 'application/octet-stream', 'text/plain', '');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), ct, async (bytes, contentType) => {
        const singles = responses(await ocspPost(bytes, contentType));
        for (const s of singles) expect(s.status === 'good' ? ours.has(s.certId) : true).toBe(true);
      }),
      params(0),
    );
  });

  it('mutations of real requests: a good status only for the issued certificate CertID', async () => {
    let stillGood = 0;
    await fc.assert(
      fc.asyncProperty(mutated, async (body) => {
        for (const s of responses(await ocspPost(body))) {
          if (s.status === 'good') {
            expect(ours.has(s.certId)).toBe(true);
            stillGood++;
          }
        }
      }),
      params(1),
    );
    // the property was exercised: some mutations (e.g. of the nonce) leave the CertID intact
    expect(stillGood).toBeGreaterThan(0);
  });

  it('the same over GET /v1/ca/ocsp/{base64} (RFC 6960 §A.1), and hostile path segments', async () => {
    const segment = fc.oneof(
      mutated.map((b) => encodeURIComponent(b.toString('base64'))),
      mutated.map((b) => b.toString('base64url')),
      fc.string({ unit: 'binary', maxLength: 200 }).map(encodeURIComponent),
      fc.constantFrom('%ZZ', '%', '%%', '..', '%2e%2e', '====', 'AA==AA==', 'a'.repeat(20_000)),
    );
    await fc.assert(
      fc.asyncProperty(segment, async (s) => {
        const r = await fetch(`${h.b.url}/v1/ca/ocsp/${s}`);
        if (r.status === 404 || r.status === 414 || r.status === 431) return; // not an OCSP path at all (empty, or over the URL limits)
        for (const x of responses(await checked(r))) expect(x.status === 'good' ? ours.has(x.certId) : true).toBe(true);
      }),
      params(2),
    );
  });

  it('a body over the OCSP cap (16 KiB) or over the app-wide one (64 KiB), declared or chunked, or encoded: still an OCSP malformedRequest', async () => {
    const over = (n: number) => Buffer.concat([requests[0]!, Buffer.alloc(n)]);
    const asked: Array<Buffer> = [];
    for (const body of [over(16 * 1024), over(70_000)]) asked.push(await ocspPost(body));
    // chunked: no Content-Length, the cap counts bytes as they arrive
    const chunked = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(16 * 1024));
        ctl.close();
      },
    });
    asked.push(await checked(await fetch(`${h.b.url}/v1/ca/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: chunked, duplex: 'half' } as RequestInit)));
    asked.push(await checked(await fetch(`${h.b.url}/v1/ca/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', 'content-encoding': 'gzip' }, body: new Uint8Array(requests[0]!) })));
    for (const der of asked) expect(AsnConvert.parse(der, OCSPResponse).responseStatus).toBe(OCSPResponseStatus.malformedRequest);
    // the cap is the OCSP route's alone: elsewhere a body over 64 KiB is the JSON 413
    const elsewhere = await fetch(`${h.b.url}/oauth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=' + 'a'.repeat(70_000) });
    expect(elsewhere.status).toBe(413);
    expect((await elsewhere.json()).error).toBe('invalid_request');
  });

  it('the fixtures survived: the real requests still get good', async () => {
    for (const req of requests) expect(responses(await ocspPost(req)).map((s) => s.status)).toEqual(['good']);
  });
});
