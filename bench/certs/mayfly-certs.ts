/**
 * The broker's certificate API as the bench drives it: the exact POST /v1/certificates request the load
 * generator replays (Bearer agent attestation, JSON {task_id, csr}), and a check, before any load, that
 * an answer really is an X509-SVID for the CSR's key signed by the broker's CA.
 */
import { X509Certificate } from 'node:crypto';
import type { HttpRequestSpec } from '../lib/mayfly-client.js';
import type { BenchCsr } from './csr.js';

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** What the load generator accepts as a real answer: a JSON body carrying a PEM certificate. */
export const mayflyIssuedBody = (b: string) => b.includes('"certificate":"-----BEGIN CERTIFICATE-----');

/** POST /v1/certificates for `csrs` (each connection cycling through its share when there are several). */
export function certificateRequest(agentJwt: string, taskId: string, csrs: readonly BenchCsr[]): HttpRequestSpec {
  const bodies = csrs.map((c) => JSON.stringify({ task_id: taskId, csr: c.pem }));
  return {
    method: 'POST',
    path: '/v1/certificates',
    headers: { authorization: `Bearer ${agentJwt}`, 'content-type': 'application/json' },
    body: bodies[0]!,
    ...(bodies.length > 1 ? { bodies } : {}),
    verifyBody: mayflyIssuedBody,
  };
}

export interface IssuedCheck {
  serial: string;
  lifetimeS: number;
  subject: string;
  san: string;
  eku: string[];
  sigAlg: string;
}

/** Checks a PEM certificate against the CA and the request: signature, public key, EKU, lifetime. */
export function checkIssued(who: string, certPem: string, caPem: string, csr: BenchCsr): IssuedCheck {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  const fail = (m: string): never => {
    throw new Error(`${who}: ${m}\n${certPem}`);
  };
  if (!cert.verify(ca.publicKey)) fail('certificate does not verify with the CA key');
  if (!cert.checkIssued(ca)) fail('certificate is not issued by the CA (issuer/AKI mismatch)');
  if (!cert.publicKey.export({ type: 'spki', format: 'der' }).equals(csr.spkiDer)) fail("certificate does not carry the CSR's public key");
  if (cert.ca) fail('certificate is a CA certificate');
  const eku = cert.keyUsage ?? [];
  if (!eku.includes(EKU_CLIENT_AUTH) || !eku.includes(EKU_SERVER_AUTH)) fail(`EKU is ${eku.join(',') || 'absent'}, expected client+server auth`);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!(to > Date.now())) fail('certificate already expired');
  return {
    serial: cert.serialNumber.toLowerCase(),
    lifetimeS: Math.round((to - from) / 1000),
    subject: cert.subject.replace(/\n/g, ', '),
    san: cert.subjectAltName ?? '',
    eku,
    sigAlg: sigAlgOf(cert),
  };
}

/** The certificate's signature algorithm, read from the DER (X509Certificate does not expose it). */
function sigAlgOf(cert: X509Certificate): string {
  const hex = cert.raw.toString('hex');
  if (hex.includes('06082a8648ce3d040302')) return 'ecdsa-with-SHA256';
  if (hex.includes('06082a8648ce3d040303')) return 'ecdsa-with-SHA384';
  return 'other';
}

/** Issues one certificate for `csr` over HTTP and checks it; returns what was checked. */
export async function checkMayflyIssues(baseUrl: string, agentJwt: string, taskId: string, csr: BenchCsr): Promise<IssuedCheck> {
  const caPem = await (await fetch(`${baseUrl}/v1/ca/bundle`)).text();
  const req = certificateRequest(agentJwt, taskId, [csr]);
  const res = await fetch(baseUrl + req.path, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`mayfly POST /v1/certificates: HTTP ${res.status}: ${text.slice(0, 400)}`);
  if (!mayflyIssuedBody(text)) throw new Error(`mayfly answer not recognised by the load generator's check: ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { certificate: string; serial: string };
  const checked = checkIssued('mayfly', body.certificate, caPem, csr);
  if (checked.serial.replace(/^0+/, '') !== body.serial.replace(/^0+/, '')) throw new Error(`mayfly serial ${body.serial} differs from the certificate's ${checked.serial}`);
  return checked;
}
