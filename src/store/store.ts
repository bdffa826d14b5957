/**
 * The credential store: one small interface, two implementations (store/redis, store/memory), one
 * contract test suite (test/contract) run against both. The broker core never knows which it talks to.
 *
 * All times are milliseconds since the epoch. Every method either completes or throws
 * StoreUnavailableError (src/errors.ts): callers fail closed on it.
 */

export type TaskState = 'open' | 'closed';

export interface TaskSpec {
  agents: string[];
  scopes: string[];
  tools: string[];
  audiences: string[];
  purpose?: string;
  onBehalfOf?: string;
}

export interface TaskRecord extends TaskSpec {
  id: string;
  /** Stored state. A task past `expiresAt` counts as closed whatever this says (see revoke/active.ts). */
  state: TaskState;
  /** Who opened it: a SPIFFE ID, or `operator:<name>`. */
  openedBy: string;
  createdAt: number;
  expiresAt: number;
  closedAt?: number;
  closeReason?: string;
  /** Credentials that were still active when the task was closed (the `revoked` count of the close). */
  revokedAtClose?: number;
}

export interface TaskCounts {
  issued: number;
  /** Unexpired credentials (tokens and certificates) recorded for the task that were not revoked one by one. */
  unexpired: number;
  /** Credentials issued per agent SPIFFE ID. */
  byAgent: Record<string, number>;
}

export interface IssuanceRecord {
  taskId: string;
  jti: string;
  /** SPIFFE ID of the agent the credential was minted for. */
  agent: string;
  /** Expiry of the credential. */
  exp: number;
  /** When it was issued (ms; whole seconds for a JWT's iat). Default: the recording instant. */
  iat?: number;
  /**
   * The serial (hex) of the task's own certificate whose presentation attested this token: it is
   * recorded beside the certificate, so revoking the certificate revokes the token (`attestedTokens`),
   * and refused once the certificate was revoked by serial.
   */
  attestedBy?: string;
}

/** What makes a feed event one of a kind (Store.appendRevocation): its subject, until it no longer matters. */
export interface OnceKey {
  key: string;
  until: number;
}

/** A token attested by one of the task's certificates (IssuanceRecord.attestedBy), as revoking it needs. */
export interface AttestedToken {
  jti: string;
  exp: number;
  iat: number;
}

/**
 * Outcome of the atomic check-and-record: the task must exist, be open and not past its deadline.
 * `state_changed`: the issuer's `IssuerState` no longer holds (nothing recorded).
 * `certificate_revoked`: the certificate that attested the token was revoked by serial (nothing recorded).
 */
export type IssuanceOutcome = 'ok' | 'task_unknown' | 'task_closed' | 'task_expired' | 'state_changed' | 'certificate_revoked';

/**
 * The states an issuer decided on, asserted by the store in the same atomic step as the record
 * (optimistic concurrency, like a compare-and-set): the identity is still unlocked with this
 * `revokedBefore`, and the principal's cutoff is still this one. A lock or revocation that landed
 * since makes the record `state_changed` instead, so an issuer may decide on the states it saw at its
 * last grant without reading them again, and no credential is recorded for an identity locked after
 * its state was read.
 */
export interface IssuerState {
  identity: string;
  revokedBefore: number;
  principal?: string;
  principalCutoff: number;
}

export interface CloseOutcome {
  record: TaskRecord;
  /** Credentials active at the moment of closing (0 past the deadline); a repeated close returns the first count. */
  revoked: number;
  /** True when the task had been closed before this call (the close is idempotent). */
  alreadyClosed: boolean;
}

export interface IdentityState {
  locked: boolean;
  lockedAt?: number;
  /** Every credential of this identity issued at or before this instant is inactive (0: none). */
  revokedBefore: number;
  /**
   * The cutoffs of its locks, oldest first (the latest LOCK_HISTORY): when each credential was revoked
   * (identityRevokedAt), so a later lock does not move the revocation time of what an earlier one covered.
   */
  locks?: number[];
}

/**
 * When a principal's revocations revoked a task opened at `createdAt`: the first cutoff at or after it
 * (a later revocation does not move it); 0 when none covers it.
 */
export function principalRevokedAt(cutoffs: readonly number[], createdAt: number): number {
  for (const c of cutoffs) if (createdAt <= c) return c;
  return 0;
}

/** How many of an identity's lock cutoffs (and of a principal's revocation cutoffs) are kept. */
export const LOCK_HISTORY = 16;

