/**
 * A PEM private key, encrypted or not (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy
 * `Proc-Type: 4,ENCRYPTED`), opened with node:crypto: for the CA (x509/ca.ts) and the HTTPS listener
 * (server.ts). OpenSSL is always given a passphrase, an empty one without a password, so it never
 * prompts on a terminal. A failure says why, for the caller to word for its own config keys.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';

/** The key is encrypted and no password was given; the password does not open it; it is no private key. */
export type PrivateKeyProblem = 'needs_password' | 'wrong_password' | 'not_a_key';

export class PrivateKeyError extends Error {
  constructor(
    readonly problem: PrivateKeyProblem,
    cause: unknown,
  ) {
    super(`private key not opened (${problem}): ${(cause as Error)?.message?.split('\n')[0] ?? String(cause)}`, { cause });
    this.name = 'PrivateKeyError';
  }
}

export function openPemPrivateKey(pem: string | Buffer, password?: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase: password ?? '' });
  } catch (e) {
    const encrypted = /ENCRYPTED/.test(typeof pem === 'string' ? pem : pem.toString('latin1'));
    if (encrypted && password === undefined) throw new PrivateKeyError('needs_password', e);
    if (encrypted || (e as { code?: string }).code === 'ERR_OSSL_BAD_DECRYPT') throw new PrivateKeyError('wrong_password', e);
    throw new PrivateKeyError('not_a_key', e);
  }
}
