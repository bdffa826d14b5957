/**
 * `*_password_file` config keys (`ca.key_password_file`, `listen.tls.key_password_file`): the password
 * of an encrypted private key is the file's first line, without its line break, as step-ca reads
 * `--password-file` and nginx `ssl_password_file`. The password itself never reaches a log.
 */
import { readFileSync } from 'node:fs';

/** The first line of `path`; `key` names the config key in errors (a missing file, an empty line). */
export function readPasswordFile(path: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const line = text.split(/\r?\n/, 1)[0]!;
  if (line === '') throw new Error(`${key}: ${path} has an empty first line (the password of the key)`);
  return line;
}
