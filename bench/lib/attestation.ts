/**
 * A stand-in workload attestor: one ES256 key whose public JWKS the broker trusts (jwks_file), minting
 * attestation JWTs for `sub: orch` and `sub: agent` the way a Kubernetes/SPIFFE issuer would.
 */
import { writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export const ATTEST_ISSUER = 'https://attest.bench.local';
export const ATTEST_AUDIENCE = 'mayfly';
const KID = 'bench-attestor-1';

export interface Attestor {
  /** An attestation JWT for `sub`, valid for one hour from now. */
  mint(sub: string): Promise<string>;
}

/** Creates the key and writes its public JWKS to `jwksPath`. */
export async function createAttestor(jwksPath: string): Promise<Attestor> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  writeFileSync(jwksPath, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  return { mint: (sub) => mintWith(privateKey, sub) };
}

function mintWith(key: CryptoKey, sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
    .setIssuer(ATTEST_ISSUER)
    .setAudience(ATTEST_AUDIENCE)
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key);
}
