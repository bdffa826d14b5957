/**
 * Is a certificate revoked? The same definition of "active" as tokens (revoke/active.ts), plus
 * revocation by serial. Answers for OCSP, the JSON status endpoint and the CRL agree.
 */
import type { Broker } from '../broker.js';
import { verdict } from '../revoke/active.js';
import { identityRevokedAt, issuedUpToCutoff, principalRevokedAt, type CertificateRecord } from '../store/store.js';

export type CertificateStatus =
  | { status: 'unknown' }
  | { status: 'good' | 'expired'; record: CertificateRecord }
  | { status: 'revoked'; record: CertificateRecord; reason: string; revokedAt: number; attestedBy?: string };

export const SERIAL_HEX = /^[0-9a-f]{2,40}$/;

export async function certificateStatus(b: Broker, serial: string): Promise<CertificateStatus> {
  const record = SERIAL_HEX.test(serial) ? await b.store.getCertificate(serial) : null;
  if (!record) return { status: 'unknown' };
  const now = b.clock.now();
  // one that expired stays revoked if it was revoked before it expired (the CRL keeps listing it, and
  // OCSP says so too); otherwise it is expired
  const expired = record.notAfter <= now;
  const [facts, revokedAt, parentRevokedAt] = await Promise.all([
    b.store.facts({ taskId: record.taskId, identity: record.agent, ...(record.principal ? { principal: record.principal } : {}) }),
    b.store.certificateRevokedAt(serial),
    record.renewalOf ? b.store.certificateRevokedAt(record.renewalOf) : 0,
  ]);
  const v = verdict({ iat: Math.floor(record.issuedAt / 1000), exp: Math.floor(record.notAfter / 1000) }, facts, expired ? record.notAfter - 1 : now);
  // every revocation that covers it, the earliest first: its time and reason are the certificate's
  // (RFC 5280 §5.3.2), whatever came after it; the CRL dates its entry the same way (crl-service.ts)
  const found: Array<{ reason: string; at: number; attestedBy?: string }> = [];
  // a renewal revoked by serial with (or after) the certificate that asked for it: by that cascade
  // (revoke/revocations.ts revokeCertificateSerial), as its audit event says
  if (revokedAt)
    found.push(
      parentRevokedAt && parentRevokedAt <= revokedAt
        ? { reason: 'attesting_certificate_revoked', at: revokedAt, attestedBy: record.renewalOf! }
        : { reason: 'certificate_revoked', at: revokedAt },
    );
  if (!v.active) {
    const task = facts.task;
    if (task?.state === 'closed') found.push({ reason: 'task_closed', at: (await b.store.getTask(record.taskId))?.closedAt ?? now });
    if (task?.onBehalfOf && facts.principalRevokedBefore > 0 && task.createdAt <= facts.principalRevokedBefore)
      // the first of the principal's revocations that came after the task opened
      found.push({ reason: 'task_principal_revoked', at: principalRevokedAt(await b.store.principalCutoffs(task.onBehalfOf), task.createdAt) });
    const id = facts.identity;
    if (id.locked || (id.revokedBefore > 0 && issuedUpToCutoff(record.issuedAt, id.revokedBefore))) {
      // locked: by the lock in force now; revoked: by an earlier one, lifted since (a later lock changes neither)
      const at = identityRevokedAt(id, record.issuedAt);
      found.push({ reason: id.locked && at >= (id.lockedAt ?? Infinity) ? 'identity_locked' : 'identity_revoked', at });
    }
  }
  const first = found.filter((r) => r.at < record.notAfter).sort((x, y) => x.at - y.at)[0];
  if (first) return { status: 'revoked', record, reason: first.reason, revokedAt: first.at, ...(first.attestedBy ? { attestedBy: first.attestedBy } : {}) };
  if (expired) return { status: 'expired', record };
  if (v.active) return { status: 'good', record };
  return { status: 'revoked', record, reason: v.reason, revokedAt: now }; // (a task gone, or past its deadline, before its certificate ends)
}
