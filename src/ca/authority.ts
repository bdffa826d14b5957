/**
 * The certificate authority the broker signs X509-SVIDs with: `ca: {cert_file, key_file,
 * key_password_file?, chain_file?}` from config (a root or an intermediate; its key encrypted or not),
 * else one generated once under `<keys.dir>/ca/` (created atomically, 0600 key, so replicas sharing
 * the key directory share the CA, like step-ca's `init`), or, in dev mode, in memory.
 */
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { readConfigFile, readPasswordFile } from '../config/files.js';
import { generateDevCa, loadCa, type CertificateAuthority } from '../x509/index.js';

/** How long before its notAfter the CA is said to be expiring (a warning at start, `ca.status` in GET /readyz). */
export const CA_EXPIRY_WARNING_MS = 86_400_000;

/** The CA's validity at `now`: past its notAfter it issues nothing (policy/rules/within-ca-validity.ts). */
export function caValidity(ca: Pick<CertificateAuthority, 'notAfter'>, now: number): 'valid' | 'expiring' | 'expired' {
  const left = ca.notAfter.getTime() - now;
  return left <= 0 ? 'expired' : left <= CA_EXPIRY_WARNING_MS ? 'expiring' : 'valid';
}

const read = (path: string, what: string): string => readConfigFile(path, `ca.${what}`).toString('utf8');

export function loadAuthority(config: Config, now = new Date()): CertificateAuthority {
  if (config.ca) {
    return loadCa({
      certPem: read(config.ca.certFile, 'cert_file'),
      keyPem: read(config.ca.keyFile, 'key_file'),
      ...(config.ca.keyPasswordFile ? { keyPassword: readPasswordFile(config.ca.keyPasswordFile, 'ca.key_password_file') } : {}),
      ...(config.ca.chainFile ? { chainPem: read(config.ca.chainFile, 'chain_file') } : {}),
      now,
    });
  }
  if (config.dev) return generateDevCa(config.trustDomain, now);
  const dir = join(config.keysDir, 'ca');
  const certFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'ca-key.pem');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    return loadCa({ certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), now });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const ca = generateDevCa(config.trustDomain, now, { validityDays: 3650 });
  const keyPem = ca.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  // key first, then the certificate as the commit point: a replica that sees ca.pem sees its key too
  const tmp = (n: string) => join(dir, `.tmp-${process.pid}-${n}`);
  writeFileSync(tmp('key'), keyPem, { mode: 0o600 });
  writeFileSync(tmp('cert'), ca.cert.pem, { mode: 0o644 });
  try {
    linkSync(tmp('key'), keyFile);
    linkSync(tmp('cert'), certFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    unlinkSync(tmp('key'));
    unlinkSync(tmp('cert'));
  }
  return loadCa({ certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), now });
}