/**
 * When its identity's locks revoked a credential issued at `issuedAt` (ms): the first lock whose cutoff
 * covers it; else (recorded after a lock's instant but before it landed) the current lock's.
 */
export function identityRevokedAt(s: IdentityState, issuedAt: number): number {
  for (const cutoff of s.locks ?? []) if (issuedUpToCutoff(issuedAt, cutoff)) return cutoff;
  return s.lockedAt ?? s.revokedBefore;
}

/** The raw facts that decide whether a credential is active, read in one round trip. */
export interface CredentialFacts {
  task: Pick<TaskRecord, 'state' | 'expiresAt' | 'createdAt' | 'onBehalfOf'> | null;
  jtiRevoked: boolean;
  identity: IdentityState;
  /** Credentials acting for the principal issued at or before this instant are inactive (0: none). */
  principalRevokedBefore: number;
}

export interface FactsQuery {
  taskId: string;
  jti?: string;
  identity: string;
  principal?: string;
  /**
   * Delegation: the jtis (same task) and agents of the tokens this one was derived from. Any of those
   * jtis revoked counts as `jtiRevoked`; their agents' states join `identity` (locked if any is,
   * the latest cutoff).
   */
  lineage?: { jtis: string[]; identities: string[] };
}

/** Several identity states as one: locked if any is, revoked up to the latest cutoff, every lock's cutoff. */
export function combineIdentities(states: IdentityState[]): IdentityState {
  if (states.length === 1) return states[0]!;
  let locked = false;
  let lockedAt: number | undefined;
  let revokedBefore = 0;
  const locks: number[] = [];
  for (const s of states) {
    if (s.locked) {
      locked = true;
      lockedAt = Math.max(lockedAt ?? 0, s.lockedAt ?? 0);
    }
    revokedBefore = Math.max(revokedBefore, s.revokedBefore);
    if (s.locks) locks.push(...s.locks);
  }
  return { locked, ...(lockedAt !== undefined ? { lockedAt } : {}), revokedBefore, ...(locks.length ? { locks: locks.sort((a, b) => a - b) } : {}) };
}

export interface AuditEntry {
  id: string;
  event: Record<string, string>;
}

/** An X.509 certificate issued for a task (issue 4): what revocation needs to know about it. */
export interface CertificateRecord {
  /** Lowercase hex, no leading zeros stripped (as printed in the certificate). */
  serial: string;
  taskId: string;
  agent: string;
  principal?: string;
  issuedAt: number;
  notAfter: number;
  /** A renewal: the serial of the task's certificate that asked for it over mTLS (recordCertificate's renewalOf). */
  renewalOf?: string;
}

/** An expiry-count field: `agent|exp|iat` (ms each). */
export const expiryField = (agent: string, exp: number, iat: number): string => `${agent}|${exp}|${iat}`;

/** A certificate's expiry-count field: its issuance in whole seconds, as a lock's cutoff covers it (issuedUpToCutoff). */
export const certificateExpiryField = (c: Pick<CertificateRecord, 'agent' | 'notAfter' | 'issuedAt'>): string =>
  expiryField(c.agent, c.notAfter, Math.floor(c.issuedAt / 1000) * 1000);

/** The parts of an expiry-count field (the agent may itself hold no `|`, but is split from the right). */
export function parseExpiryField(f: string): { agent: string; exp: number; iat: number } {
  const i = f.lastIndexOf('|');
  const j = f.lastIndexOf('|', i - 1);
  return { agent: f.slice(0, j), exp: Number(f.slice(j + 1, i)), iat: Number(f.slice(i + 1)) };
}

/** A certificate in an identity's or principal's holder index. */
export interface HeldCertificate {
  serial: string;
  notAfter: number;
  issuedAt: number;
}

/**
 * Whether a revocation cutoff (an identity's or principal's revoked_before, ms) covers a credential
 * issued at `issuedAt` (ms): by its whole second, as a JWT's iat says it (revoke/active.ts verdict), so
 * one issued in the very second of the revocation counts as revoked. Certificates follow the same rule,
 * so their JSON status, OCSP and the CRL agree.
 */
export const issuedUpToCutoff = (issuedAt: number, cutoff: number): boolean => Math.floor(issuedAt / 1000) * 1000 <= cutoff;

