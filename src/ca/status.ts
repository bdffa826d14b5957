/**
 * Is a certificate revoked? The same definition of "active" as tokens (revoke/active.ts), plus
 * revocation by serial. Answers for OCSP, the JSON status endpoint and the CRL agree.
 */
import type { Broker } from '../broker.js';
import { verdict } from '../revoke/active.js';
import { identityRevokedAt, type CertificateRecord } from '../store/store.js';

export type CertificateStatus =
  | { status: 'unknown' }
  | { status: 'good' | 'expired'; record: CertificateRecord }
  | { status: 'revoked'; record: CertificateRecord; reason: string; revokedAt: number };

export const SERIAL_HEX = /^[0-9a-f]{2,40}$/;

export async function certificateStatus(b: Broker, serial: string): Promise<CertificateStatus> {
  const record = SERIAL_HEX.test(serial) ? await b.store.getCertificate(serial) : null;
  if (!record) return { status: 'unknown' };
  const now = b.clock.now();
  // one that expired stays revoked if it was revoked before it expired (the CRL keeps listing it, and
  // OCSP says so too); otherwise it is expired
  const expired = record.notAfter <= now;
  const [facts, revokedAt] = await Promise.all([
    b.store.facts({ taskId: record.taskId, identity: record.agent, ...(record.principal ? { principal: record.principal } : {}) }),
    b.store.certificateRevokedAt(serial),
  ]);
  if (revokedAt && revokedAt < record.notAfter) return { status: 'revoked', record, reason: 'certificate_revoked', revokedAt };
  const v = verdict({ iat: Math.floor(record.issuedAt / 1000), exp: Math.floor(record.notAfter / 1000) }, facts, expired ? record.notAfter - 1 : now);
  if (v.active) return { status: expired ? 'expired' : 'good', record };
  const at =
    v.reason === 'identity_locked' || v.reason === 'identity_revoked'
      ? identityRevokedAt(facts.identity, record.issuedAt)
      : v.reason === 'task_principal_revoked'
        ? facts.principalRevokedBefore
        : v.reason === 'task_closed'
          ? ((await b.store.getTask(record.taskId))?.closedAt ?? now)
          : now;
  const when = at || now;
  if (expired && when >= record.notAfter) return { status: 'expired', record };
  return { status: 'revoked', record, reason: v.reason, revokedAt: when };
}
