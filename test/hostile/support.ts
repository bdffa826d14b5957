/**
 * Shared tools for the hostile-case suite: a typed ManualClock broker, the RFC error-body assertion,
 * raw HTTP (arbitrary bytes, paths, chunked bodies), hand-built JWS/JWT (unsigned, HMAC, wrong keys,
 * hostile headers) and state probes (issued counts, task keys in Redis) to prove "no partial state".
 */
import { request as httpRequest } from 'node:http';
import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { exportJWK } from 'jose';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { ManualClock } from '../../src/clock.js';
import { api, ATTEST_ISS, AUD, bearer, OPERATOR, readIncoming, startTestBroker, type Res, type Signer, type TestBroker } from '../helpers/broker.js';
import { redisUrl } from '../helpers/redis.js';

export interface HostileBroker {
  b: TestBroker;
  a: ReturnType<typeof api>;
  clock: ManualClock;
}

/** A broker on the real Redis with a clock the test owns (typed, so `advance` needs no cast). */
export async function hostileBroker(opts: { store?: 'redis' | 'memory' } = {}): Promise<HostileBroker> {
  const clock = new ManualClock(Date.now());
  const b = await startTestBroker({ clock, store: opts.store ?? 'redis' });
  return { b, a: api(b), clock };
}

// ---- assertions -------------------------------------------------------------------------------------

/** The refusal has this status and RFC error code, and the body is exactly {error, error_description}. */
export function expectError(r: Res, status: number, code: string): void {
  const seen = { status: r.status, error: r.body?.error };
  expect(seen, `body: ${r.text.slice(0, 300)}`).toEqual({ status, error: code });
  expect(r.body && typeof r.body === 'object' && !Array.isArray(r.body), r.text).toBe(true);
  expect(Object.keys(r.body).sort()).toEqual(['error', 'error_description']);
  expect(typeof r.body.error_description).toBe('string');
  expect(r.body.error_description.trim().length).toBeGreaterThan(0);
}