/** Sums expiry-count fields per agent: unexpired at `now` and issued at or before the agent's cutoff. */
export function countRevokedByIdentity(fields: Iterable<[string, number]>, cutoffs: Readonly<Record<string, number>>, now: number): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(Object.keys(cutoffs).map((a) => [a, 0]));
  for (const [f, n] of fields) {
    const { agent, exp, iat } = parseExpiryField(f);
    const cutoff = cutoffs[agent];
    if (cutoff !== undefined && exp > now && iat <= cutoff) out[agent]! += n;
  }
  return out;
}

/**
 * How long a certificate's record outlives the certificate: as long again as it lived, so its status
 * reads `expired` (not unknown) for a while after it ends, and a 5-minute certificate costs 10 minutes
 * of one small hash.
 */
export const certificateKeptUntil = (rec: Pick<CertificateRecord, 'issuedAt' | 'notAfter'>): number => rec.notAfter + Math.max(0, rec.notAfter - rec.issuedAt);

export type CrlScope = 'task' | 'identity' | 'principal';

export type AuditLog = 'audit' | 'usage';

/** A built CRL as the store keeps it for every process: its DER, the CRL version it reflects, when it was built (ms). */
export interface SharedCrl {
  der: Buffer;
  version: number;
  builtAt: number;
  /** When the CRL it replaced in the store was built (0: none); an answer of getOrClaimCrl only. */
  previousAt?: number;
}

/**
 * The build of a shared CRL's version: this process's to build and store ('build'), or another's that
 * is building it ('wait'). `at`: the instant that build issues its CRL as of (its thisUpdate and CRL
 * number), later than the stored CRL's; `previousAt`: when the stored CRL was built (0: none).
 */
export interface CrlClaim {
  claim: 'build' | 'wait';
  at: number;
  previousAt: number;
}

export interface Store {
  readonly kind: 'redis' | 'memory';

  /** Records a new task; its keys live until `purgeAt` (≥ its deadline) and then vanish. */
  createTask(task: TaskRecord, purgeAt: number): Promise<void>;
  getTask(id: string): Promise<TaskRecord | null>;
  taskCounts(id: string, now: number): Promise<TaskCounts>;
  /**
   * The inventory of tasks not purged at `now` (open, or finished within their retention), latest
   * deadline first: `limit` ids from `offset`, and how many there are in all.
   */
  listTasks(now: number, offset: number, limit: number): Promise<{ ids: string[]; total: number }>;

  /**
   * Atomically: check that the task exists, is open and `now` is before its deadline, and record the
   * credential in the task's index. One round trip (a Lua script on Redis).
   */
  recordIssuance(rec: IssuanceRecord, now: number): Promise<IssuanceOutcome>;

  /** Closes the task in O(1) of its credentials. Idempotent. Null for an unknown task. */
  closeTask(id: string, now: number, reason: string): Promise<CloseOutcome | null>;

  /** Revokes one credential (of `agent`, issued at `iat` ms) until its expiry. False if it was already revoked. */
  revokeJti(taskId: string, jti: string, exp: number, now: number, agent: string, iat: number): Promise<boolean>;
  /**
   * Per agent, how many of its tokens in the task are unexpired at `now`, not revoked one by one, and
   * issued at or before that agent's cutoff (its identity's revoked_before): those its lock made inactive.
   */
  revokedByIdentity(taskId: string, cutoffs: Readonly<Record<string, number>>, now: number): Promise<Record<string, number>>;

  /** Everything `isActive` needs, in one round trip. */
  facts(q: FactsQuery): Promise<CredentialFacts>;

  /** Locks an identity: no new credentials, and every one issued up to `now` inactive. */
  lockIdentity(identity: string, now: number): Promise<IdentityState>;
  /**
   * Unlocks an identity: new credentials may be issued again; those issued before the lock stay
   * inactive. The record is kept until `retainUntil` (the longest a credential can live), then vanishes.
   */
  unlockIdentity(identity: string, now: number, retainUntil: number): Promise<IdentityState>;
  identityState(identity: string): Promise<IdentityState>;

  /** Every credential acting for the principal issued up to `now` becomes inactive. Kept until `retainUntil`. */
  revokePrincipal(principal: string, now: number, retainUntil: number): Promise<number>;
  principalRevokedBefore(principal: string): Promise<number>;
  /**
   * The cutoffs of the principal's revocations, oldest first (the latest LOCK_HISTORY; at least the
   * current one, when there is one): what dates each task's revocation (principalRevokedAt).
   */
  principalCutoffs(principal: string): Promise<number[]>;
  /** The principals revoked and still remembered at `now`, with their cutoffs. */
  revokedPrincipals(now: number): Promise<Array<{ principal: string; revokedBefore: number }>>;

