/**
 * Files that config keys name (`ca.cert_file`, `listen.tls.key_file`, the `*_password_file`s): read
 * at start, an error naming the config key when they cannot be. A `*_password_file` holds the password
 * of an encrypted private key as its first line, without the line break, as step-ca reads
 * `--password-file` and nginx `ssl_password_file`. The password itself never reaches a log.
 */
import { readFileSync } from 'node:fs';

/** The bytes of `path`; `key` (e.g. `ca.cert_file`) names the config key in the error. */
export function readConfigFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

/** The first line of `path`; `key` names the config key in errors (a missing file, an empty line). */
export function readPasswordFile(path: string, key: string): string {
  const line = readConfigFile(path, key).toString('utf8').split(/\r?\n/, 1)[0]!;
  if (line === '') throw new Error(`${key}: ${path} has an empty first line (the password of the key)`);
  return line;
}
