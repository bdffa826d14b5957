/**
 * A real broker for end-to-end tests: in-process, over real HTTP, on a real Redis (from the harness)
 * or the memory store, with attestors whose signing keys the test holds, so it can mint genuine,
 * forged, expired and otherwise hostile attestation tokens.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT, type JWTPayload } from 'jose';
import { buildConfig } from '../../src/config/load.js';
import { startBroker, type Running } from '../../src/server.js';
import { createLogger, type Logger } from '../../src/audit/logger.js';
import { ManualClock, type Clock } from '../../src/clock.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { redisUrl, uniquePrefix } from './redis.js';
import { afterAll, beforeAll, inject } from 'vitest';
import { freePort } from './port.js';

export { freePort };

export const TD = 'test.local';
export const ATTEST_ISS = 'https://attest.test';
export const OTHER_ISS = 'https://other-attest.test';
export const AUD = 'mayfly';
export const API = 'https://api.test';
export const OTHER_API = 'https://other.test';
export const id = (path: string) => `spiffe://${TD}/${path}`;

export type StoreKind = 'redis' | 'memory' | 'cluster';
/** The stores the end-to-end suites run on: Redis, memory, and a Redis Cluster when the setup has one. */
export const STORES: readonly StoreKind[] = ['redis', 'memory', ...(inject('redisClusterUrls').length > 0 ? (['cluster'] as const) : [])];

export const CLIENT = { id: 'rs', secret: 'rs-secret-0123456789' };
export const OPERATOR = { name: 'alice-ops', token: 'op-token-0123456789abcdef' };


export interface Signer {
  kid: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export async function newSigner(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

export function baseDoc(port: number, signers: { main: Signer; other: Signer }, extra: Record<string, unknown> = {}) {
  return {
    issuer: `http://127.0.0.1:${port}`,
    trust_domain: TD,
    listen: { host: '127.0.0.1', port },
    tokens: { default_ttl: '5m', max_ttl: '10m', alg: 'ES256' },
    tasks: { default_ttl: '30m', max_ttl: '2h', retention: '1h' },
    log: { level: 'silent' },
    attestors: [
      { name: 'ci', type: 'jwt', issuer: ATTEST_ISS, audience: AUD, jwks: { keys: [signers.main.publicJwk] } },
      { name: 'other', type: 'jwt', issuer: OTHER_ISS, audience: AUD, jwks: { keys: [signers.other.publicJwk] } },
    ],
    registrations: [
      { spiffe_id: id('orch'), attestor: 'ci', match: { sub: 'orch' }, owner: 'platform@example.com', roles: ['orchestrator'], scopes: ['read', 'write', 'admin'], tools: ['search', 'edit', 'deploy'], audiences: [API, OTHER_API] },
      { spiffe_id: id('orch-narrow'), attestor: 'ci', match: { sub: 'orch-narrow' }, owner: 'platform@example.com', roles: ['orchestrator'], scopes: ['read'], tools: ['search'], audiences: [API], agents: [id('agent/*')] },
      { spiffe_id: id('agent/a'), attestor: 'ci', match: { sub: 'agent-a', repo: 'org/*' }, owner: 'agents@example.com', roles: ['agent'], scopes: ['read', 'write'], tools: ['search', 'edit'], audiences: [API], max_ttl: '2m' },
      { spiffe_id: id('agent/b'), attestor: 'ci', match: { sub: 'agent-b' }, owner: 'agents@example.com', roles: ['agent'], scopes: ['read', 'admin'], tools: ['search', 'deploy'], audiences: [API, OTHER_API], certificates: true },
      { spiffe_id: id('agent/other'), attestor: 'other', match: { sub: 'x' }, owner: 'agents@example.com', roles: ['agent'], scopes: ['read'], tools: ['search'], audiences: [API] },
    ],
    clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret }],
    operators: [{ name: OPERATOR.name, token: OPERATOR.token }],
    ...extra,
  };
}

export interface TestBroker {
  url: string;
  running: Running;
  clock: Clock;
  signers: { main: Signer; other: Signer };
  /** Mints an attestation JWT from the main attestor (or another signer / issuer / claims). */
  attest(sub: string, opts?: AttestOptions): Promise<string>;
  close(): Promise<void>;
}

export interface AttestOptions {
  signer?: Signer;
  iss?: string;
  aud?: string | string[];
  claims?: JWTPayload;
  iat?: number;
  exp?: number;
  nbf?: number;
  header?: Record<string, unknown>;
}