/** A 4xx of any kind, with the standard error body (for fuzzing and "any refusal is fine" cases). */
export function expectClientError(r: Res): void {
  expect(r.status, r.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(r.status, r.text.slice(0, 300)).toBeLessThan(500);
  expect(typeof r.body?.error, r.text.slice(0, 300)).toBe('string');
  expect(typeof r.body?.error_description).toBe('string');
  expect(r.body.error_description.length).toBeGreaterThan(0);
}

/** RFC 7662 §2.2: an unusable token is answered exactly {active: false}, nothing else. */
export function expectInactive(r: Res): void {
  expect(r.status, r.text).toBe(200);
  expect(r.body).toEqual({ active: false });
}

// ---- state probes -------------------------------------------------------------------------------------

/** `credentials.issued` of a task, read through the API as an operator. */
export async function issued(h: HostileBroker, taskId: string): Promise<number> {
  const r = await h.a.getTask(taskId, OPERATOR.token);
  expect(r.status, r.text).toBe(200);
  return r.body.credentials.issued as number;
}

/** The full credential counts of a task. */
export async function counts(h: HostileBroker, taskId: string): Promise<{ issued: number; active: number; by_agent: Record<string, number> }> {
  const r = await h.a.getTask(taskId, OPERATOR.token);
  expect(r.status, r.text).toBe(200);
  return r.body.credentials;
}

const redisClients = new WeakMap<TestBroker, Redis>();

/** How many task records exist in this broker's key space on Redis (a refused open must add none). */
export async function taskRecordCount(b: TestBroker): Promise<number> {
  const store = b.running.broker.store as unknown as { kind: string; prefix?: string };
  if (store.kind !== 'redis' || typeof store.prefix !== 'string') throw new Error('taskRecordCount needs the Redis store');
  let r = redisClients.get(b);
  if (!r) {
    r = new Redis(redisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
    redisClients.set(b, r);
  }
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${store.prefix}task:*`, 'COUNT', 1000);
    cursor = next;
    // only the task hashes, not their :creds / :agents / :rj: companions
    n += keys.filter((k) => /task:\{[^}]*\}$/.test(k)).length;
  } while (cursor !== '0');
  return n;
}

export async function closeProbes(b: TestBroker): Promise<void> {
  const r = redisClients.get(b);
  if (r) {
    redisClients.delete(b);
    await r.quit().catch(() => r.disconnect());
  }
}

// ---- raw HTTP ---------------------------------------------------------------------------------------

export interface RawOptions {
  method?: string;
  /** Sent byte for byte as the request target: no normalisation, no encoding. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length), in chunks of this size. */
  chunkSize?: number;
}

/** One HTTP request with full control over the path and the body bytes. */
export function raw(baseUrl: string, o: RawOptions): Promise<Res> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body, 'utf8');
    const headers: Record<string, string> = { ...o.headers };
    if (body && !o.chunkSize) headers['content-length'] = String(body.length);
    let responded = false;
    // agent: false — a fresh connection each time, so no request inherits a socket the server is still draining
    const req = httpRequest({ host: u.hostname, port: Number(u.port), method: o.method ?? 'POST', path: o.path, headers, agent: false }, (res) => {
      responded = true;
      readIncoming(res).then(resolve, reject);
    });
    // a server may answer (e.g. 413) and close while the body is still going out: the answer counts
    req.on('error', (e) => {
      if (!responded) reject(e);
    });
    if (body && o.chunkSize) {
      const size = o.chunkSize;
      void (async () => {
        for (let i = 0; i < body.length && !responded && !req.destroyed; i += size) {
          if (!req.write(body.subarray(i, i + size)))
            await new Promise<void>((r) => {
              const done = () => {
                req.off('drain', done);
                req.off('close', done);
                r();
              };
              req.on('drain', done);
              req.on('close', done);
            });
        }
        if (!req.destroyed) req.end();
      })();
      return;
    }
    if (body) req.write(body);
    req.end();
  });
}

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
export const JSON_CT = { 'content-type': 'application/json' };

// ---- hand-built tokens ------------------------------------------------------------------------------

export const b64u = (x: string | Buffer | object): string =>
  (Buffer.isBuffer(x) ? x : Buffer.from(typeof x === 'string' ? x : JSON.stringify(x), 'utf8')).toString('base64url');

export function compact(header: object, payload: object, signature: Buffer | string = ''): string {
  return `${b64u(header)}.${b64u(payload)}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`;
}

/** ES256 over the exact signing input (so any header, even a hostile one, is really signed). */
export function es256(header: object, payload: object, key: KeyObject, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding }).toString('base64url')}`;
}

/** HS256 with an arbitrary secret (e.g. the attestor's public key bytes: the classic alg confusion). */
export function hs256(header: object, payload: object, secret: Buffer | string): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Signs with any PEM-capable key and a node:crypto digest (RS256 etc.). */
export function signWith(header: object, payload: object, key: KeyObject, hash: string | null): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${cryptoSign(hash, Buffer.from(input), key).toString('base64url')}`;
}

export interface Attacker extends Signer {
  publicKey: KeyObject;
}

/** A P-256 key pair the attacker holds (never configured anywhere). */
export async function attackerKey(kid: string): Promise<Attacker> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** Standard attestation claims for `sub` at the broker's current time (valid unless overridden). */
export function claims(clock: { now(): number }, sub: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(clock.now() / 1000);
  const c: Record<string, unknown> = { iss: ATTEST_ISS, ...(sub !== undefined ? { sub } : {}), aud: AUD, iat: now, nbf: now - 1, exp: now + 600, repo: 'org/app', ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete c[k];
  return c;
}

export function decodePart(token: string, i: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[i]!, 'base64url').toString('utf8'));
}

/** Replaces the character at `i` by a different base64url character. */
export function changeCharAt(token: string, i: number, to?: string): string {
  const c = token[i]!;
  const repl = to ?? (c === 'A' ? 'B' : c === '.' ? 'A' : 'A');
  return token.slice(0, i) + repl + token.slice(i + 1);
}

/** Flips one bit inside the decoded signature (a real bit flip, not an encoding change). */
export function flipSignatureBit(token: string, byteIndex: number, bit = 0): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  const j = byteIndex % sig.length;
  sig[j] = sig[j]! ^ (1 << bit);
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/** Opens a task as an operator and returns its id. */
export async function openAsOperator(h: HostileBroker, spec: Record<string, unknown>): Promise<string> {
  const r = await h.a.openTask(spec, OPERATOR.token);
  expect(r.status, r.text).toBe(201);
  return r.body.task_id as string;
}

export { bearer };

// ---- an attacker's self-signed certificate (for x5c / x5u) -------------------------------------------

/** A real self-signed X.509 certificate for the attacker's P-256 key, base64 DER (x5c) and PEM (x5u). */
export function selfSignedCert(a: Attacker, cn = 'attest.test'): { der: Buffer; x5c: string; pem: string } {
  const name = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: cn }) })])]);
  const sigAlg = new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }); // ecdsa-with-SHA256
  const spki = AsnConvert.parse(a.publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array([0x01, 0x23]).buffer,
    signature: sigAlg,
    issuer: name,
    subject: name,
    validity: new Validity({ notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) }),
    subjectPublicKeyInfo: spki,
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = cryptoSign('sha256', tbsDer, a.privateKey); // DER ECDSA, as X.509 wants
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sigAlg, signatureValue: new Uint8Array(signature).buffer });
  const der = Buffer.from(AsnConvert.serialize(cert));
  const x5c = der.toString('base64');
  const pem = `-----BEGIN CERTIFICATE-----\n${x5c.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return { der, x5c, pem };
}
