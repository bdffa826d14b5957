/**
 * In-process signing/verification ceilings on this machine (no HTTP, no store): what one core can do
 * with jose (WebCrypto underneath), with node:crypto directly, and with Mayfly's own compact JWS
 * (src/issue/jws.ts, node:crypto underneath). These bound what any ES256-issuing endpoint can reach.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { exportJWK, importJWK, jwtVerify, SignJWT } from 'jose';
import { signCompact } from '../../src/issue/jws.js';

export interface OpsResult {
  name: string;
  opsPerSec: number;
  ops: number;
  ms: number;
}

/** Runs `fn` back to back for about `ms` (a promise is awaited before the next call), after a short warm-up. */
export async function measure(name: string, ms: number, fn: () => unknown): Promise<OpsResult> {
  const call = async () => {
    const r = fn();
    if (r instanceof Promise) await r;
  };
  const warmEnd = performance.now() + Math.min(300, ms / 4);
  while (performance.now() < warmEnd) await call();
  let ops = 0;
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    // batches of 64 keep the clock read out of the measurement
    for (let i = 0; i < 64; i++) await call();
    ops += 64;
    now = performance.now();
  }
  const elapsed = now - start;
  return { name, opsPerSec: (ops * 1000) / elapsed, ops, ms: elapsed };
}

const CLAIMS = {
  iss: 'http://127.0.0.1:8080',
  sub: 'spiffe://bench.local/agent',
  aud: 'https://api.example',
  client_id: 'spiffe://bench.local/agent',
  scope: 'read',
  task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA',
  tools: ['t1'],
  jti: 'AAAAAAAAAAAAAAAAAAAAAA',
};

/** `beforeEach` is awaited before each measurement (e.g. wait for the machine to go quiet). */
export async function cryptoBaselines(msEach: number, beforeEach: () => Promise<unknown> = async () => undefined): Promise<OpsResult[]> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const josePriv = await importJWK({ ...(privateKey.export({ format: 'jwk' }) as object), alg: 'ES256' }, 'ES256');
  const josePub = await importJWK({ ...(await exportJWK(publicKey)), alg: 'ES256' }, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...CLAIMS, iat: now, exp: now + 300 };
  const joseSign = () => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'at+jwt' }).sign(josePriv);
  const token = await joseSign();
  const data = Buffer.from(token.split('.').slice(0, 2).join('.'));
  const der = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };
  const sig = sign('sha256', data, der);
  if (!verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('node:crypto self-check failed');

  const cases: [string, () => unknown][] = [
    ['jose SignJWT ES256', joseSign],
    ['jose jwtVerify ES256', () => jwtVerify(token, josePub, { algorithms: ['ES256'] })],
    ['node:crypto sign P-256', () => sign('sha256', data, der)],
    ['node:crypto verify P-256', () => verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)],
    ['mayfly signCompact ES256', () => signCompact('ES256', 'k', 'at+jwt', privateKey, claims)],
  ];
  const out: OpsResult[] = [];
  for (const [name, fn] of cases) {
    await beforeEach();
    out.push(await measure(name, msEach, fn));
  }
  return out;
}
