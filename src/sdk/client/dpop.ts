/**
 * The agent's DPoP key and proofs (RFC 9449 §4): with `createClient({dpop: await createDpopKey()})`
 * the broker binds every token to this key (`cnf.jkt`), and `client.authHeaders(token, {method, url})`
 * gives the `Authorization: DPoP …` and `DPoP` headers a resource server checks for each request.
 * The private key never leaves the process; a fresh proof (new `jti`, `iat` now) is made per request.
 */
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface DpopKey {
  alg: 'ES256' | 'ES384' | 'EdDSA' | 'PS256' | 'RS256';
  privateKey: CryptoKey;
  /** The public key as it goes in each proof's `jwk` header. */
  publicJwk: JWK;
  /** Its RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to it. */
  jkt: string;
}

/** A new non-extractable key pair for DPoP (default ES256). */
export async function createDpopKey(alg: DpopKey['alg'] = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: false });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** `htu` as RFC 9449 §4.2 wants it: the target URI without query and fragment. */
const htuOf = (url: string) => {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
};

/**
 * A proof for one request; with `accessToken`, bound to it (`ath`, for resource servers); with `nonce`,
 * carrying the server's DPoP-Nonce (RFC 9449 §8).
 */
export async function dpopProof(key: DpopKey, method: string, url: string, accessToken?: string, nowMs = Date.now(), nonce?: string): Promise<string> {
  const claims: Record<string, unknown> = { htm: method.toUpperCase(), htu: htuOf(url), iat: Math.floor(nowMs / 1000), jti: randomUUID(), ...(nonce ? { nonce } : {}) };
  if (accessToken !== undefined) claims.ath = createHash('sha256').update(accessToken, 'ascii').digest('base64url');
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk }).sign(key.privateKey);
}
