/**
 * Attesting with a client certificate (mTLS; RFC 8705 §2.1 for the PKI method). The TLS handshake
 * proved that the caller holds the private key of the certificate it presented (its CertificateVerify);
 * this decides whom the certificate names. Two kinds, tried in order:
 *
 *  1. An X509-SVID this broker issued (it chains to the broker's CA): it names its SPIFFE ID and attests
 *     it *for its own task only* (the task id extension), while the store reports it good. Closing the
 *     task, locking the identity, revoking the principal or the serial ends it as an attestation too.
 *     An agent renews its certificate, or gets tokens for the task, without any other proof (as step-ca
 *     renews over mTLS).
 *  2. `type: x509` attestors: certificates of another PKI (a SPIRE server, a corporate CA), chaining to
 *     the attestor's `trust_bundle_file`. Their claims are matched by registrations like JWT claims:
 *       spiffe_id (the single spiffe:// URI SAN), uri and dns (SAN lists), cn, subject, issuer (RFC 2253
 *       text as node prints it), serial (lowercase hex), x5t#S256 (RFC 8705 §3.1 thumbprint)
 *
 * The certificate is presented in the handshake; at /oauth/token the caller names it by its thumbprint
 * (`subject_token` = x5t#S256, `subject_token_type` = CERTIFICATE_TOKEN_TYPE), at the Bearer endpoints
 * by sending no Authorization header.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Broker } from '../broker.js';
import type { CertificateAttestorConfig, Registration, Role } from '../config/config.js';
import { parseSpiffeId } from '../ids/spiffe.js';
import { chainTo, dnsSans, normalizeSerial, parseCertificates, taskIdOf, uriSans } from '../x509/peer.js';
import { certificateStatus } from '../ca/status.js';
import { AttestationError } from './attestor.js';
import { claimsMatch } from './match.js';
import type { Identity } from './attestation.js';

export const CERTIFICATE_TOKEN_TYPE = 'urn:mayfly:params:oauth:token-type:tls-client-certificate';
/** The attestor name of the broker's own X509-SVIDs (audit trail; registrations cannot name it). */
export const OWN_CA_ATTESTOR = 'mayfly-ca';

/** The certificate a TLS client presented (http/tls.ts reads it from the socket). */
export interface PresentedCertificate {
  leaf: X509Certificate;
  /** Intermediates the client sent along. */
  intermediates: X509Certificate[];
  /** RFC 8705 §3.1: base64url SHA-256 of the leaf's DER; the `cnf` of tokens bound to it. */
  thumbprint: string;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

export const certificateThumbprint = (der: Uint8Array): string => createHash('sha256').update(der).digest('base64url');

export function presented(leaf: X509Certificate, intermediates: X509Certificate[] = []): PresentedCertificate {
  return { leaf, intermediates, thumbprint: certificateThumbprint(leaf.raw) };
}

/** A `type: x509` attestor: its trust anchors, read once at start. */
export class CertificateAttestor {
  readonly anchors: X509Certificate[];

