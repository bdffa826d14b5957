/**
 * Signing keys: a directory of PEM private keys (PKCS#8, SEC1 or PKCS#1). The newest key whose type fits
 * `tokens.alg` signs; every key is published in the JWKS (RFC 7517) so tokens signed by an older key stay
 * verifiable after a rotation. A missing or empty directory gets one fresh key, written 0600 and created
 * atomically (link(2) of a finished temp file), so replicas sharing the directory sign alike and a restart
 * never invalidates live tokens.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { SigningAlg } from '../config/config.js';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  file: string;
  mtimeMs: number;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

/** The algorithms a key of this type can sign with, preferred first. */
export function algsFor(key: KeyObject): SigningAlg[] {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const crv = key.asymmetricKeyDetails?.namedCurve;
      return crv === 'prime256v1' ? ['ES256'] : crv === 'secp384r1' ? ['ES384'] : [];
    }
    case 'ed25519':
      return ['EdDSA'];
    case 'rsa':
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? ['RS256', 'PS256'] : [];
    default:
      return [];
  }
}

export function generateKey(alg: SigningAlg): KeyObject {
  switch (alg) {
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ES384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'EdDSA':
      return generateKeyPairSync('ed25519').privateKey;
    case 'RS256':
    case 'PS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  }
}

export class Keyring {
  private constructor(
    readonly dir: string,
    readonly alg: SigningAlg,
    private keys: SigningKey[],
    private signer: SigningKey,
  ) {}

  static async open(dir: string, alg: SigningAlg): Promise<Keyring> {
    const { keys, signer } = await loadDir(dir, alg);
    return new Keyring(dir, alg, keys, signer);
  }

  /** The key that signs new tokens. */
  get signing(): SigningKey {
    return this.signer;
  }

  byKid(kid: string): SigningKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }

  /** Public keys as a JWK Set (RFC 7517 §5). */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** Re-reads the directory (after a rotation); keeps the old state if the directory became unusable. */
  async reload(): Promise<void> {
    const { keys, signer } = await loadDir(this.dir, this.alg);
    this.keys = keys;
    this.signer = signer;
  }
}

async function loadDir(dir: string, alg: SigningAlg): Promise<{ keys: SigningKey[]; signer: SigningKey }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let keys = await readKeyDir(dir, alg);
  if (!pickSigner(keys, alg)) {
    writeKeyFile(dir, alg, { shared: true });
    keys = await readKeyDir(dir, alg);
  }
  const signer = pickSigner(keys, alg);
  if (!signer) throw new KeyringError(`${dir}: no key usable for ${alg}`);
  return { keys, signer };
}

/** The newest key fitting `alg` (mtime, then file name, so every replica makes the same choice). */
export function pickSigner(keys: SigningKey[], alg: SigningAlg): SigningKey | undefined {
  return keys.filter((k) => algsFor(k.privateKey).includes(alg)).sort((a, b) => b.mtimeMs - a.mtimeMs || (a.file < b.file ? 1 : -1))[0];
}

/**
 * Writes a new PKCS#8 key file (0600): a finished temp file, then link(2), so nobody reads half a key.
 * `shared`: the first key of an empty directory, named by the second, so replicas starting together
 * converge on one file (the loser of the link race uses the winner's). Otherwise (a rotation) a name
 * that is taken gets a suffix. Returns the file written, or the existing one in the shared case.
 */
export function writeKeyFile(dir: string, alg: SigningAlg, opts: { shared?: boolean; now?: Date } = {}): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pem = generateKey(alg).export({ format: 'pem', type: 'pkcs8' }) as string;
  const stamp = (opts.now ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const tmp = join(dir, `.tmp-${process.pid}-${Date.now()}`);
  writeFileSync(tmp, pem, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  try {
    for (let n = 0; ; n++) {
      const final = join(dir, `mayfly-${alg.toLowerCase()}-${stamp}${n ? `-${n}` : ''}.pem`);
      try {
        linkSync(tmp, final);
        return final;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (opts.shared || n > 100) return final;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
}

/** Reads every key of the directory, changing nothing (names a file it cannot use). */
export async function readKeyDir(dir: string, alg: SigningAlg): Promise<SigningKey[]> {
  const out: SigningKey[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.pem') && !name.endsWith('.key')) continue;
    const file = join(dir, name);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(readFileSync(file));
    } catch (e) {
      throw new KeyringError(`${file}: not a PEM private key (${(e as Error).message})`);
    }
    const algs = algsFor(privateKey);
    if (algs.length === 0) throw new KeyringError(`${file}: unsupported key type (use EC P-256/P-384, Ed25519 or RSA >= 2048)`);
    const keyAlg = algs.includes(alg) ? alg : algs[0]!;
    const publicKey = createPublicKey(privateKey);
    const jwk = publicKey.export({ format: 'jwk' }) as JWK;
    const kid = await calculateJwkThumbprint(jwk, 'sha256'); // RFC 7638
    out.push({ kid, alg: keyAlg, privateKey, publicKey, publicJwk: { ...jwk, kid, alg: keyAlg, use: 'sig' }, file, mtimeMs: statSync(file).mtimeMs });
  }
  return out;
}
