/**
 * `mayfly keys [list]` and `mayfly keys rotate`: the signing-key directory (keys.dir), in the keyring's
 * format (src/keys/keyring.ts): PEM private keys, kid = RFC 7638 thumbprint, the newest key (mtime,
 * then name) fitting tokens.alg signs, every key is published. Rotation writes a new PKCS#8 key, 0600,
 * atomically; the broker starts signing with it on SIGHUP or restart, and keeps publishing the old ones.
 */
import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SigningAlg } from '../../config/config.js';
import { configPath, loadConfigFile } from '../../config/load.js';
import { algsFor, Keyring, pickSigner, readKeyDir, writeKeyFile } from '../../keys/keyring.js';
import { EXIT, printJson, UsageError, type Io } from './common.js';
import { parseArgs } from 'node:util';

const ALGS: SigningAlg[] = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

const HELP = `usage: mayfly keys [list] [--dir DIR | --config FILE] [--alg ALG] [--json]
       mayfly keys rotate [--dir DIR | --config FILE] [--alg ALG] [--json]

The broker's signing keys (keys.dir). list shows every key with its kid (RFC 7638 thumbprint), type and
age, and which one signs new tokens. rotate writes a new private key (PKCS#8 PEM, mode 0600) that the
broker publishes once it re-reads the directory (kill -HUP <pid>, or a restart) and signs with then, or,
with keys.publish_ahead in the config, that long after the key was written (verifiers caching the JWKS
learn it first); older keys stay published so tokens they signed remain verifiable until you delete them.

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
  /** A newer key published ahead (keys.publish_ahead): when it starts to sign. */
  signs_from?: string;
}

const typeOf = (k: KeyObject) =>
  k.asymmetricKeyType === 'ec' ? `EC ${k.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'P-256' : k.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : k.asymmetricKeyDetails?.namedCurve}` : k.asymmetricKeyType === 'rsa' ? `RSA ${k.asymmetricKeyDetails?.modulusLength}` : String(k.asymmetricKeyType);

/** Reads the directory without changing it (Keyring.open would create a key in an empty one). */
export async function listKeys(dir: string, alg: SigningAlg, aheadMs = 0): Promise<KeyInfo[]> {
  if (!existsSync(dir)) return [];
  let keys;
  try {
    keys = await readKeyDir(dir, alg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const now = Date.now();
  const signer = pickSigner(keys, alg, now, aheadMs);
  return keys.map((k) => ({
    kid: k.kid,
    type: typeOf(k.privateKey),
    algs: algsFor(k.privateKey),
    file: k.file,
    modified: new Date(k.mtimeMs).toISOString(),
    signing: k === signer,
    // published, and newer than the one signing: it takes over at this instant (keys.publish_ahead)
    ...(k !== signer && signer && k.mtimeMs > signer.mtimeMs && algsFor(k.privateKey).includes(alg) ? { signs_from: new Date(k.mtimeMs + aheadMs).toISOString() } : {}),
  }));
}

function target(values: { dir?: string; config?: string; alg?: string }, io: Io): { dir: string; alg: SigningAlg; aheadMs: number } {
  if (values.alg !== undefined && !ALGS.includes(values.alg as SigningAlg)) throw new UsageError(`--alg: one of ${ALGS.join(', ')}`);
  const cfgFile = values.config ?? (values.dir ? undefined : (io.env.MAYFLY_CONFIG ?? (existsSync(configPath({})) ? configPath({}) : undefined)));
  const cfg = cfgFile ? loadConfigFile(cfgFile) : undefined;
  return {
    dir: resolve(values.dir ?? cfg?.keysDir ?? '.mayfly/keys'),
    alg: (values.alg as SigningAlg | undefined) ?? cfg?.tokens.alg ?? 'ES256',
    aheadMs: cfg?.keysPublishAheadMs ?? 0,
  };
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
  const { dir, alg, aheadMs } = target(values, io);
  if (sub === 'rotate') {
    // a directory the broker could not read (a corrupt or weak key) is named, and nothing is written
    await listKeys(dir, alg, aheadMs);
    const file = writeKeyFile(dir, alg);
    // the broker's own reader must accept the directory and pick the new key to sign (now, or once published ahead)
    let ring;
    try {
      ring = await Keyring.open(dir, alg, { publishAheadMs: aheadMs });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const neu = ring.signing.file === file ? ring.signing : ring.pending().find((p) => p.key.file === file)?.key;
    if (!neu) throw new UsageError(`${file} written, but ${ring.signing.file} would still sign (its mtime is newer?)`);
    // the only key (a first one): it signs at once, there is nothing older to sign with
    const waits = aheadMs > 0 && ring.signing.file !== file;
    const signsFrom = new Date(waits ? neu.mtimeMs + aheadMs : Date.now()).toISOString();
    const k = { kid: neu.kid, alg, file, published: ring.jwks().keys.length, signs_from: signsFrom };
    if (values.json) printJson(io, k);
    else
      io.out(
        `new ${alg} key ${k.kid}\n  ${file}\nthe broker publishes it once it re-reads ${dir} (kill -HUP <broker pid>, or restart)` +
          (waits ? ` and signs with it from ${signsFrom} (keys.publish_ahead)` : ', and signs with it at once') +
          `; ${k.published} keys published`,
      );
    return EXIT.ok;
  }
  const list = await listKeys(dir, alg, aheadMs);
  if (values.json) printJson(io, { dir, alg, keys: list });
  else if (!list.length) io.out(`no keys in ${dir} (the broker generates one at its first start)`);
  else {
    io.out(`${dir} (tokens.alg ${alg})`);
    for (const k of list)
      io.out(
        `${k.signing ? '* ' : '  '}${k.kid}  ${k.type.padEnd(9)} ${k.modified}  ${k.file.slice(dir.length + 1)}${k.signing ? '  (signs)' : k.signs_from ? `  (published; signs from ${k.signs_from})` : k.algs.includes(alg) ? '' : `  (not ${alg}: published only)`}`,
      );
  }
  return EXIT.ok;
}

