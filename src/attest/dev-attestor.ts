/**
 * The dev attestor: an in-process issuer that mints attestation JWTs for a named workload, so a newcomer
 * can try a real flow with no Kubernetes or CI around. It exists only in dev mode (config `dev: true`,
 * loopback only; see config/schema.ts) and its key lives in memory, so its tokens die with the process.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, exportJWK, SignJWT } from 'jose';
import type { AttestorConfig } from '../config/config.js';
import { JwtAttestor } from './jwt-attestor.js';

export const DEV_ATTESTOR_NAME = 'dev';
export const DEV_AUDIENCE = 'mayfly-dev';

export async function createDevAttestor(issuer: string): Promise<{ attestor: JwtAttestor; mint: (workload: string, ttlS?: number) => Promise<string> }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'dev-1', alg: 'ES256', use: 'sig' };
  const devIssuer = `${issuer}/dev`;
  const cfg: AttestorConfig = {
    name: DEV_ATTESTOR_NAME,
    type: 'dev',
    issuer: devIssuer,
    audience: [DEV_AUDIENCE],
    algorithms: ['ES256'],
    maxTokenAgeMs: 3_600_000,
    clockSkewMs: 5_000,
  };
  const attestor = new JwtAttestor(cfg, createLocalJWKSet({ keys: [jwk] }));
  const mint = (workload: string, ttlS = 600) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'dev-1', typ: 'JWT' })
      .setIssuer(devIssuer)
      .setSubject(workload)
      .setAudience(DEV_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ttlS}s`)
      .sign(privateKey);
  return { attestor, mint };
}