  /**
   * Appends one audit event (flat string fields) to a bounded log; returns its id. `audit`: the broker's
   * own decisions; `usage`: what resource servers report, in a log of its own so a chatty one can
   * never push the broker's decisions out of theirs.
   */
  appendAudit(event: Record<string, string>, log?: AuditLog): Promise<string>;
  /** Events of a log after `afterId` (exclusive; '0' or '' from the start), oldest first. */
  readAudit(afterId: string, limit: number, log?: AuditLog): Promise<AuditEntry[]>;

  /**
   * Appends one event to the revocation feed (a stream every replica writes and reads), dropping
   * entries older than `windowMs` before it: older events only concern credentials that have expired.
   * With `once`, only the first append for `once.key` (until `once.until`, ms) is made, atomically
   * across replicas: a later one (concurrent revocations of the same token or serial) answers null.
   */
  appendRevocation(event: Record<string, string>, windowMs: number): Promise<string>;
  appendRevocation(event: Record<string, string>, windowMs: number, once?: OnceKey): Promise<string | null>;
  /** Feed events after `afterId` (exclusive; '' from the oldest retained), oldest first. */
  readRevocations(afterId: string, limit: number): Promise<AuditEntry[]>;
  /**
   * The newest feed id and the highest id ever trimmed ('0-0' for none): a reader whose cursor is below
   * `maxDeleted` may have missed events and must resync.
   */
  revocationCursor(): Promise<{ latest: string; maxDeleted: string }>;
  /** Resolves once an event after `afterId` exists, or after `timeoutMs` (blocks on its own connection). */
  waitRevocations(afterId: string, timeoutMs: number): Promise<void>;
  /** Identities locked right now (a lock outlives the feed's window, so snapshots list them). */
  lockedIdentities(): Promise<Array<{ identity: string } & IdentityState>>;

