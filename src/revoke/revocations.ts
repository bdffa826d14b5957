/**
 * Operator and client revocations: one token (RFC 7009), an identity (lock/unlock), a principal.
 * Each is a single small write: what it makes inactive is decided at verification time by active.ts.
 */
import { certificateStatus } from '../ca/status.js';
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { isSpiffeId, trustDomainOf } from '../ids/spiffe.js';
import { isPrincipal } from '../ids/tokens.js';
import { publishRevocation } from '../feed/publish.js';
import type { CertificateRecord } from '../store/store.js';

/** RFC 7009 §2.2: the answer is the same whether or not the token was valid; only ours are recorded. */
export async function revokeToken(b: Broker, token: string, by: string): Promise<void> {
  const now = b.clock.now();
  const v = b.accessTokens.verify(token, now);
  if (!v.ok) return;
  const c = v.claims;
  await revokeRecorded(b, { taskId: c.task_id, jti: c.jti, agent: c.client_id, exp: c.exp * 1000, iat: c.iat * 1000 }, now, by);
}

/**
 * One recorded token revoked: its feed event first, then the store; audited once. `cause`: the
 * revocation it follows from, told on the feed and in the audit (a certificate that attested it).
 */
async function revokeRecorded(
  b: Broker,
  t: { taskId: string; jti: string; agent: string; exp: number; iat: number },
  now: number,
  by: string,
  cause: { reason: string; serial: string } | Record<string, never> = {},
): Promise<void> {
  // revoked already: no second event (the feed stays one event per jti, however often a client asks,
  // and concurrent revocations publish it once)
  if ((await b.store.facts({ taskId: t.taskId, jti: t.jti, identity: t.agent })).jtiRevoked) return;
  await publishRevocation(b, 'token.revoked', { jti: t.jti, task_id: t.taskId, ...cause }, { key: `jti:${t.taskId}:${t.jti}`, until: t.exp });
  const fresh = await b.store.revokeJti(t.taskId, t.jti, t.exp, now, t.agent, t.iat);
  if (fresh) b.audit.record('token.revoked', { jti: t.jti, task_id: t.taskId, agent: t.agent, by, ...cause });
}

/**
 * The tokens a certificate attested (presented over mTLS, RFC 8705: each bound to it) are revoked with
 * it. Run after the serial's revocation is stored, it finds them all (store.ts attestedTokens); run
 * again by a repeated call, it finishes what a failed one left.
 */
async function revokeAttestedTokens(b: Broker, rec: CertificateRecord, now: number, by: string): Promise<void> {
  const tokens = await b.store.attestedTokens(rec.taskId, rec.serial, now);
  await Promise.all(tokens.map((t) => revokeRecorded(b, { ...t, taskId: rec.taskId, agent: rec.agent }, now, by, { reason: 'certificate_revoked', serial: rec.serial })));
}

