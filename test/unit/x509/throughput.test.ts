/**
 * Throughput of the X.509 hot path, printed (never asserted: shared CI machines are noisy, and vitest
 * runs other test files in parallel). Reports wall-clock rate and CPU µs per operation
 * (process.cpuUsage), the latter being what matters for capacity planning on a busy host. For clean
 * numbers run this file alone: `npx vitest run test/unit/x509/throughput.test.ts`.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateDevCa } from '../../../src/x509/ca.js';
import { issueCertificate } from '../../../src/x509/certificate.js';
import { parseCsr, type ParsedCsr } from '../../../src/x509/csr.js';
import { buildCsr, keyPair, type KeySpec } from './helpers.js';

function measure(label: string, ms: number, f: (i: number) => void): { perSec: number; cpuUs: number } {
  for (let i = 0; i < 200; i++) f(i); // warm-up
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() - t0 < ms) for (let k = 0; k < 25; k++) f(n++);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const r = { perSec: Math.round((n / wall) * 1000), cpuUs: (c.user + c.system) / n };
  console.log(`[x509 bench] ${label.padEnd(44)} ${String(r.perSec).padStart(6)}/s  cpu ${r.cpuUs.toFixed(1)} µs/op`);
  return r;
}

describe('throughput (logged)', () => {
  it('issues certificates for P-256 CSRs: parse+verify+issue, issue only, and the bare ES256 signature', () => {
    const ca = generateDevCa('example.org');
    const csrs = Array.from({ length: 256 }, () => {
      const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return buildCsr(kp.privateKey, kp.publicKey);
    });
    const now = Date.now();
    const base = {
      spiffeId: 'spiffe://example.org/agents/bench',
      taskId: 'tsk_0123456789abcdefghij',
      notBefore: new Date(now - 30_000),
      notAfter: new Date(now + 3_600_000),
      crlUrl: 'http://mayfly.internal:8080/v1/crl',
    };
    const parsed: ParsedCsr[] = csrs.map((c) => parseCsr(c));
    const tbs = issueCertificate(ca, { ...parsed[0]!, ...base }).der.subarray(4, 4 + 430);

    const full = measure('P-256 CSR: parseCsr + issueCertificate', 1500, (i) => {
      const p = parseCsr(csrs[i % 256]!);
      issueCertificate(ca, { spkiDer: p.spkiDer, keyType: p.keyType, ...base });
    });
    measure('P-256 CSR: parseCsr only', 800, (i) => parseCsr(csrs[i % 256]!));
    const issue = measure('issueCertificate only (pre-parsed key)', 1500, (i) => {
      const p = parsed[i % 256]!;
      issueCertificate(ca, { spkiDer: p.spkiDer, keyType: p.keyType, ...base });
    });
    const sig = measure('bare ES256 sign of a 430-byte TBS', 800, () => sign('sha256', tbs, ca.key));
    console.log(`[x509 bench] issueCertificate CPU beyond the signature: ${(issue.cpuUs - sig.cpuUs).toFixed(1)} µs`);
    expect(full.perSec).toBeGreaterThan(0);
  });

  it('parseCsr by key type (logged)', () => {
    for (const spec of ['p384', 'ed25519', 'rsa2048'] as KeySpec[]) {
      const csrs = Array.from({ length: 8 }, () => {
        const kp = keyPair(spec);
        return buildCsr(kp.privateKey, kp.publicKey);
      });
      measure(`${spec} CSR: parseCsr only`, 400, (i) => parseCsr(csrs[i % 8]!));
    }
  });
});