  /**
   * Certificates. Recording checks the task like `recordIssuance` (one Lua script in the task's slot:
   * the serial joins the task's certificate index and its issued counts), then indexes the serial, its
   * holder and principal for status and CRL queries; those indexes live until `notAfter`.
   * `grant`: the grant's audit event (audit.ts entry), appended to the audit log when the record is
   * 'ok': in the same step on one server and in memory (one call for both), just after it on a Cluster
   * (where a failure to write it fails the call, the record standing: the caller withdraws it).
   * `renewalOf`: the task's own certificate that asked for this one over mTLS: refused
   * ('certificate_revoked', nothing written) once that serial is revoked, else listed among its
   * renewals (`renewals`) in the same step, so revoking it finds this one.
   */
  recordCertificate(rec: CertificateRecord, now: number, expect?: IssuerState, grant?: Record<string, string>, renewalOf?: string): Promise<IssuanceOutcome>;
  /**
   * Whether `recordCertificate` asserts its `expect` atomically (the memory store and a single Redis
   * server; not a Redis Cluster, where the identity's key lies in another hash slot than the task's).
   * Issuers decide on remembered states only where it does.
   */
  readonly assertsIssuerState: boolean;
  getCertificate(serial: string): Promise<CertificateRecord | null>;
  /** Serials of the unexpired certificates recorded in a task. */
  taskCertificates(taskId: string, now: number): Promise<string[]>;
  /**
   * Every serial recorded in a task, expired ones included, as consecutive 20-byte slots (big-endian,
   * left-padded with zeros) in recording order: one binary string for a CRL rebuild (SERIAL_SLOT).
   */
  taskSerialSlots(taskId: string, now: number): Promise<Buffer>;
  /**
   * Unexpired certificates issued to an identity (or acting for a principal) at or before `issuedUpTo`,
   * in whole seconds as a cutoff covers them (issuedUpToCutoff); Infinity for all of them.
   */
  holderCertificates(kind: 'identity' | 'principal', id: string, issuedUpTo: number, now: number): Promise<HeldCertificate[]>;
  /**
   * Revokes one certificate by serial until it expires; its task no longer counts it among its
   * unexpired credentials. False if it already was. It stays in the CRL's per-serial list until
   * `listUntil` (at least its notAfter): its task's deadline, as long as a closed task's piece lists it,
   * so the CRL keeps dating it by this, its first revocation.
   */
  revokeCertificate(rec: CertificateRecord, now: number, listUntil?: number): Promise<boolean>;
  /**
   * A remote store (Redis) tells `listener` once when its connection is lost (with the error that said
   * so, if any) and once when it is back: what an operator's log shows of an outage.
   */
  onAvailability?(listener: (up: boolean, err?: Error) => void): void;
  /** When the serial was revoked by itself (0: it was not). */
  certificateRevokedAt(serial: string): Promise<number>;
  /**
   * The unexpired tokens of `taskId` recorded as attested by its certificate `serial`
   * (IssuanceRecord.attestedBy). Read after `revokeCertificate`, it lists every token that certificate
   * will ever attest: one recorded after the revocation is refused.
   */
  attestedTokens(taskId: string, serial: string, now: number): Promise<AttestedToken[]>;
  /**
   * The unexpired certificates `parent` attested (recordCertificate's `renewalOf`), with their notAfter;
   * read after revoking it, it lists them all. (On a Cluster one may be listed a moment before its record
   * by serial is written, or without it when that write failed.)
   */
  renewals(taskId: string, parent: string, now: number): Promise<Array<{ serial: string; notAfter: number }>>;
  /** Serials revoked one by one and not yet expired. */
  revokedCertificates(now: number): Promise<Array<{ serial: string; revokedAt: number }>>;
  /** Marks a task, identity or principal whose certificates the CRL must list, until `until`. */
  addCrlScope(kind: CrlScope, id: string, until: number): Promise<void>;
  crlScopes(kind: CrlScope, now: number): Promise<string[]>;
  /** A counter bumped by every change the CRL depends on, so a cached CRL knows when it is stale. */
  crlVersion(): Promise<number>;
  bumpCrlVersion(): Promise<number>;
  /**
   * A store that several processes share keeps one built CRL for all of them (ca/crl-service.ts), as
   * step-ca keeps its CRL in its database, per CA (`ca`: an identifier of the CA certificate, so that
   * brokers with different CAs on one store never serve each other's CRL): `getOrClaimCrl` answers the
   * stored CRL when it is for `version` or a later one and was built after `builtAfter`; else claims
   * the build of `version` for `claimMs`, as of `now` ('build'), or answers another process's claim
   * on it ('wait'), with the instant that build is as of (CrlClaim). `putCrl` stores a build unless a
   * later version (or a later build of it) is stored, keeps it `ttlMs`, and releases the claim. Absent
   * on the memory store: one process, nobody to share with.
   */
  getOrClaimCrl?(ca: string, version: number, builtAfter: number, claimMs: number, now: number): Promise<SharedCrl | CrlClaim>;
  putCrl?(ca: string, crl: SharedCrl, ttlMs: number): Promise<void>;

  /** Keeps a join token's record under the SHA-256 of the token (never the token) until it expires. */
  putJoinToken(hash: string, rec: JoinTokenRecord, now: number): Promise<void>;
  /** Takes the record away, atomically: a join token works once, across replicas. Null if unknown, used or expired. */
  takeJoinToken(hash: string, now: number): Promise<JoinTokenRecord | null>;

  /**
   * One-time use: records `key` until `until` and answers true, or answers false when it is already
   * recorded (atomic across replicas: a DPoP proof's jti, RFC 9449 §11.1).
   */
  useOnce(key: string, until: number, now: number): Promise<boolean>;

  /** Resolves when the backend answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A one-time join token: the identity it attests, who made it, until when. */
export interface JoinTokenRecord {
  spiffeId: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
}

/** Bytes per serial in `taskSerialSlots` (RFC 5280 §4.1.2.2: serials are at most 20 octets). */
export const SERIAL_SLOT = 20;

/** Throws unless `hex` is a serial (1-40 hex digits): anything else is a programming error (slots must stay aligned). */
export function checkSlotSerial(hex: string): void {
  if (!/^[0-9a-fA-F]{1,40}$/.test(hex)) throw new TypeError(`not a certificate serial: ${hex.slice(0, 50)}`);
}

/** A serial (hex, 1-40 digits) as one slot. */
export function serialSlot(hex: string): Buffer {
  checkSlotSerial(hex);
  return Buffer.from(hex.padStart(SERIAL_SLOT * 2, '0'), 'hex');
}
