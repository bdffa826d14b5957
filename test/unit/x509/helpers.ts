/**
 * Test helpers for the X.509 layer: an `openssl` runner in a temp dir, CSRs built independently of the
 * code under test (with @peculiar/asn1-csr, so the encoder is not ours), openssl-made CAs (root,
 * intermediate) and a parsed view of certificates via @peculiar/asn1-x509.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';

export class Workdir {
  readonly dir = mkdtempSync(join(tmpdir(), 'mayfly-x509-'));
  path = (f: string) => join(this.dir, f);
  write = (f: string, data: string | Uint8Array) => writeFileSync(this.path(f), data);
  read = (f: string) => readFileSync(this.path(f));
  readText = (f: string) => readFileSync(this.path(f), 'utf8');
  /** Runs openssl in the work dir; returns stdout+stderr; throws with both on a non-zero exit. */
  openssl(args: string[], opts: { allowFail?: boolean } = {}): { ok: boolean; out: string } {
    try {
      const out = execFileSync('openssl', args, { cwd: this.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { ok: true, out };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      const out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
      if (opts.allowFail) return { ok: false, out };
      throw new Error(`openssl ${args.join(' ')} failed:\n${out || err.message}`);
    }
  }
  /** Like openssl() but merges stderr into the output on success too (openssl prints verdicts there). */
  opensslAll(args: string[]): { ok: boolean; out: string } {
    try {
      const out = execFileSync('sh', ['-c', 'openssl "$@" 2>&1', 'sh', ...args], { cwd: this.dir, encoding: 'utf8' });
      return { ok: true, out };
    } catch (e) {
      const err = e as { stdout?: string; message: string };
      return { ok: false, out: err.stdout ?? err.message };
    }
  }
  cleanup = () => rmSync(this.dir, { recursive: true, force: true });
}

export type KeySpec = 'p256' | 'p384' | 'ed25519' | 'rsa2048';

/** `openssl genpkey` arguments for a key spec. */
export function genpkeyArgs(spec: KeySpec | 'rsa1024' | 'ed448' | 'x25519'): string[] {
  switch (spec) {
    case 'p256':
      return ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    case 'p384':
      return ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'];
    case 'ed25519':
      return ['-algorithm', 'ED25519'];
    case 'ed448':
      return ['-algorithm', 'ED448'];
    case 'x25519':
      return ['-algorithm', 'X25519'];
    case 'rsa2048':
      return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    case 'rsa1024':
      return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'];
  }
}

/** Makes `<name>.key` and `<name>.csr` (PEM) with openssl req; extra args go to `openssl req`. */
export function opensslCsr(w: Workdir, name: string, spec: KeySpec | 'rsa1024', extra: string[] = []): string {
  w.openssl(['genpkey', ...genpkeyArgs(spec), '-out', `${name}.key`]);
  const digest = spec === 'ed25519' ? [] : ['-sha256'];
  w.openssl(['req', '-new', '-key', `${name}.key`, '-subj', '/CN=agent', ...digest, ...extra, '-out', `${name}.csr`]);
  return w.readText(`${name}.csr`);
}

const CA_EXT = `
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
nameConstraints = critical,permitted;URI:example.org
[v3_noca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[v3_nocrl]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
`;

/** Self-signed root `<name>.pem`/`<name>.key` made by openssl. */
export function opensslRoot(w: Workdir, name: string, spec: KeySpec, opts: { section?: string; days?: number; subj?: string } = {}): void {
  w.write('ca-ext.cnf', CA_EXT);
  w.openssl(['genpkey', ...genpkeyArgs(spec), '-out', `${name}.key`]);
  const digest = spec === 'ed25519' ? [] : ['-sha256'];
  w.openssl([
    'req', '-x509', '-new', '-key', `${name}.key`, '-subj', opts.subj ?? `/O=Test/CN=${name}`, ...digest,
    '-days', String(opts.days ?? 30), '-config', 'ca-ext.cnf', '-extensions', opts.section ?? 'v3_ca', '-out', `${name}.pem`,
  ]);
}

/** Intermediate `<name>.pem`/`<name>.key` signed by `<parent>`, with a URI name constraint example.org. */
export function opensslIntermediate(w: Workdir, name: string, parent: string, spec: KeySpec): void {
  w.write('ca-ext.cnf', CA_EXT);
  w.openssl(['genpkey', ...genpkeyArgs(spec), '-out', `${name}.key`]);
  w.openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/O=Test/CN=${name}`, '-out', `${name}.csr`]);
  w.openssl([
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${parent}.pem`, '-CAkey', `${parent}.key`, '-set_serial', '0x1234',
    '-days', '30', '-extfile', 'ca-ext.cnf', '-extensions', 'v3_int', '-out', `${name}.pem`,
  ]);
}

/** A CSR built with @peculiar/asn1-csr and signed with node:crypto (an encoder independent of ours). */
export function buildCsr(
  privateKey: KeyObject,
  publicKey: KeyObject,
  opts: { cn?: string; sigAlgOid?: string; hash?: string | null; signature?: Uint8Array; spkiDer?: Uint8Array } = {},
): Buffer {
  const spki = AsnConvert.parse(opts.spkiDer ?? publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
  const subject = new Name([
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: opts.cn ?? 'agent' }) })]),
  ]);
  const info = new CertificationRequestInfo({ version: 0, subject, subjectPKInfo: spki, attributes: new Attributes() });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const type = publicKey.asymmetricKeyType;
  const defaultOid = type === 'ed25519' ? '1.3.101.112' : type === 'rsa' ? '1.2.840.113549.1.1.11' : '1.2.840.10045.4.3.2';
  const hash = opts.hash !== undefined ? opts.hash : type === 'ed25519' ? null : 'sha256';
  const algOid = opts.sigAlgOid ?? defaultOid;
  const sig = opts.signature ?? sign(hash, infoDer, privateKey);
  const alg = new AlgorithmIdentifier({ algorithm: algOid });
  if (algOid.startsWith('1.2.840.113549.1.1.')) alg.parameters = null;
  const req = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: alg, signature: new Uint8Array(sig).buffer });
  return Buffer.from(AsnConvert.serialize(req));
}

export function keyPair(spec: KeySpec): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (spec) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
}

export const parseCert = (der: Uint8Array): Certificate => AsnConvert.parse(der, Certificate);

export const HOUR = 3_600_000;
