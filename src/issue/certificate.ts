/**
 * X.509-SVID issuance for a task: attestation -> task policy (policy/certificate.ts) -> CSR (strict
 * parse, its own signature verified) -> CSR policy (no CA flag, no name but the agent's own) ->
 * check-and-record the serial in the task, with its grant's audit event -> sign.
 * Nothing else the CSR asks beyond its public key reaches the certificate: the broker decides the content.
 */
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { decideCertificate, decideCsr } from '../policy/certificate.js';
import { issueCertificate, randomSerial, serialHexOf, X509Error, type ParsedCsr } from '../x509/index.js';
import { CsrCache } from './csr-cache.js';
import { attestOrRefuse } from './exchange.js';
import { issuanceContext } from './issuance-context.js';
import { verdict } from '../revoke/active.js';
import type { CertificateRecord } from '../store/store.js';
import { entry, type AuditEntryFields, type AuditFields } from '../audit/audit.js';
import type { PresentedCertificate } from '../attest/client-certificate.js';

const csrs = new CsrCache();

export interface IssuedSvid {
  certificate: string;
  chain: string[];
  serial: string;
  not_after: string;
  spiffe_id: string;
  task_id: string;
}

export function x509Refusal(e: X509Error): MayflyError {
  // 413 with the code every other oversized body gets (http/body-limit.ts)
  if (e.code === 'csr_too_large') return new MayflyError('invalid_request', e.message, { reason: e.code, status: 413 });
  if (e.code === 'spiffe_id_not_permitted') return new MayflyError('access_denied', e.message, { reason: e.code });
  if (e.code.startsWith('csr_')) return new MayflyError('invalid_request', `csr rejected: ${e.message}`, { reason: e.code });
  return new MayflyError('server_error', 'certificate could not be issued', { reason: e.code });
}

export async function issueSvid(b: Broker, proof: string | PresentedCertificate, taskId: string, csr: string | Uint8Array): Promise<IssuedSvid> {
  const identity = await attestOrRefuse(b, proof, 'agent', { task_id: taskId, kind: 'certificate' });
  const deny = (e: MayflyError): never => {
    b.audit.record('certificate.denied', { agent: identity.spiffeId, task_id: taskId, reason: e.reason });
    throw e;
  };
  // decided first on the states of this process's last grant; if the store says they changed since
  // (a lock or revocation landed), forgotten and decided once more on fresh reads
  for (const remembered of [b.issuerStates, undefined]) {
    // policy first: a refused request never pays for the CSR's signature check
    const ctx = await issuanceContext(b, identity, taskId, {}, remembered);
    const { task, now, identityState, principalCutoff, issuerState } = ctx;
    const decision = decideCertificate({ ...ctx, caNotAfterMs: b.ca.notAfter.getTime() });
    if ('refusal' in decision) {
      const r = decision.refusal;
      return deny(new MayflyError(r.code, r.description, { reason: r.reason }));
    }
    let parsed;
    try {
      parsed = csrs.parse(csr);
    } catch (e) {
      if (e instanceof X509Error) return deny(x509Refusal(e));
      throw e;
    }
    const asked = decideCsr({ identity, csr: parsed });
    if (asked) return deny(new MayflyError(asked.code, asked.description, { reason: asked.reason }));
    // the certificate holds whole seconds: the record says the same instant (its status agrees with it)
    const notAfter = Math.floor((now + decision.draft.ttlMs) / 1000) * 1000;
    // the definition of "active" its status uses: never sign a certificate that would be revoked at birth
    // (e.g. asked for in the very second its identity was unlocked after a lock, which counts against it)
    const v = verdict({ iat: Math.floor(now / 1000), exp: notAfter / 1000 }, { task: task!, jtiRevoked: false, identity: identityState, principalRevokedBefore: principalCutoff }, now);
    if (!v.active) return deny(new MayflyError('temporarily_unavailable', 'identity was revoked within the last second; retry shortly', { reason: v.reason }));
    const serial = randomSerial();
    const record: CertificateRecord = {
      serial: serialHexOf(serial),
      taskId,
      agent: identity.spiffeId,
      ...(task!.onBehalfOf ? { principal: task!.onBehalfOf } : {}),
      issuedAt: now,
      notAfter,
    };
    // the grant's audit event goes with the record, in one store call (Store.recordCertificate); a
    // renewal over mTLS is linked to the certificate that asked for it in that call too (revoked with
    // it), and refused with nothing written if that one was revoked meanwhile
    const parent = identity.certificateSerial;
    const grant = entry('certificate.granted', grantFields(record, parsed.keyType, parent));
    let outcome;
    try {
      outcome = await b.store.recordCertificate(record, now, issuerState, grant, parent);
    } catch (e) {
      // the store did not answer (a timeout): the record may still land once it resumes; it is withdrawn
      // (not waited for: the store is likely still away)
      void withdraw(b, record);
      throw e;
    }
    if (outcome === 'state_changed') {
      b.issuerStates.forget(issuerState);
      continue;
    }
    if (outcome === 'certificate_revoked') return deny(new MayflyError('invalid_request', 'the client certificate presented was revoked', { reason: outcome }));
    if (outcome !== 'ok') return deny(new MayflyError('invalid_request', outcome === 'task_unknown' ? 'unknown task_id' : 'task is closed', { reason: outcome }));
    b.issuerStates.confirmed(issuerState);
    b.audit.logged(grant);
    return signRecorded(b, { record, serial, parsed }, deny);
  }
  return deny(new MayflyError('temporarily_unavailable', 'the identity or principal changed state during issuance; retry shortly', { reason: 'state_changed' }));
}

