/**
 * In-process costs of the pieces a certificate request is made of (no HTTP, no store), on one core, with
 * the broker's own src/x509 functions and the node:crypto calls underneath them: what bounds the
 * certificates/s one Node process can reach, and where a CSR's ~0.2-0.35 ms goes.
 */
import { createPublicKey, sign, verify } from 'node:crypto';
import { buildCrl, generateDevCa, issueCertificate, parseCsr, randomSerial, serialHexOf } from '../../src/x509/index.js';
import { measure, type OpsResult } from '../lib/crypto-baselines.js';
import type { BenchCsr } from './csr.js';
import { nativeEcdsa, nativeStatus } from '../../src/native/index.js';

export async function certBaselines(csrs: readonly BenchCsr[], crlEntries: number, msEach: number, beforeEach: () => Promise<unknown> = async () => undefined): Promise<OpsResult[]> {
  const ca = generateDevCa('bench.local', new Date(), { validityDays: 2 });
  const one = csrs[0]!;
  const jwk = one.publicKey.export({ format: 'jwk' });
  const { info: cri, signature: sig } = one;
  if (!verify('sha256', cri, one.publicKey, sig)) throw new Error('baseline self-check: CSR signature does not verify');
  const parsed = parseCsr(one.pem);
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  let i = 0;
  const now = Date.now();
  const issue = () =>
    issueCertificate(ca, {
      spkiDer: parsed.spkiDer,
      keyType: parsed.keyType,
      spiffeId: 'spiffe://bench.local/agent',
      taskId: 'tsk_AAAAAAAAAAAAAAAAAAAAAA',
      notBefore: new Date(now - 30_000),
      notAfter: new Date(now + 300_000),
      crlUrl: 'http://127.0.0.1:8080/v1/ca/crl',
      ocspUrl: 'http://127.0.0.1:8080/v1/ca/ocsp',
    });
  const entries = Array.from({ length: crlEntries }, () => ({ serialHex: serialHexOf(randomSerial()), revokedAt: new Date(now) }));

  const cases: [string, () => unknown][] = [
    [`mayfly parseCsr (P-256 PEM, distinct CSRs${nativeStatus().ecdsa ? ', src/native' : ', node:crypto: src/native not loaded'})`, () => parseCsr(csrs[i++ % csrs.length]!.pem)],
    ['mayfly parseCsr (P-256 PEM, same CSR)', () => parseCsr(one.pem)],
    ['  node:crypto createPublicKey (P-256 JWK)', () => createPublicKey({ key: jwk, format: 'jwk' })],
    ['  node:crypto createPublicKey (P-256 SPKI DER)', () => createPublicKey({ key: one.spkiDer, format: 'der', type: 'spki' })],
    ['  node:crypto verify ECDSA P-256 (KeyObject)', () => verify('sha256', cri, one.publicKey, sig)],
    ...(nativeEcdsa ? [['  src/native load + verify ECDSA P-256 (point)', () => nativeEcdsa!.verify(0, point, 0, cri, sig)] as [string, () => unknown]] : []),
    ['mayfly issueCertificate (ES256 CA)', issue],
    ['  node:crypto sign ECDSA P-256', () => sign('sha256', cri, ca.key)],
    [`mayfly buildCrl (${crlEntries.toLocaleString('en-US')} entries)`, () => buildCrl(ca, { entries, thisUpdate: new Date(now), nextUpdate: new Date(now + 600_000), crlNumber: BigInt(now) })],
  ];
  const out: OpsResult[] = [];
  for (const [name, fn] of cases) {
    await beforeEach();
    out.push(await measure(name, msEach, fn));
  }
  return out;
}
