/**
 * Signing keys: a directory of PEM private keys (PKCS#8, SEC1 or PKCS#1). The newest key whose type fits
 * `tokens.alg` signs; every key is published in the JWKS (RFC 7517) so tokens signed by an older key stay
 * verifiable after a rotation. With `publishAheadMs` (config keys.publish_ahead), a key only signs once
 * its file is that old: published first, so verifiers that cache the JWKS (the SDK: 10 min) know it
 * before the first token it signs, as SPIRE prepares its next key ahead of activating it. Every replica
 * switches at the same instant (the file's mtime plus the delay), without a reload.
 * A missing or empty directory gets one fresh key, written 0600 and created atomically (link(2) of a
 * finished temp file), so replicas sharing the directory sign alike and a restart never invalidates
 * live tokens.
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

export interface KeyringOptions {
  /** How long a new key is published before it signs (ms; default 0). */
  publishAheadMs?: number;
  /** The current time (ms); default Date.now. */
  now?: () => number;
}

export class Keyring {
  private signer!: SigningKey;
  /** When a published key that does not sign yet starts to (Infinity: none waits). */
  private switchAt = Infinity;

  private constructor(
    readonly dir: string,
    readonly alg: SigningAlg,
    private keys: SigningKey[],
    private readonly opts: Required<KeyringOptions>,
  ) {
    this.pick();
  }

  static async open(dir: string, alg: SigningAlg, opts: KeyringOptions = {}): Promise<Keyring> {
    const keys = await loadDir(dir, alg);
    return new Keyring(dir, alg, keys, { publishAheadMs: opts.publishAheadMs ?? 0, now: opts.now ?? Date.now });
  }

  /** The key that signs new tokens. */
  get signing(): SigningKey {
    if (this.opts.now() >= this.switchAt) this.pick();
    return this.signer;
  }

  /** The published keys that do not sign yet, each with the instant it will (ms). */
  pending(): Array<{ key: SigningKey; signsFrom: number }> {
    if (this.opts.publishAheadMs <= 0) return [];
    const now = this.opts.now();
    return this.keys.filter((k) => signsFrom(k, this.opts.publishAheadMs) > now && algsFor(k.privateKey).includes(this.alg)).map((key) => ({ key, signsFrom: signsFrom(key, this.opts.publishAheadMs) }));
  }

  private pick(): void {
    const now = this.opts.now();
    this.signer = pickSigner(this.keys, this.alg, now, this.opts.publishAheadMs)!;
    // the next instant a newer key becomes eligible (never, without a delay)
    this.switchAt = this.opts.publishAheadMs <= 0 ? Infinity : Math.min(Infinity, ...this.pending().filter((p) => p.key.mtimeMs >= this.signer.mtimeMs).map((p) => p.signsFrom));
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
    this.keys = await loadDir(this.dir, this.alg);
    this.pick();
  }
}

async function loadDir(dir: string, alg: SigningAlg): Promise<SigningKey[]> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let keys = await readKeyDir(dir, alg);
  if (!pickSigner(keys, alg, Date.now(), 0)) {
    writeKeyFile(dir, alg, { shared: true });
    keys = await readKeyDir(dir, alg);
  }
  if (!pickSigner(keys, alg, Date.now(), 0)) throw new KeyringError(`${dir}: no key usable for ${alg}`);
  return keys;
}

const signsFrom = (k: SigningKey, aheadMs: number) => k.mtimeMs + aheadMs;

/**
 * The newest key fitting `alg` that has been published `aheadMs` by `now` (mtime, then file name, so
 * every replica makes the same choice); when none has (every key is new: a first start, or a rotation
 * soon after it), the oldest, the one published longest.
 */
export function pickSigner(keys: SigningKey[], alg: SigningAlg, now: number, aheadMs: number): SigningKey | undefined {
  const fit = keys.filter((k) => algsFor(k.privateKey).includes(alg)).sort((a, b) => b.mtimeMs - a.mtimeMs || (a.file < b.file ? 1 : -1));
  // without a delay, time plays no part (a file stamped ahead of this host's clock signs too)
  if (aheadMs <= 0) return fit[0];
  return fit.find((k) => signsFrom(k, aheadMs) <= now) ?? fit.at(-1);
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