interface Recorded {
  /** As the store holds it (its serial in hex; issued now), with its grant. */
  record: CertificateRecord;
  serial: Buffer;
  parsed: ParsedCsr;
}

/** The audit fields of a certificate's grant (`attested_by`: the certificate that asked for this renewal over mTLS). */
const grantFields = (r: CertificateRecord, key: string, attestedBy?: string): AuditFields => ({
  serial: r.serial,
  task_id: r.taskId,
  agent: r.agent,
  key,
  not_after: new Date(r.notAfter).toISOString(),
  attested_by: attestedBy,
});

/** Signs a recorded serial (its grant written with the record), and answers. */
async function signRecorded(b: Broker, { record: r, serial, parsed }: Recorded, deny: (e: MayflyError) => never): Promise<IssuedSvid> {
  let issued;
  try {
    issued = issueCertificate(b.ca, {
      spkiDer: parsed.spkiDer,
      keyType: parsed.keyType,
      spiffeId: r.agent,
      taskId: r.taskId,
      serial,
      notBefore: new Date(r.issuedAt - b.config.caDefaults.backdateMs),
      notAfter: new Date(r.notAfter),
      crlUrl: `${b.config.issuer}/v1/ca/crl`,
      ocspUrl: `${b.config.issuer}/v1/ca/ocsp`,
    });
  } catch (e) {
    // recorded but not signed: revoked, so it can never be mistaken for a live certificate
    await withdraw(b, r);
    if (e instanceof X509Error) return deny(x509Refusal(e));
    throw e;
  }
  return {
    certificate: issued.pem,
    chain: [...b.ca.chainPem],
    serial: r.serial,
    not_after: issued.notAfter.toISOString(),
    spiffe_id: r.agent,
    task_id: r.taskId,
  };
}

/**
 * A serial recorded (or perhaps recorded: the store did not answer in time, and a command it already
 * took still runs when it resumes) whose certificate was never handed out: revoked from its issue
 * instant, retried in the background while the store is unreachable, until it takes or the certificate
 * would have expired. One never recorded gets a CRL entry for a serial nobody holds: harmless.
 * Its audit event (`certificate.revoked`, reason `withheld`) is written once it takes, also when a
 * retry finds it already revoked (an earlier attempt that timed out ran after all), and is itself
 * retried while the store is away: every withdrawal is in the trail.
 */
function withdraw(b: Broker, rec: CertificateRecord, delayMs = 250, retried = false): Promise<void> {
  // resolves after the first attempt; the retries run on their own
  return b.store.revokeCertificate(rec, rec.issuedAt).then(
    (fresh) => {
      if (fresh || retried) auditWithheld(b, rec, entry('certificate.revoked', { serial: rec.serial, task_id: rec.taskId, agent: rec.agent, by: 'broker', reason: 'withheld' }));
    },
    () => {
      if (b.clock.now() < rec.notAfter) setTimeout(() => void withdraw(b, rec, Math.min(delayMs * 2, 5000), true), delayMs).unref();
    },
  );
}

/** Writes a withdrawal's audit event (its pino line once), retrying while the store is away, until the certificate would have expired. */
function auditWithheld(b: Broker, rec: CertificateRecord, e: AuditEntryFields, delayMs = 250, logged = false): void {
  if (!logged) b.audit.logged(e);
  b.store.appendAudit(e).catch(() => {
    if (b.clock.now() < rec.notAfter) setTimeout(() => auditWithheld(b, rec, e, Math.min(delayMs * 2, 5000), true), delayMs).unref();
    else b.log.warn({ serial: rec.serial }, 'audit event of a withheld certificate not written to the store');
  });
}