  constructor(readonly cfg: CertificateAttestorConfig) {
    let pem: string;
    try {
      pem = readFileSync(cfg.trustBundleFile, 'utf8');
    } catch (e) {
      throw new Error(`attestor ${cfg.name}: cannot read trust_bundle_file ${cfg.trustBundleFile} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    let anchors: X509Certificate[];
    try {
      anchors = parseCertificates(pem);
    } catch (e) {
      throw new Error(`attestor ${cfg.name}: trust_bundle_file is not PEM certificates (${(e as Error).message})`);
    }
    if (anchors.length === 0 || anchors.some((a) => !a.ca)) throw new Error(`attestor ${cfg.name}: trust_bundle_file must hold CA certificates`);
    this.anchors = anchors;
  }

  get name(): string {
    return this.cfg.name;
  }

  /** The certificate's claims, or null when it does not chain to this attestor's bundle. */
  claims(cert: PresentedCertificate, now: number): Record<string, unknown> | null {
    if (!chained(cert, this.anchors, now)) return null;
    const leaf = cert.leaf;
    // RFC 5280 §4.2.1.12: a certificate whose extended key usage leaves out TLS client authentication
    // (a server's certificate, say) may not be used as one, so it attests nothing
    const eku = leaf.keyUsage; // node: the extended key usage OIDs, undefined without the extension
    if (eku !== undefined && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU))
      throw new AttestationError('attestation_invalid', 'client certificate is not for TLS client authentication (extended key usage without clientAuth)');
    const uri = uriSans(leaf);
    const spiffe = uri.filter((u) => u.startsWith('spiffe://'));
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
    return {
      ...(spiffe.length === 1 && parseSpiffeId(spiffe[0]) ? { spiffe_id: spiffe[0] } : {}),
      uri,
      dns: dnsSans(leaf),
      ...(cn !== undefined ? { cn } : {}),
      subject: leaf.subject.replace(/\n/g, ','),
      issuer: leaf.issuer.replace(/\n/g, ','),
      serial: serialOf(leaf),
      'x5t#S256': cert.thumbprint,
    };
  }
}

/**
 * Whether the certificate chains to one of `anchors`: false when it does not (another PKI's: try the
 * next), an AttestationError when it does but cannot attest (expired, not yet valid, a CA).
 */
function chained(cert: PresentedCertificate, anchors: readonly X509Certificate[], now: number): boolean {
  const path = chainTo(cert.leaf, anchors, cert.intermediates, now);
  if (path.ok) return true;
  if (path.code === 'untrusted') return false;
  throw new AttestationError(path.code === 'expired' ? 'attestation_expired' : path.code === 'not_yet_valid' ? 'attestation_not_yet_valid' : 'attestation_invalid', path.message);
}

const serialOf = (c: X509Certificate): string => normalizeSerial(c.serialNumber);

const pick = (regs: Registration[], role: Role): Registration => {
  if (regs.length === 0) throw new AttestationError('attestation_unregistered', 'no registration matches this certificate');
  const reg = regs.find((r) => r.roles.includes(role));
  if (!reg) throw new AttestationError('attestation_wrong_role', `workload is not registered with role "${role}"`);
  return reg;
};

/** Whom the presented certificate attests for `role`; AttestationError otherwise. */
export async function attestCertificate(b: Broker, cert: PresentedCertificate, role: Role): Promise<Identity> {
  const now = b.clock.now();
  const own = ownSvid(b, cert, now);
  if (own) {
    // a task's certificate stands for its agent in that task, never for an orchestrator opening others
    if (role !== 'agent') throw new AttestationError('attestation_wrong_role', 'a task certificate attests an agent of its own task only');
    const s = await certificateStatus(b, own.serial);
    if (s.status !== 'good') throw new AttestationError('attestation_invalid', `certificate ${own.serial} is ${s.status === 'unknown' ? 'unknown to this broker' : s.status}`);
    // the registration it was issued to: the same SPIFFE ID, registered for certificates
    const reg = pick(b.config.registrations.filter((r) => r.spiffeId === own.spiffeId && r.certificates), role);
    return { spiffeId: reg.spiffeId, registration: reg, attestor: OWN_CA_ATTESTOR, proofExpiresAt: s.record.notAfter, taskId: s.record.taskId, certificateSerial: own.serial };
  }
  let firstError: AttestationError | undefined;
  for (const a of b.certificateAttestors) {
    let claims: Record<string, unknown> | null;
    try {
      claims = a.claims(cert, now);
    } catch (e) {
      firstError ??= e instanceof AttestationError ? e : new AttestationError('attestation_invalid', 'certificate rejected');
      continue;
    }
    if (!claims) continue;
    const regs = b.config.registrations.filter((r) => r.attestor === a.name && claimsMatch(r.match, claims));
    const reg = pick(regs, role);
    return { spiffeId: reg.spiffeId, registration: reg, attestor: a.name, proofExpiresAt: Date.parse(cert.leaf.validTo) };
  }
  throw firstError ?? new AttestationError('attestation_unknown_issuer', 'client certificate does not chain to a trusted CA');
}

/** The SPIFFE ID and serial of an X509-SVID issued by this broker's CA; null for any other certificate. */
function ownSvid(b: Broker, cert: PresentedCertificate, now: number): { spiffeId: string; serial: string } | null {
  if (!chained(cert, b.caAnchors, now)) return null;
  const spiffe = uriSans(cert.leaf).filter((u) => u.startsWith('spiffe://'));
  if (spiffe.length !== 1 || parseSpiffeId(spiffe[0])?.trustDomain !== b.config.trustDomain || taskIdOf(cert.leaf) === undefined)
    throw new AttestationError('attestation_invalid', 'not an X509-SVID of this broker (one SPIFFE ID of its trust domain and a task id)');
  return { spiffeId: spiffe[0]!, serial: serialOf(cert.leaf) };
}

/** One of this broker's X509-SVIDs, as a client presented it (ownCertificate). */
export interface OwnCertificate {
  serial: string;
  taskId: string;
  spiffeId: string;
}

/**
 * The serial, task and SPIFFE ID of `cert` when this broker's CA issued it: a token bound to it (RFC
 * 8705), whatever attested the token, must be its agent's, of that task, and the certificate good; it
 * is then revoked with it.
 * Null for any other certificate (another CA's). Never throws.
 */
export function ownCertificate(b: Broker, cert: PresentedCertificate, now: number): OwnCertificate | null {
  try {
    // ours whenever it chains to our CA, also outside its validity (the exchange then refuses to bind it)
    const path = chainTo(cert.leaf, b.caAnchors, cert.intermediates, now);
    if (!path.ok && path.code !== 'expired' && path.code !== 'not_yet_valid') return null;
    const taskId = taskIdOf(cert.leaf);
    const spiffe = uriSans(cert.leaf).filter((u) => u.startsWith('spiffe://'));
    return taskId === undefined || spiffe.length !== 1 ? null : { serial: serialOf(cert.leaf), taskId, spiffeId: spiffe[0]! };
  } catch {
    return null;
  }
}

export function loadCertificateAttestors(configs: readonly CertificateAttestorConfig[]): CertificateAttestor[] {
  return configs.map((c) => new CertificateAttestor(c));
}
