/**
 * Store in process memory: for `mayfly dev` and tests. Same semantics as RedisStore (one contract
 * suite runs against both); single-process, so every method is trivially atomic.
 *
 * Expiry follows the injected clock (RedisStore's follows the server's): entries past their purge
 * instant are treated as absent on access and swept by an unref()ed timer, so nothing grows forever.
 */
import { EventLog } from './event-log.js';
import { systemClock, type Clock } from '../../clock.js';
import { StoreUnavailableError } from '../../errors.js';
import type {
  AttestedToken,
  OnceKey,
  AuditLog,
  AuditEntry,
  CertificateRecord,
  CrlScope,
  CloseOutcome,
  CredentialFacts,
  FactsQuery,
  IdentityState,
  IssuanceOutcome,
  IssuerState,
  HeldCertificate,
  IssuanceRecord,
  JoinTokenRecord,
  Store,
  TaskCounts,
  TaskRecord,
} from '../store.js';
import { LOCK_HISTORY, certificateExpiryField, certificateKeptUntil, combineIdentities, countRevokedByIdentity, expiryField, issuedUpToCutoff, parseExpiryField, serialSlot } from '../store.js';

export interface MemoryStoreOptions {
  clock?: Clock;
  auditMaxLen?: number;
}

interface TaskEntry {
  rec: TaskRecord;
  purgeAt: number;
  issued: number;
  /** jti -> exp: mirrors the Redis creds zset. */
  creds: Map<string, number>;
  /** certificate serial -> notAfter: mirrors the Redis certs zset. */
  certs: Map<string, number>;
  /** serials revoked one by one: mirrors the Redis revoked certs zset. */
  revokedCerts: Set<string>;
  byAgent: Map<string, number>;
  /** `agent|exp|iat` -> count: mirrors the Redis expiry counts. */
  expiries: Map<string, number>;
  /** certificate serial -> the tokens it attested: mirrors the Redis attested-tokens zsets. */
  attested: Map<string, AttestedToken[]>;
  /** certificate serial -> the certificates it renewed (serial -> notAfter): mirrors their `cert:` members there. */
  renewals: Map<string, Map<string, number>>;
}

interface IdentEntry {
  locked: boolean;
  lockedAt?: number;
  revokedBefore: number;
  /** Its locks' cutoffs, oldest first (the latest LOCK_HISTORY). */
  locks?: number[];
  /** Undefined while locked: a lock never expires by itself. */
  expireAt?: number;
}