/** A SPIFFE ID of this broker's trust domain (no other can hold its credentials: a lock of one would change nothing). */
function requireSpiffeId(b: Broker, id: string): void {
  if (!isSpiffeId(id)) throw new MayflyError('invalid_request', 'not a valid SPIFFE ID (spiffe://trust-domain/path, URL-encoded in the path)', { reason: 'bad_spiffe_id' });
  if (trustDomainOf(id) !== b.config.trustDomain)
    throw new MayflyError('invalid_request', `not of this broker's trust domain (${b.config.trustDomain}): it holds no credential here`, { reason: 'foreign_trust_domain' });
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export async function lockIdentity(b: Broker, id: string, by: string) {
  requireSpiffeId(b, id);
  const now = b.clock.now();
  await publishRevocation(b, 'identity.locked', { identity: id, revoked_before: now });
  await b.store.addCrlScope('identity', id, now + b.config.tokens.maxTtlMs + 60_000);
  const s = await b.store.lockIdentity(id, now);
  await b.crl.revoked();
  b.audit.record('identity.locked', { identity: id, by });
  return { spiffe_id: id, locked: true, locked_at: iso(s.lockedAt), revoked_before: iso(s.revokedBefore) };
}

export async function unlockIdentity(b: Broker, id: string, by: string) {
  requireSpiffeId(b, id);
  const now = b.clock.now();
  // not locked: nothing to lift, nothing to tell (no event, no audit entry), the same answer
  const before = await b.store.identityState(id);
  if (!before.locked) return { spiffe_id: id, locked: false, revoked_before: iso(before.revokedBefore) };
  const s = await b.store.unlockIdentity(id, now, now + b.config.tokens.maxTtlMs + 60_000);
  await publishRevocation(b, 'identity.unlocked', { identity: id, revoked_before: s.revokedBefore });
  b.audit.record('identity.unlocked', { identity: id, by });
  return { spiffe_id: id, locked: false, revoked_before: iso(s.revokedBefore) };
}

/**
 * An identity's lock state and what it holds: its unexpired certificates (the first 100, soonest to
 * expire first, each with its task, principal and status). Its tokens, task by task: GET /v1/tasks?agent=.
 */
export async function identityStatus(b: Broker, id: string) {
  requireSpiffeId(b, id);
  const now = b.clock.now();
  const [s, held] = await Promise.all([b.store.identityState(id), b.store.holderCertificates('identity', id, Infinity, now)]);
  const shown = [...held].sort((x, y) => x.notAfter - y.notAfter).slice(0, 100);
  const certificates = await Promise.all(
    shown.map(async (h) => {
      const st = await certificateStatus(b, h.serial);
      if (st.status === 'unknown') return null;
      return {
        serial: h.serial,
        task_id: st.record.taskId,
        on_behalf_of: st.record.principal ?? null,
        not_after: new Date(st.record.notAfter).toISOString(),
        status: st.status,
      };
    }),
  );
  return {
    spiffe_id: id,
    locked: s.locked,
    locked_at: iso(s.lockedAt),
    revoked_before: iso(s.revokedBefore),
    certificates: certificates.filter((x) => x !== null),
    certificates_total: held.length,
  };
}

/** The identities locked right now, by SPIFFE ID (GET /v1/identities). */
export async function lockedIdentities(b: Broker) {
  const locked = await b.store.lockedIdentities();
  return {
    locked: locked
      .sort((x, y) => (x.identity < y.identity ? -1 : 1))
      .map((l) => ({ spiffe_id: l.identity, locked_at: iso(l.lockedAt), revoked_before: iso(l.revokedBefore) })),
  };
}

/** The principals revoked and still in force (GET /v1/principals). */
export async function revokedPrincipals(b: Broker) {
  const revoked = await b.store.revokedPrincipals(b.clock.now());
  return { revoked: revoked.sort((x, y) => (x.principal < y.principal ? -1 : 1)).map((p) => ({ principal: p.principal, revoked_before: iso(p.revokedBefore) })) };
}

export async function revokePrincipal(b: Broker, principal: string, by: string) {
  if (!isPrincipal(principal)) throw new MayflyError('invalid_request', 'not a valid principal (kind:value, printable ASCII)', { reason: 'bad_principal' });
  const now = b.clock.now();
  await publishRevocation(b, 'principal.revoked', { principal, revoked_before: now });
  await b.store.addCrlScope('principal', principal, now + b.config.tokens.maxTtlMs + 60_000);
  // Tasks opened for the principal before now count as closed for as long as any of them could live.
  const before = await b.store.revokePrincipal(principal, now, now + b.config.tasks.maxTtlMs + b.config.tokens.maxTtlMs + 60_000);
  await b.crl.revoked();
  b.audit.record('principal.revoked', { principal, by });
  return { principal, revoked: true, revoked_before: new Date(before).toISOString() };
}

/**
 * Revokes one certificate by serial (until it expires): listed in the CRL, `revoked` over OCSP; with
 * it the tokens it attested or that are bound to it, and the certificates it renewed over mTLS (each
 * in turn with theirs). `cause`: the renewing certificate whose revocation this follows from, and
 * `linked`: what its link says of this renewal, standing in for its record by serial when that is not
 * written (yet): on a Cluster the link is written with the task's record, the record by serial after.
 */
export async function revokeCertificateSerial(b: Broker, serial: string, by: string, cause?: { attested_by: string }, linked?: CertificateRecord) {
  const rec = (await b.store.getCertificate(serial)) ?? linked;
  if (!rec) throw new MayflyError('not_found', 'unknown certificate serial', { reason: 'serial_unknown' });
  const now = b.clock.now();
  // already over: nothing to revoke, nothing to tell the relying parties (one revoked before it ended
  // says so, as its status does)
  if (rec.notAfter <= now) {
    const st = await certificateStatus(b, serial);
    if (st.status === 'revoked') return { serial, status: 'revoked' as const, revoked_at: new Date(st.revokedAt).toISOString() };
    return { serial, status: 'expired' as const, not_after: new Date(rec.notAfter).toISOString() };
  }
  // revoked by serial already: no second event, nothing to write
  if ((await b.store.certificateRevokedAt(serial)) === 0) {
    await publishRevocation(b, 'certificate.revoked', { serial, task_id: rec.taskId }, { key: `serial:${serial}`, until: rec.notAfter });
    // listed on its own as long as its task's piece could list it (a close after this), so the CRL keeps this date
    const task = await b.taskCache.get(b.store, rec.taskId);
    if (await b.store.revokeCertificate(rec, now, task?.expiresAt)) {
      b.crl.refresh();
      b.audit.record('certificate.revoked', { serial, task_id: rec.taskId, agent: rec.agent, by, ...(cause ? { reason: 'attesting_certificate_revoked', ...cause } : {}) });
    }
  }
  await revokeAttestedTokens(b, rec, now, by);
  // a renewal of a compromised certificate is the compromise's too
  for (const child of await b.store.renewals(rec.taskId, serial, now))
    await revokeCertificateSerial(b, child.serial, by, { attested_by: serial }, { ...rec, serial: child.serial, issuedAt: now, notAfter: child.notAfter, renewalOf: serial });
  // when it was revoked: by this call, or earlier (a close, a lock, a principal revocation), as its status says
  const st = await certificateStatus(b, serial);
  return { serial, status: 'revoked' as const, revoked_at: new Date(st.status === 'revoked' ? st.revokedAt : now).toISOString() };
}