export async function startTestBroker(
  opts: {
    /** `cluster`: a RedisStore on the Redis Cluster of the global setup (see STORES). */
    store?: StoreKind;
    clock?: ManualClock;
    extra?: Record<string, unknown>;
    redisUrl?: string;
    /** With store `cluster`: these seed URLs instead of the global setup's cluster. */
    clusterUrls?: string[];
    logger?: Logger;
    prefix?: string;
    /** For replicas: the same port after a restart, the same keys, the same attestors. */
    port?: number;
    keysDir?: string;
    signers?: { main: Signer; other: Signer };
    /** Changes the config document before it is built (e.g. add to its attestors, listen.tls). */
    edit?: (doc: ReturnType<typeof baseDoc>) => void;
  } = {},
): Promise<TestBroker> {
  const port = opts.port ?? (await freePort());
  const signers = opts.signers ?? { main: await newSigner('main-1'), other: await newSigner('other-1') };
  const keysDir = opts.keysDir ?? mkdtempSync(join(tmpdir(), 'mayfly-keys-'));
  const doc = baseDoc(port, signers, { keys: { dir: keysDir }, ...opts.extra });
  opts.edit?.(doc);
  const config = buildConfig(doc, 'test', {});
  const clock = opts.clock ?? new ManualClock(Date.now());
  const kind = opts.store ?? 'redis';
  const store =
    kind === 'redis'
      ? new RedisStore({ url: opts.redisUrl ?? redisUrl(), prefix: opts.prefix ?? uniquePrefix() })
      : kind === 'cluster'
        ? new RedisStore({ cluster: opts.clusterUrls ?? inject('redisClusterUrls'), prefix: opts.prefix ?? uniquePrefix() })
        : new MemoryStore({ clock });
  const running = await startBroker(config, { clock, store, logger: opts.logger ?? createLogger('silent') });
  const attest = async (sub: string, o: AttestOptions = {}) => {
    const s = o.signer ?? signers.main;
    const nowS = Math.floor(clock.now() / 1000);
    const payload: JWTPayload = { repo: 'org/app', ...o.claims };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid: s.kid, typ: 'JWT', ...o.header })
      .setIssuer(o.iss ?? ATTEST_ISS)
      .setSubject(sub)
      .setAudience(o.aud ?? AUD)
      .setIssuedAt(o.iat ?? nowS)
      .setExpirationTime(o.exp ?? nowS + 600)
      .setNotBefore(o.nbf ?? nowS - 1)
      .sign(s.privateKey);
  };
  return { url: running.url, running, clock, signers, attest, close: () => running.close() };
}

/**
 * A broker for a describe block: started before its tests, closed after them. The returned object is
 * filled in by `beforeAll`: read `ctx.b` / `ctx.a` inside tests, not at collection time.
 */
export function useBroker(store: StoreKind, opts: Omit<Parameters<typeof startTestBroker>[0] & object, 'store'> = {}) {
  const ctx = {} as { b: TestBroker; a: ReturnType<typeof api> };
  beforeAll(async () => {
    ctx.b = await startTestBroker({ ...opts, store });
    ctx.a = api(ctx.b);
  });
  afterAll(() => ctx.b?.close());
  return ctx;
}

// ---- small HTTP helpers -------------------------------------------------------------------------

export interface Res {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** A node:http(s) response read whole into a Res (JSON body parsed when it is JSON). */
export function readIncoming(res: IncomingMessage): Promise<Res> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
      resolve({ status: res.statusCode ?? 0, headers, body, text });
    });
    res.on('error', reject);
  });
}

async function toRes(r: Response): Promise<Res> {
  const text = await r.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, body, text };
}

export async function http(url: string, init: RequestInit = {}): Promise<Res> {
  return toRes(await fetch(url, init));
}

export function postForm(url: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Res> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  return http(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
}

export function postJson(url: string, json: unknown, headers: Record<string, string> = {}): Promise<Res> {
  return http(url, { method: 'POST', body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...headers } });
}

export const basic = (idv = CLIENT.id, secret = CLIENT.secret) => ({ authorization: `Basic ${Buffer.from(`${idv}:${secret}`).toString('base64')}` });
export const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** A small client of the broker's API for tests. */
export function api(b: TestBroker) {
  return {
    openTask: async (spec: Record<string, unknown>, by?: string) =>
      postJson(`${b.url}/v1/tasks`, spec, bearer(by ?? (await b.attest('orch')))),
    exchange: async (subjectToken: string, taskId: string, extra: Record<string, string | string[]> = {}, headers: Record<string, string> = {}) =>
      postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TYPE, task_id: taskId, ...extra }, headers),
    introspect: (token: string, headers = basic()) => postForm(`${b.url}/oauth/introspect`, { token }, headers),
    revoke: (token: string, headers = basic()) => postForm(`${b.url}/oauth/revoke`, { token }, headers),
    close: async (taskId: string, by?: string) => http(`${b.url}/v1/tasks/${taskId}/close`, { method: 'POST', headers: bearer(by ?? (await b.attest('orch'))) }),
    getTask: async (taskId: string, by?: string) => http(`${b.url}/v1/tasks/${taskId}`, { headers: bearer(by ?? (await b.attest('orch'))) }),
    lock: (spiffeId: string, method: 'POST' | 'DELETE' = 'POST') =>
      http(`${b.url}/v1/identities/${encodeURIComponent(spiffeId)}/lock`, { method, headers: bearer(OPERATOR.token) }),
    revokePrincipal: (p: string) => http(`${b.url}/v1/principals/${encodeURIComponent(p)}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) }),
  };
}

/** A task every agent fixture may join, with the broadest ceilings the `orch` registration allows. */
export const WIDE_TASK = {
  agents: [id('agent/*')],
  scopes: ['read', 'write', 'admin'],
  tools: ['search', 'edit', 'deploy'],
  audiences: [API, OTHER_API],
  ttl: '30m',
  purpose: 'test',
};