const SWEEP_MS = 60_000;
const copy = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly assertsIssuerState = true;
  private readonly clock: Clock;
  private readonly auditMaxLen: number;
  private readonly tasks = new Map<string, TaskEntry>();
  /** `${taskId} ${jti}` -> instant the marker vanishes. */
  private readonly revokedJtis = new Map<string, number>();
  private readonly idents = new Map<string, IdentEntry>();
  private readonly principals = new Map<string, { revokedBefore: number; expireAt: number; cutoffs?: number[] }>();
  private readonly audit: EventLog;
  private readonly usage: EventLog;
  private readonly revocations = new EventLog();
  private readonly certificates = new Map<string, CertificateRecord>();
  /** `identity id` / `principal id` -> serials of their certificates. */
  private readonly holderCerts = new Map<string, Set<string>>();
  private readonly revokedSerials = new Map<string, { notAfter: number; revokedAt: number }>();
  private readonly scopes = new Map<CrlScope, Map<string, number>>();
  private readonly joinTokens = new Map<string, JoinTokenRecord>();
  /** useOnce keys -> instant they are forgotten. */
  private readonly once = new Map<string, number>();
  private crlVer = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.auditMaxLen = opts.auditMaxLen ?? 100_000;
    // one id sequence for both, so a task's story merges them in order
    const ids: { last: [number, number] } = { last: [0, 0] };
    this.audit = new EventLog(this.auditMaxLen, ids);
    this.usage = new EventLog(this.auditMaxLen, ids);
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref(); // never keeps the process alive
  }

  /** Drops everything past its expiry (also done lazily on each access). */
  sweep(): void {
    const now = this.clock.now();
    for (const [id, t] of this.tasks) {
      if (t.purgeAt <= now) this.tasks.delete(id);
      else {
        for (const [jti, exp] of t.creds) if (exp <= now) t.creds.delete(jti); // Redis prunes on issuance
        for (const f of t.expiries.keys()) if (parseExpiryField(f).exp <= now) t.expiries.delete(f);
      }
    }
    for (const [k, at] of this.revokedJtis) if (at <= now) this.revokedJtis.delete(k);
    for (const [k, e] of this.idents) if (e.expireAt !== undefined && e.expireAt <= now) this.idents.delete(k);
    for (const [k, e] of this.principals) if (e.expireAt <= now) this.principals.delete(k);
    for (const [k, c] of this.certificates) if (certificateKeptUntil(c) <= now) this.certificates.delete(k);
    for (const [k, e] of this.revokedSerials) if (e.notAfter <= now) this.revokedSerials.delete(k);
    for (const [k, at] of this.once) if (at <= now) this.once.delete(k);
    for (const [k, j] of this.joinTokens) if (j.expiresAt <= now) this.joinTokens.delete(k);
  }

  private open(): void {
    if (this.closed) throw new StoreUnavailableError(new Error('store closed'));
  }

  private task(id: string): TaskEntry | undefined {
    this.open();
    const t = this.tasks.get(id);
    if (t && t.purgeAt <= this.clock.now()) {
      this.tasks.delete(id);
      return undefined;
    }
    return t;
  }

  private ident(id: string): IdentEntry | undefined {
    this.open();
    const e = this.idents.get(id);
    if (e?.expireAt !== undefined && e.expireAt <= this.clock.now()) {
      this.idents.delete(id);
      return undefined;
    }
    return e;
  }

  private principal(p: string): { revokedBefore: number; expireAt: number; cutoffs?: number[] } | undefined {
    this.open();
    const e = this.principals.get(p);
    if (e && e.expireAt <= this.clock.now()) {
      this.principals.delete(p);
      return undefined;
    }
    return e;
  }

  private jtiRevoked(taskId: string, jti: string): boolean {
    const key = `${taskId} ${jti}`;
    const at = this.revokedJtis.get(key);
    if (at === undefined) return false;
    if (at > this.clock.now()) return true;
    this.revokedJtis.delete(key);
    return false;
  }

  async createTask(task: TaskRecord, purgeAt: number): Promise<void> {
    this.open();
    this.tasks.set(task.id, { rec: copy(task), purgeAt, issued: 0, creds: new Map(), certs: new Map(), revokedCerts: new Set(), byAgent: new Map(), expiries: new Map(), attested: new Map(), renewals: new Map() });
  }

  async listTasks(now: number, offset: number, limit: number): Promise<{ ids: string[]; total: number }> {
    this.open();
    const live = [...this.tasks].filter(([, t]) => t.purgeAt > now).sort(([ia, a], [ib, b]) => b.purgeAt - a.purgeAt || (ia < ib ? 1 : -1));
    return { ids: live.slice(offset, offset + limit).map(([id]) => id), total: live.length };
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const t = this.task(id);
    return t ? copy(t.rec) : null;
  }

  async taskCounts(id: string, now: number): Promise<TaskCounts> {
    const t = this.task(id);
    if (!t) return { issued: 0, unexpired: 0, byAgent: {} };
    return { issued: t.issued, unexpired: countAfter(t.creds, now) + liveCertificates(t, now), byAgent: Object.fromEntries(t.byAgent) };
  }

  async revokedByIdentity(taskId: string, cutoffs: Readonly<Record<string, number>>, now: number): Promise<Record<string, number>> {
    return countRevokedByIdentity(this.task(taskId)?.expiries ?? [], cutoffs, now);
  }

  async recordIssuance(rec: IssuanceRecord, now: number): Promise<IssuanceOutcome> {
    const t = this.task(rec.taskId);
    if (!t) return 'task_unknown';
    if (t.rec.state !== 'open') return 'task_closed';
    if (t.rec.expiresAt <= now) return 'task_expired';
    if (rec.attestedBy !== undefined) {
      if (t.revokedCerts.has(rec.attestedBy)) return 'certificate_revoked';
      const list = (t.attested.get(rec.attestedBy) ?? []).filter((a) => a.exp > now);
      t.attested.set(rec.attestedBy, [...list, { jti: rec.jti, exp: rec.exp, iat: rec.iat ?? now }]);
    }
    t.creds.set(rec.jti, rec.exp);
    const f = expiryField(rec.agent, rec.exp, rec.iat ?? now);
    t.expiries.set(f, (t.expiries.get(f) ?? 0) + 1);
    t.issued += 1;
    t.byAgent.set(rec.agent, (t.byAgent.get(rec.agent) ?? 0) + 1);
    return 'ok';
  }

  async closeTask(id: string, now: number, reason: string): Promise<CloseOutcome | null> {
    const t = this.task(id);
    if (!t) return null;
    if (t.rec.state === 'closed') {
      return { record: copy(t.rec), revoked: t.rec.revokedAtClose ?? 0, alreadyClosed: true };
    }
    const revoked = t.rec.expiresAt > now ? countAfter(t.creds, now) + liveCertificates(t, now) : 0;
    Object.assign(t.rec, { state: 'closed', closedAt: now, closeReason: reason, revokedAtClose: revoked });
    return { record: copy(t.rec), revoked, alreadyClosed: false };
  }

  async revokeJti(taskId: string, jti: string, exp: number, now: number, agent: string, iat: number): Promise<boolean> {
    this.open();
    if (exp <= now) return false;
    const t = this.task(taskId);
    if (t?.creds.delete(jti)) {
      const f = expiryField(agent, exp, iat);
      const n = (t.expiries.get(f) ?? 0) - 1;
      if (n > 0) t.expiries.set(f, n);
      else t.expiries.delete(f);
    }
    if (this.jtiRevoked(taskId, jti)) return false;
    this.revokedJtis.set(`${taskId} ${jti}`, t ? Math.min(exp, t.purgeAt) : exp);
    return true;
  }

  async facts(q: FactsQuery): Promise<CredentialFacts> {
    const t = this.task(q.taskId);
    const rec = t?.rec;
    return {
      task: rec
        ? {
            state: rec.state,
            expiresAt: rec.expiresAt,
            createdAt: rec.createdAt,
            ...(rec.onBehalfOf !== undefined ? { onBehalfOf: rec.onBehalfOf } : {}),
          }
        : null,
      jtiRevoked: [...(q.jti === undefined ? [] : [q.jti]), ...(q.lineage?.jtis ?? [])].some((j) => this.jtiRevoked(q.taskId, j)),
      identity: combineIdentities(await Promise.all([q.identity, ...(q.lineage?.identities ?? [])].map((i) => this.identityState(i)))),
      principalRevokedBefore: q.principal === undefined ? 0 : (this.principal(q.principal)?.revokedBefore ?? 0),
    };
  }

  async lockIdentity(identity: string, now: number): Promise<IdentityState> {
    const e = this.ident(identity);
    const lockedAt = e?.locked && e.lockedAt !== undefined ? e.lockedAt : now;
    const revokedBefore = Math.max(e?.revokedBefore ?? 0, now);
    const locks = e?.locked ? e.locks : [...(e?.locks ?? []), revokedBefore].slice(-LOCK_HISTORY);
    const next: IdentEntry = { locked: true, lockedAt, revokedBefore, ...(locks ? { locks } : {}) };
    this.idents.set(identity, next);
    return { locked: true, lockedAt, revokedBefore: next.revokedBefore };
  }

  async unlockIdentity(identity: string, _now: number, retainUntil: number): Promise<IdentityState> {
    const e = this.ident(identity);
    if (!e) return { locked: false, revokedBefore: 0 };
    e.locked = false;
    delete e.lockedAt;
    e.expireAt = e.expireAt === undefined ? retainUntil : Math.max(e.expireAt, retainUntil);
    return { locked: false, revokedBefore: e.revokedBefore };
  }

  async identityState(identity: string): Promise<IdentityState> {
    const e = this.ident(identity);
    if (!e) return { locked: false, revokedBefore: 0 };
    return { locked: e.locked, ...(e.locked ? { lockedAt: e.lockedAt } : {}), revokedBefore: e.revokedBefore, ...(e.locks ? { locks: [...e.locks] } : {}) };
  }

  async revokedPrincipals(now: number): Promise<Array<{ principal: string; revokedBefore: number }>> {
    this.open();
    return [...this.principals].filter(([, e]) => e.expireAt > now).map(([principal, e]) => ({ principal, revokedBefore: e.revokedBefore }));
  }

  async revokePrincipal(principal: string, now: number, retainUntil: number): Promise<number> {
    const e = this.principal(principal);
    const revokedBefore = Math.max(e?.revokedBefore ?? 0, now);
    const cutoffs = [...new Set([...(e?.cutoffs ?? []), revokedBefore])].sort((a, b) => a - b).slice(-LOCK_HISTORY);
    const next = { revokedBefore, expireAt: Math.max(e?.expireAt ?? 0, retainUntil), cutoffs };
    this.principals.set(principal, next);
    return next.revokedBefore;
  }

  async principalCutoffs(principal: string): Promise<number[]> {
    return [...(this.principal(principal)?.cutoffs ?? [])];
  }

  async principalRevokedBefore(principal: string): Promise<number> {
    return this.principal(principal)?.revokedBefore ?? 0;
  }

  private logOf(log: AuditLog): EventLog {
    return log === 'usage' ? this.usage : this.audit;
  }

  async appendAudit(event: Record<string, string>, log: AuditLog = 'audit'): Promise<string> {
    this.open();
    return this.logOf(log).append(event, this.clock.now());
  }

  async readAudit(afterId: string, limit: number, log: AuditLog = 'audit'): Promise<AuditEntry[]> {
    this.open();
    return this.logOf(log).read(afterId, limit);
  }

  appendRevocation(event: Record<string, string>, windowMs: number): Promise<string>;
  appendRevocation(event: Record<string, string>, windowMs: number, once?: OnceKey): Promise<string | null>;
  async appendRevocation(event: Record<string, string>, windowMs: number, once?: OnceKey): Promise<string | null> {
    this.open();
    const now = this.clock.now();
    if (once && !(await this.useOnce(`feed:${once.key}`, once.until, now))) return null;
    const id = this.revocations.append(event, now);
    this.revocations.trimBefore(now - windowMs);
    return id;
  }

  async readRevocations(afterId: string, limit: number): Promise<AuditEntry[]> {
    this.open();
    return this.revocations.read(afterId, limit);
  }

  async revocationCursor(): Promise<{ latest: string; maxDeleted: string }> {
    this.open();
    return { latest: this.revocations.latestId(), maxDeleted: this.revocations.maxDeleted };
  }

  async waitRevocations(afterId: string, timeoutMs: number): Promise<void> {
    this.open();
    await this.revocations.wait(afterId, timeoutMs);
  }

  async lockedIdentities(): Promise<Array<{ identity: string } & IdentityState>> {
    this.open();
    const out: Array<{ identity: string } & IdentityState> = [];
    for (const [identity, e] of this.idents)
      if (e.locked) out.push({ identity, locked: true, ...(e.lockedAt !== undefined ? { lockedAt: e.lockedAt } : {}), revokedBefore: e.revokedBefore, ...(e.locks ? { locks: [...e.locks] } : {}) });
    return out;
  }

  /** The issuer's states still hold (checked in the same synchronous step as the record). */
  private holds(expect: IssuerState): boolean {
    const e = this.ident(expect.identity);
    if (e?.locked || (e?.revokedBefore ?? 0) !== expect.revokedBefore) return false;
    return expect.principal === undefined || (this.principal(expect.principal)?.revokedBefore ?? 0) === expect.principalCutoff;
  }

  async recordCertificate(rec: CertificateRecord, now: number, expect?: IssuerState, grant?: Record<string, string>, renewalOf?: string): Promise<IssuanceOutcome> {
    if (expect && !this.holds(expect)) return 'state_changed';
    const t = this.task(rec.taskId);
    if (!t) return 'task_unknown';
    if (t.rec.state !== 'open') return 'task_closed';
    if (t.rec.expiresAt <= now) return 'task_expired';
    if (renewalOf !== undefined && t.revokedCerts.has(renewalOf)) return 'certificate_revoked';
    if (renewalOf !== undefined) {
      const m = t.renewals.get(renewalOf) ?? new Map<string, number>();
      for (const [c, exp] of m) if (exp <= now) m.delete(c);
      t.renewals.set(renewalOf, m.set(rec.serial, rec.notAfter));
    }
    t.certs.set(rec.serial, rec.notAfter);
    const f = certificateExpiryField(rec);
    t.expiries.set(f, (t.expiries.get(f) ?? 0) + 1);
    t.issued += 1;
    t.byAgent.set(rec.agent, (t.byAgent.get(rec.agent) ?? 0) + 1);
    this.certificates.set(rec.serial, { ...rec, ...(renewalOf !== undefined && renewalOf !== '' ? { renewalOf } : {}) });
    for (const key of [`identity ${rec.agent}`, rec.principal ? `principal ${rec.principal}` : undefined]) {
      if (!key) continue;
      const set = this.holderCerts.get(key) ?? new Set<string>();
      set.add(rec.serial);
      this.holderCerts.set(key, set);
    }
    if (grant) this.audit.append(grant, this.clock.now());
    return 'ok';
  }

  private cert(serial: string): CertificateRecord | undefined {
    this.open();
    const c = this.certificates.get(serial);
    if (c && certificateKeptUntil(c) <= this.clock.now()) {
      this.certificates.delete(serial);
      return undefined;
    }
    return c;
  }

  async getCertificate(serial: string): Promise<CertificateRecord | null> {
    const c = this.cert(serial);
    return c ? copy(c) : null;
  }

  async taskCertificates(taskId: string, now: number): Promise<string[]> {
    const t = this.task(taskId);
    return t ? [...t.certs].filter(([, exp]) => exp > now).map(([serial]) => serial) : [];
  }

  async taskSerialSlots(taskId: string): Promise<Buffer> {
    const t = this.task(taskId);
    return Buffer.concat([...(t?.certs.keys() ?? [])].map(serialSlot));
  }

  async holderCertificates(kind: 'identity' | 'principal', id: string, issuedUpTo: number, now: number): Promise<HeldCertificate[]> {
    const set = this.holderCerts.get(`${kind} ${id}`);
    const out: HeldCertificate[] = [];
    for (const serial of set ?? []) {
      const c = this.cert(serial);
      if (!c) set!.delete(serial);
      else if (c.notAfter > now && issuedUpToCutoff(c.issuedAt, issuedUpTo)) out.push({ serial, notAfter: c.notAfter, issuedAt: c.issuedAt });
    }
    return out;
  }

  async revokeCertificate(rec: CertificateRecord, now: number, listUntil = rec.notAfter): Promise<boolean> {
    this.open();
    const { serial, notAfter } = rec;
    if (notAfter <= now) return false;
    const t = this.task(rec.taskId);
    if (t?.certs.has(serial) && !t.revokedCerts.has(serial)) {
      t.revokedCerts.add(serial);
      const f = certificateExpiryField(rec);
      const n = (t.expiries.get(f) ?? 0) - 1;
      if (n > 0) t.expiries.set(f, n);
      else t.expiries.delete(f);
    }
    this.crlVer++;
    if (this.revokedSerials.has(serial)) return false;
    this.revokedSerials.set(serial, { notAfter: Math.max(notAfter, listUntil), revokedAt: now });
    return true;
  }

  async certificateRevokedAt(serial: string): Promise<number> {
    this.open();
    return this.revokedSerials.get(serial)?.revokedAt ?? 0;
  }

  async attestedTokens(taskId: string, serial: string, now: number): Promise<AttestedToken[]> {
    this.open();
    return (this.task(taskId)?.attested.get(serial) ?? []).filter((a) => a.exp > now).map((a) => ({ ...a }));
  }

  async renewals(taskId: string, parent: string, now: number): Promise<Array<{ serial: string; notAfter: number }>> {
    this.open();
    return [...(this.task(taskId)?.renewals.get(parent) ?? [])].filter(([, exp]) => exp > now).map(([serial, notAfter]) => ({ serial, notAfter }));
  }

  async revokedCertificates(now: number): Promise<Array<{ serial: string; revokedAt: number }>> {
    this.open();
    const out: Array<{ serial: string; revokedAt: number }> = [];
    for (const [serial, e] of this.revokedSerials) {
      if (e.notAfter > now) out.push({ serial, revokedAt: e.revokedAt });
      // an expired one's revocation is kept as long as its record (its status still says revoked)
      else if (!this.cert(serial)) this.revokedSerials.delete(serial);
    }
    return out;
  }

  async addCrlScope(kind: CrlScope, id: string, until: number): Promise<void> {
    this.open();
    const m = this.scopes.get(kind) ?? new Map<string, number>();
    m.set(id, Math.max(m.get(id) ?? 0, until));
    this.scopes.set(kind, m);
    this.crlVer++;
  }

  async crlScopes(kind: CrlScope, now: number): Promise<string[]> {
    this.open();
    const m = this.scopes.get(kind);
    if (!m) return [];
    for (const [id, until] of m) if (until <= now) m.delete(id);
    return [...m.keys()];
  }

  async crlVersion(): Promise<number> {
    this.open();
    return this.crlVer;
  }

  async bumpCrlVersion(): Promise<number> {
    this.open();
    return ++this.crlVer;
  }

  async putJoinToken(hash: string, rec: JoinTokenRecord): Promise<void> {
    this.open();
    this.joinTokens.set(hash, { ...rec });
  }

  async takeJoinToken(hash: string, now: number): Promise<JoinTokenRecord | null> {
    this.open();
    const rec = this.joinTokens.get(hash);
    this.joinTokens.delete(hash);
    return rec && rec.expiresAt > now ? rec : null;
  }

  async useOnce(key: string, until: number, now: number): Promise<boolean> {
    this.open();
    const at = this.once.get(key);
    if (at !== undefined && at > now) return false;
    this.once.set(key, Math.max(until, now + 1));
    return true;
  }

  async ping(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
  }
}

function countAfter(creds: Map<string, number>, now: number): number {
  let n = 0;
  for (const exp of creds.values()) if (exp > now) n++;
  return n;
}

/** A task's unexpired certificates not revoked one by one. */
function liveCertificates(t: TaskEntry, now: number): number {
  let n = 0;
  for (const [serial, exp] of t.certs) if (exp > now && !t.revokedCerts.has(serial)) n++;
  return n;
}


