/**
 * `mayfly keys [list]` and `mayfly keys rotate`: the signing-key directory (keys.dir), in the keyring's
 * format (src/keys/keyring.ts): PEM private keys, kid = RFC 7638 thumbprint, the newest key (mtime,
 * then name) fitting tokens.alg signs, every key is published. Rotation writes a new PKCS#8 key, 0600,
 * atomically; the broker starts signing with it on SIGHUP or restart, and keeps publishing the old ones.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { SigningAlg } from '../../config/config.js';
import { configPath, loadConfigFile } from '../../config/load.js';
import { Keyring } from '../../keys/keyring.js';
import { EXIT, printJson, UsageError, type Io } from './common.js';
import { parseArgs } from 'node:util';

const ALGS: SigningAlg[] = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

const HELP = `usage: mayfly keys [list] [--dir DIR | --config FILE] [--alg ALG] [--json]
       mayfly keys rotate [--dir DIR | --config FILE] [--alg ALG] [--json]

The broker's signing keys (keys.dir). list shows every key with its kid (RFC 7638 thumbprint), type and
age, and which one signs new tokens. rotate writes a new private key (PKCS#8 PEM, mode 0600) that will
sign once the broker re-reads the directory (kill -HUP <pid>, or a restart); older keys stay published
so tokens they signed remain verifiable until you delete them.

options:
  --dir DIR       the key directory (default: keys.dir of the config)
  --config FILE   the broker config (default: $MAYFLY_CONFIG, else config/mayfly.yaml if it exists,
                  else .mayfly/keys and ES256)
  --alg ALG       signing algorithm: ${ALGS.join(', ')} (default: tokens.alg of the config, else ES256)
  --json          machine-readable output
  -h, --help      this help

exit codes: 0 ok, 2 usage or configuration error
`;

interface KeyInfo {
  kid: string;
  type: string;
  algs: SigningAlg[];
  file: string;
  modified: string;
  signing: boolean;
}

function algsFor(key: KeyObject): SigningAlg[] {
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

const typeOf = (k: KeyObject) =>
  k.asymmetricKeyType === 'ec' ? `EC ${k.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'P-256' : k.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : k.asymmetricKeyDetails?.namedCurve}` : k.asymmetricKeyType === 'rsa' ? `RSA ${k.asymmetricKeyDetails?.modulusLength}` : String(k.asymmetricKeyType);

/** Reads the directory without changing it (Keyring.open would create a key in an empty one). */
export async function listKeys(dir: string, alg: SigningAlg): Promise<KeyInfo[]> {
  if (!existsSync(dir)) return [];
  const out: (KeyInfo & { mtimeMs: number })[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.pem') && !name.endsWith('.key')) continue;
    const file = join(dir, name);
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(file));
    } catch (e) {
      throw new UsageError(`${file}: not a PEM private key (${(e as Error).message})`);
    }
    const jwk = createPublicKey(key).export({ format: 'jwk' }) as JWK;
    const mtimeMs = statSync(file).mtimeMs;
    out.push({ kid: await calculateJwkThumbprint(jwk, 'sha256'), type: typeOf(key), algs: algsFor(key), file, modified: new Date(mtimeMs).toISOString(), signing: false, mtimeMs });
  }
  const signer = out.filter((k) => k.algs.includes(alg)).sort((a, b) => b.mtimeMs - a.mtimeMs || (a.file < b.file ? 1 : -1))[0];
  if (signer) signer.signing = true;
  return out.map(({ mtimeMs: _, ...k }) => k);
}

function generate(alg: SigningAlg): KeyObject {
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

/** Writes a new key file like the keyring does: finished temp file, then link(2), so nobody reads half a key. */
export function writeKeyFile(dir: string, alg: SigningAlg, now = new Date()): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pem = generate(alg).export({ format: 'pem', type: 'pkcs8' }) as string;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
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
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw e;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
}

function target(values: { dir?: string; config?: string; alg?: string }, io: Io): { dir: string; alg: SigningAlg } {
  if (values.alg !== undefined && !ALGS.includes(values.alg as SigningAlg)) throw new UsageError(`--alg: one of ${ALGS.join(', ')}`);
  const cfgFile = values.config ?? (values.dir ? undefined : (io.env.MAYFLY_CONFIG ?? (existsSync(configPath({})) ? configPath({}) : undefined)));
  const cfg = cfgFile ? loadConfigFile(cfgFile) : undefined;
  return { dir: resolve(values.dir ?? cfg?.keysDir ?? '.mayfly/keys'), alg: (values.alg as SigningAlg | undefined) ?? cfg?.tokens.alg ?? 'ES256' };
}

export async function run(args: string[], io: Io): Promise<number> {
  const sub = args[0] && !args[0].startsWith('-') ? args[0] : 'list';
  const rest = args[0] && !args[0].startsWith('-') ? args.slice(1) : args;
  if (sub !== 'list' && sub !== 'rotate') throw new UsageError(`unknown subcommand "${sub}"`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { dir: { type: 'string' }, config: { type: 'string' }, alg: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}`);
  }
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const { dir, alg } = target(values, io);
  if (sub === 'rotate') {
    const file = writeKeyFile(dir, alg);
    // the broker's own reader must accept the directory and pick the new key to sign
    const ring = await Keyring.open(dir, alg);
    if (ring.signing.file !== file) throw new UsageError(`${file} written, but ${ring.signing.file} would still sign (its mtime is newer?)`);
    const k = { kid: ring.signing.kid, alg, file, published: ring.jwks().keys.length };
    if (values.json) printJson(io, k);
    else io.out(`new ${alg} key ${k.kid}\n  ${file}\nit signs once the broker re-reads ${dir} (kill -HUP <broker pid>, or restart); ${k.published} keys published`);
    return EXIT.ok;
  }
  const list = await listKeys(dir, alg);
  if (values.json) printJson(io, { dir, alg, keys: list });
  else if (!list.length) io.out(`no keys in ${dir} (the broker generates one at its first start)`);
  else {
    io.out(`${dir} (tokens.alg ${alg})`);
    for (const k of list) io.out(`${k.signing ? '* ' : '  '}${k.kid}  ${k.type.padEnd(9)} ${k.modified}  ${k.file.slice(dir.length + 1)}${k.signing ? '  (signs)' : k.algs.includes(alg) ? '' : `  (not ${alg}: published only)`}`);
  }
  return EXIT.ok;
}

