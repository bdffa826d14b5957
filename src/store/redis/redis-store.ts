/**
 * Store on Redis: one server (`url`), or a Redis Cluster (`cluster`: seed node URLs). The key layout
 * is Cluster-safe: every script and transaction touches one hash slot.
 *
 * Key layout (prefix defaults to `mf:`). Every key of a task carries the hash tag `{taskId}` so the
 * task's scripts touch one slot only (Redis Cluster runs a script only if all its keys share a slot):
 *   task:{T}          HASH   record fields, `spec` (JSON lists), `issued`, `purge_at`
 *   task:{T}:creds    ZSET   jti -> exp (ms); the only per-credential data, with the agents counter
 *   task:{T}:agents   HASH   agent SPIFFE ID -> issued count
 *   task:{T}:exp      HASH   `agent|exp|iat` -> count: an agent's tokens by expiry and issuance (what a lock covers)
 *   task:{T}:rj:<jti> STRING revoked-jti marker, expires with the credential
 *   ident:<spiffeId>  HASH   locked, locked_at, revoked_before
 *   prin:<principal>  STRING revoked_before (ms)
 *   principals        ZSET   principal -> until: the revoked ones still remembered
 *   audit             STREAM capped with MAXLEN ~ auditMaxLen: the broker's decisions
 *   usage             STREAM the same cap: what resource servers report (POST /v1/audit/usage)
 *   revocations       STREAM the revocation feed, trimmed by age, exactly (XTRIM MINID)
 *   locked            SET    identities currently locked (for feed snapshots)
 *   task:{T}:certs    ZSET   certificate serial -> notAfter (recorded by the issuance script)
 *   cert:<serial>     HASH   task, agent, obo, iat, exp: status lookups by serial
 *   ident:<id>:certs, prin:<p>:certs  ZSET `serial|iat` -> notAfter: whose certificates a lock/revocation covers
 *   crl:serials, crl:at   ZSET serial -> notAfter, HASH serial -> revokedAt: certificates revoked one by one
 *   crl:scope:<kind>  ZSET   task / identity / principal -> until: whose certificates the CRL lists
 *   crl:version       STRING bumped on every change the CRL depends on
 * Every task key expires at the task's purge instant, so nothing needs a sweeper.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../../errors.js';
import type {
  AttestedToken,
  OnceKey,
  AuditEntry,
  AuditLog,
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
  SharedCrl,
  Store,
  TaskCounts,
  TaskRecord,
  CrlClaim,
} from '../store.js';
import { RECORD_CERTIFICATE_KEYS, RECORD_CERTIFICATES_ALL, SCRIPTS, XADD_MANY, type ScriptName } from './scripts.js';
import { evalNow, evalScript } from './eval-now.js';
import { TurnBatch } from './turn-batch.js';
import { LOCK_HISTORY, certificateExpiryField, certificateKeptUntil, checkSlotSerial, combineIdentities, countRevokedByIdentity, issuedUpToCutoff, serialSlot } from '../store.js';

export interface RedisStoreOptions {
  /** One Redis server (redis:// or rediss://). Exactly one of `url` and `cluster`. */
  url?: string;
  /** A Redis Cluster: the URLs of some of its nodes (the rest are discovered). */
  cluster?: string[];
  /** Key prefix; must not contain `{` or `}` (that would break the per-task hash tags). */
  prefix?: string;
  auditMaxLen?: number;
  /** Connection errors are reported here (never thrown from the event emitter). */
  onError?: (err: Error) => void;
}

type ScriptCall = (...args: (string | number | Buffer)[]) => Promise<unknown>;
// ioredis also defines `<name>Buffer` for every script: the same call, replies as Buffers
type ScriptedRedis = (Redis | Cluster) & Record<ScriptName | `${ScriptName}Buffer`, ScriptCall>;

/** Connection options of one node, from its URL (credentials, TLS, database 0 only in a cluster). */
function nodeFromUrl(u: string): { host: string; port: number; options: RedisOptions } {
  const url = new URL(u);
  const options: RedisOptions = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), options };
}

const COMMAND_TIMEOUT_MS = 1000;
/** Reconnect backoff, for a server and for a cluster: 100 ms doubling, capped at 1 s. */
const backoff = (times: number): number => Math.min(100 * 2 ** Math.min(times - 1, 4), 1000);
/** Audit events per XADD_MANY call (its ARGV stays far below Lua's unpack limit). */
const AUDIT_BATCH_MAX = 256;
/** Certificates per RECORD_CERTIFICATES_ALL call. */
const CERTIFICATE_BATCH_MAX = 64;
/**
 * Left out of ioredis's auto-pipelining: the single-event XADD a TurnBatch sends, which it would write
 * one event-loop turn later (eval-now.ts says why). The batched scripts go through evalNow, which never
 * auto-pipelines. Sending them at once (A/B of 6 interleaved rounds, bench:certs-ab, new keys, before
 * evalNow): mean 6,590 -> 7,063 req/s.
 */
const TURN_BATCHED = ['xadd'];
const RECORD_ALL = evalScript(RECORD_CERTIFICATES_ALL);
const APPEND_MANY = evalScript(XADD_MANY);
const CRL_VERSION_TTL_MS = 7 * 86_400_000;
/** The prefix of a renewal among the members of a certificate's attested zset (scripts.ts LINK_RENEWAL). */
const RENEWAL = 'cert:';
const ISSUANCE_OUTCOMES = new Set<string>(['ok', 'task_unknown', 'task_closed', 'task_expired', 'state_changed', 'certificate_revoked']);
/** A check-and-record script's reply; anything else is a store failure (fail closed). */
function issuanceOutcome(out: unknown): IssuanceOutcome {
  if (typeof out !== 'string' || !ISSUANCE_OUTCOMES.has(out)) throw new StoreUnavailableError(new Error(`unexpected script reply ${String(out)}`));
  return out as IssuanceOutcome;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private readonly auditMaxLen: number;
  private closed = false;
  private lastError: Error | undefined;
  /** A Redis Cluster (scripts stay within one hash slot) rather than one server. */
  private readonly clustered: boolean;
  /** The audit events of one event-loop turn, per log: one XADD_MANY call (appendAudit). */
  private readonly auditBatches = new Map<AuditLog, TurnBatch<string[], string | null>>();
  /** The certificates recorded in one event-loop turn, on one server: one RECORD_CERTIFICATES_ALL call (recordCertificate). */
  private readonly certificateBatch = new TurnBatch<BatchedRecord, unknown>(
    (records) => this.cmd((r) => evalNow(r, RECORD_ALL, recordsArgs(this.logKey('audit'), this.auditMaxLen, records)) as Promise<unknown[]>),
    CERTIFICATE_BATCH_MAX,
  );
  /** A second connection for blocking reads (XREAD BLOCK would stall the shared, pipelined one). */
  private blocking: Redis | Cluster | undefined;

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'mf:';
    if (/[{}]/.test(this.prefix)) throw new TypeError('redis key prefix must not contain { or }');
    this.auditMaxLen = opts.auditMaxLen ?? 100_000;
    // Fail fast instead of queueing: a request must get a 503 within ~1 s, never hang on a dead Redis.
    const fast: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      // Always reconnect (service resumes on its own when Redis returns), backoff capped at 1 s.
      retryStrategy: backoff,
    };
    if ((opts.url === undefined) === (opts.cluster === undefined || opts.cluster.length === 0)) throw new TypeError('RedisStore needs exactly one of url and cluster');
    this.clustered = Boolean(opts.cluster);
    if (opts.cluster) {
      const nodes = opts.cluster.map(nodeFromUrl);
      this.redis = new Cluster(
        nodes.map(({ host, port }) => ({ host, port })),
        {
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: TURN_BATCHED,
          scripts: SCRIPTS,
          clusterRetryStrategy: backoff,
          redisOptions: { ...fast, ...nodes[0]!.options },
        },
      ) as ScriptedRedis;
    } else {
      this.redis = new Redis(opts.url!, { ...fast, enableAutoPipelining: true, autoPipeliningIgnoredCommands: TURN_BATCHED, scripts: SCRIPTS }) as ScriptedRedis;
    }
    // Without a listener a down Redis would crash the process with an unhandled 'error' event.
    this.redis.on('error', (err: Error) => {
      this.lastError = err;
      opts.onError?.(err);
      this.available(false, err);
    });
    // a connection that closes without an error (a Redis shut down cleanly) is an outage too
    this.redis.on('close', () => this.available(false, this.lastError));
    this.redis.on('ready', () => this.available(true));
  }

  /** Whether the store was last seen up (undefined: never connected yet), for the listeners' transitions. */
  private up: boolean | undefined;
  private readonly availability: Array<(up: boolean, err?: Error) => void> = [];
  private available(up: boolean, err?: Error): void {
    const was = this.up;
    this.up = up;
    if (this.closed || was === up || (was === undefined && up)) return;
    for (const l of this.availability) l(up, err);
  }

  onAvailability(listener: (up: boolean, err?: Error) => void): void {
    this.availability.push(listener);
  }

  /** The task inventory: a sorted set of task ids by purge instant (its own key: one slot). */
  private tasksIndexKey(): string {
    return `${this.prefix}tasks`;
  }
  private taskKey(id: string): string {
    return `${this.prefix}task:{${id}}`;
  }
  private credsKey(id: string): string {
    return `${this.taskKey(id)}:creds`;
  }
  private certsKey(id: string): string {
    return `${this.taskKey(id)}:certs`;
  }
  /** The task's certificates revoked by serial (serial -> notAfter): its count of unexpired credentials leaves them out. */
  private revokedCertsKey(id: string): string {
    return `${this.taskKey(id)}:rcerts`;
  }
  /** What the task's certificate `serial` attested: tokens (`jti|iat` -> exp) and renewals (`cert:<serial>` -> notAfter). */
  private attestedKey(id: string, serial: string): string {
    return `${this.taskKey(id)}:att:${serial}`;
  }
  private serialSlotsKey(id: string): string {
    return `${this.taskKey(id)}:serials`;
  }
  private certKey(serial: string): string {
    return `${this.prefix}cert:${serial}`;
  }
  private holderCertsKey(kind: 'identity' | 'principal', id: string): string {
    return kind === 'identity' ? `${this.identKey(id)}:certs` : `${this.prinKey(id)}:certs`;
  }
  private joinKey(hash: string): string {
    return `${this.prefix}join:${hash}`;
  }
  private onceKey(key: string): string {
    return `${this.prefix}once:${key}`;
  }
  private crlKey(part: string): string {
    return `${this.prefix}crl:${part}`;
  }
  /** How many of each agent's credentials were issued and expire at each pair of instants (`agent|exp|iat` -> count). */
  private expiriesKey(id: string): string {
    return `${this.taskKey(id)}:exp`;
  }
  private agentsKey(id: string): string {
    return `${this.taskKey(id)}:agents`;
  }
  private jtiKey(id: string, jti: string): string {
    return `${this.taskKey(id)}:rj:${jti}`;
  }
  private identKey(spiffeId: string): string {
    return `${this.prefix}ident:${spiffeId}`;
  }
  private prinKey(principal: string): string {
    return `${this.prefix}prin:${principal}`;
  }
  /** A principal's revocation cutoffs: a sorted set, each cutoff its own score. */
  private prinCutoffsKey(principal: string): string {
    return `${this.prefix}prin-cutoffs:${principal}`;
  }
  private logKey(log: AuditLog): string {
    return log === 'usage' ? `${this.prefix}usage` : this.auditKey;
  }
  private get auditKey(): string {
    return `${this.prefix}audit`;
  }
  private get revocationsKey(): string {
    return `${this.prefix}revocations`;
  }
  /** A feed event's once-marker, in the stream's hash slot (its whole name as the hash tag). */
  private feedOnceKey(key: string): string {
    return `{${this.revocationsKey}}:once:${key}`;
  }
  /** The revoked principals, by how long each is remembered (one key: the index behind GET /v1/principals). */
  private get principalsKey(): string {
    return `${this.prefix}principals`;
  }
  private get lockedKey(): string {
    return `${this.prefix}locked`;
  }

  /**
   * With the offline queue off, commands sent before the connection is ready fail at once. Wait (at
   * most one command timeout) only while a connection attempt is in flight; otherwise fail fast.
   */
  private async ready(): Promise<void> {
    const r = this.redis;
    if (r.status === 'ready') return;
    if (this.closed || r.status === 'end') throw new StoreUnavailableError(new Error('store closed'));
    if (r.status !== 'connecting' && r.status !== 'connect' && r.status !== 'wait') {
      throw new StoreUnavailableError(this.lastError ?? new Error(`redis ${r.status}`));
    }
    if (r.status === 'wait') r.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        r.off('ready', onReady);
        r.off('close', onClose);
        if (err) reject(new StoreUnavailableError(err));
        else resolve();
      };
      const onReady = (): void => done();
      const onClose = (): void => done(this.lastError ?? new Error('redis connection closed'));
      const timer = setTimeout(() => done(new Error('redis not ready')), COMMAND_TIMEOUT_MS);
      r.once('ready', onReady);
      r.once('close', onClose);
    });
  }

  /** Every backend call goes through here: any failure surfaces as StoreUnavailableError (fail closed). */
  private async cmd<T>(fn: (r: ScriptedRedis) => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') await this.ready(); // (no extra await per call once connected)
    let out: T;
    try {
      out = await fn(this.redis);
    } catch (err) {
      // a Redis that hangs (connected, answering nothing) is an outage the connection events may never tell
      if (err instanceof Error && err.message === 'Command timed out') this.available(false, err);
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
    }
    if (this.up === false) this.available(true); // answering again (over the same connection)
    return out;
  }

  async createTask(task: TaskRecord, purgeAt: number): Promise<void> {
    const id = task.id;
    // the inventory entry first (a separate key, so no cross-slot transaction): an entry whose task
    // was never written is skipped when listed and pruned at its purge instant
    await this.cmd((r) => r.mfIndexAdd(this.tasksIndexKey(), Date.now(), purgeAt, id));
    const results = await this.cmd((r) =>
      r
        .multi()
        .del(this.taskKey(id), this.credsKey(id), this.agentsKey(id))
        .hset(this.taskKey(id), encodeTask(task, purgeAt))
        .pexpireat(this.taskKey(id), purgeAt)
        .exec(),
    );
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new StoreUnavailableError(failed?.[0] ?? new Error('transaction aborted'));
  }

  async listTasks(now: number, offset: number, limit: number): Promise<{ ids: string[]; total: number }> {
    const k = this.tasksIndexKey();
    const res = await this.cmd((r) => r.multi().zremrangebyscore(k, '-inf', now).zrevrange(k, offset, offset + limit - 1).zcard(k).exec());
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw new StoreUnavailableError(failed?.[0] ?? new Error('transaction aborted'));
    return { ids: res[1]![1] as string[], total: res[2]![1] as number };
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const h = await this.cmd((r) => r.hgetall(this.taskKey(id)));
    return decodeTask(h);
  }

  async taskCounts(id: string, now: number): Promise<TaskCounts> {
    const live = `(${now}`;
    const [issued, tokens, certs, revokedCerts, agents] = await this.cmd((r) =>
      Promise.all([
        r.hget(this.taskKey(id), 'issued'),
        r.zcount(this.credsKey(id), live, '+inf'),
        r.zcount(this.certsKey(id), live, '+inf'),
        r.zcount(this.revokedCertsKey(id), live, '+inf'),
        r.hgetall(this.agentsKey(id)),
      ]),
    );
    const byAgent: Record<string, number> = {};
    for (const [agent, n] of Object.entries(agents)) byAgent[agent] = Number(n);
    return { issued: Number(issued ?? 0), unexpired: tokens + Math.max(0, certs - revokedCerts), byAgent };
  }

  async recordIssuance(rec: IssuanceRecord, now: number): Promise<IssuanceOutcome> {
    const t = rec.taskId;
    const keys = [this.taskKey(t), this.credsKey(t), this.agentsKey(t), this.expiriesKey(t)] as const;
    const args = [now, rec.jti, rec.exp, rec.agent, rec.iat ?? now] as const;
    const by = rec.attestedBy;
    const out = await this.cmd((r) =>
      by === undefined ? r.mfRecordIssuance(...keys, ...args) : r.mfRecordAttestedIssuance(...keys, this.revokedCertsKey(t), this.attestedKey(t, by), ...args, by),
    );
    return issuanceOutcome(out);
  }

  async closeTask(id: string, now: number, reason: string): Promise<CloseOutcome | null> {
    const out = await this.cmd((r) => r.mfCloseTask(this.taskKey(id), this.credsKey(id), this.certsKey(id), this.revokedCertsKey(id), now, reason));
    if (out === null) return null;
    const [already, revoked, flat] = out as [number, number, string[]];
    const record = decodeTask(pairs(flat));
    if (!record) throw new StoreUnavailableError(new Error('closed task vanished'));
    return { record, revoked: Number(revoked), alreadyClosed: already === 1 };
  }

  async revokeJti(taskId: string, jti: string, exp: number, now: number, agent: string, iat: number): Promise<boolean> {
    const out = await this.cmd((r) =>
      r.mfRevokeJti(this.taskKey(taskId), this.credsKey(taskId), this.jtiKey(taskId, jti), this.expiriesKey(taskId), jti, exp, now, agent, iat),
    );
    return out === 1;
  }

  async revokedByIdentity(taskId: string, cutoffs: Readonly<Record<string, number>>, now: number): Promise<Record<string, number>> {
    const all = await this.cmd((r) => r.hgetall(this.expiriesKey(taskId)));
    return countRevokedByIdentity(Object.entries(all).map(([f, n]) => [f, Number(n)]), cutoffs, now);
  }

  /** Independent commands in different slots, sent together by auto-pipelining: one round trip. */
  async facts(q: FactsQuery): Promise<CredentialFacts> {
    const jtis = [...(q.jti === undefined ? [] : [q.jti]), ...(q.lineage?.jtis ?? [])];
    const idents = [q.identity, ...(q.lineage?.identities ?? [])];
    const [task, marker, prin, ...identRows] = await this.cmd((r) =>
      Promise.all([
        r.hmget(this.taskKey(q.taskId), 'state', 'expires_at', 'created_at', 'obo'),
        // the markers all live in the task's slot: one EXISTS counts them
        jtis.length === 0 ? Promise.resolve(0) : r.exists(...jtis.map((j) => this.jtiKey(q.taskId, j))),
        q.principal === undefined ? Promise.resolve(null) : r.get(this.prinKey(q.principal)),
        ...idents.map((i) => r.hmget(this.identKey(i), ...IDENTITY_FIELDS)),
      ]),
    );
    const [state, expiresAt, createdAt, obo] = task;
    return {
      task:
        state == null
          ? null
          : {
              state: state === 'open' ? 'open' : 'closed',
              expiresAt: Number(expiresAt),
              createdAt: Number(createdAt),
              ...(obo != null ? { onBehalfOf: obo } : {}),
            },
      jtiRevoked: marker > 0,
      identity: combineIdentities(identRows.map(identityFrom)),
      principalRevokedBefore: Number(prin ?? 0),
    };
  }

  async lockIdentity(identity: string, now: number): Promise<IdentityState> {
    // listed as locked before the lock itself: a failure in between errs on the closed side
    await this.cmd((r) => r.sadd(this.lockedKey, identity));
    const out = await this.cmd((r) => r.mfLockIdentity(this.identKey(identity), now));
    const [lockedAt, rb] = out as [string, string];
    return { locked: true, lockedAt: Number(lockedAt), revokedBefore: Number(rb) };
  }

  async unlockIdentity(identity: string, now: number, retainUntil: number): Promise<IdentityState> {
    const rb = await this.cmd((r) => r.mfUnlockIdentity(this.identKey(identity), now, retainUntil));
    await this.cmd((r) => r.srem(this.lockedKey, identity));
    return { locked: false, revokedBefore: Number(rb ?? 0) };
  }

  async identityState(identity: string): Promise<IdentityState> {
    return identityFrom(await this.cmd((r) => r.hmget(this.identKey(identity), ...IDENTITY_FIELDS)));
  }

  async revokePrincipal(principal: string, now: number, retainUntil: number): Promise<number> {
    const key = this.prinCutoffsKey(principal);
    if (!this.clustered) {
      // one server: the cutoff, its history and the index in one atomic call (scripts.ts)
      const v = await this.cmd((r) => r.mfRevokePrincipalAll(this.prinKey(principal), key, this.principalsKey, now, Math.ceil(retainUntil), Date.now(), principal, LOCK_HISTORY));
      return Number(v);
    }
    const [v] = await this.cmd((r) =>
      Promise.all([r.mfRevokePrincipal(this.prinKey(principal), now, retainUntil), r.mfIndexAdd(this.principalsKey, Date.now(), retainUntil, principal)]),
    );
    // a Cluster: its history after the cutoff itself (a key of its own, another slot); lost with a
    // crash in between, a revocation is dated by the latest cutoff instead
    await this.cmd((r) => Promise.all([r.zadd(key, Number(v), String(v)), r.zremrangebyrank(key, 0, String(-(LOCK_HISTORY + 1))), r.pexpireat(key, Math.ceil(retainUntil))]));
    return Number(v);
  }

  async principalCutoffs(principal: string): Promise<number[]> {
    const [history, current] = await this.cmd((r) => Promise.all([r.zrange(this.prinCutoffsKey(principal), '0', '-1'), r.get(this.prinKey(principal))]));
    const cutoffs = history.map(Number).sort((a, b) => a - b);
    const now = Number(current ?? 0);
    return now > 0 && !cutoffs.includes(now) ? [...cutoffs.filter((c) => c < now), now] : cutoffs;
  }

  async revokedPrincipals(now: number): Promise<Array<{ principal: string; revokedBefore: number }>> {
    const ids = await this.cmd((r) => r.zrangebyscore(this.principalsKey, `(${now}`, '+inf'));
    const cutoffs = await this.cmd((r) => Promise.all(ids.map((p) => r.get(this.prinKey(p)))));
    return ids.flatMap((principal, i) => (cutoffs[i] ? [{ principal, revokedBefore: Number(cutoffs[i]) }] : []));
  }

  async principalRevokedBefore(principal: string): Promise<number> {
    const v = await this.cmd((r) => r.get(this.prinKey(principal)));
    return Number(v ?? 0);
  }

  /**
   * Appends to a capped audit stream. The events of one event-loop turn (one per grant or denial,
   * from every request in flight) go in one call, in order (XADD_MANY); each caller's promise settles
   * with its own id once that call has, so `await` still means "written".
   */
  appendAudit(event: Record<string, string>, log: AuditLog = 'audit'): Promise<string> {
    const fields = fieldsOf(event);
    if (fields.length === 0) return Promise.reject(new TypeError('an audit event needs at least one field'));
    let batch = this.auditBatches.get(log);
    if (!batch) {
      const key = this.logKey(log);
      batch = new TurnBatch((events) =>
        events.length === 1
          ? this.cmd((r) => r.xadd(key, 'MAXLEN', '~', this.auditMaxLen, '*', ...events[0]!)).then((id) => [id])
          : (this.cmd((r) => evalNow(r, APPEND_MANY, pushEvents([1, key, this.auditMaxLen], events))) as Promise<(string | null)[]>),
      AUDIT_BATCH_MAX);
      this.auditBatches.set(log, batch);
    }
    return batch.add(fields).then((id) => {
      if (id == null) throw new StoreUnavailableError(new Error('XADD returned no id'));
      return id;
    });
  }

  async readAudit(afterId: string, limit: number, log: AuditLog = 'audit'): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    const start = afterId === '' || afterId === '0' ? '-' : idAfter(afterId);
    const rows = await this.cmd((r) => r.xrange(this.logKey(log), start, '+', 'COUNT', limit));
    return rows.map(([id, flat]) => ({ id, event: pairs(flat) }));
  }

  appendRevocation(event: Record<string, string>, windowMs: number): Promise<string>;
  appendRevocation(event: Record<string, string>, windowMs: number, once?: OnceKey): Promise<string | null>;
  async appendRevocation(event: Record<string, string>, windowMs: number, once?: OnceKey): Promise<string | null> {
    const fields = Object.entries(event).flat();
    if (fields.length === 0) throw new TypeError('a revocation event needs at least one field');
    const window = Math.max(0, Math.floor(windowMs));
    const id = await this.cmd((r) =>
      once
        ? r.mfAppendFeedOnce(this.revocationsKey, this.feedOnceKey(once.key), Math.max(1, Math.ceil(once.until - Date.now())), window, ...fields)
        : r.mfAppendFeed(this.revocationsKey, window, ...fields),
    );
    if (once && id === null) return null;
    if (typeof id !== 'string') throw new StoreUnavailableError(new Error('feed append returned no id'));
    return id;
  }

  async readRevocations(afterId: string, limit: number): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    const start = afterId === '' || afterId === '0' ? '-' : idAfter(afterId);
    const rows = await this.cmd((r) => r.xrange(this.revocationsKey, start, '+', 'COUNT', limit));
    return rows.map(([id, flat]) => ({ id, event: pairs(flat) }));
  }

  /**
   * From XINFO STREAM: entries are only ever trimmed from the head, so when any were removed
   * (entries-added > length) everything before the first entry left may be gone. (Redis 7.0 does not
   * count trimming in max-deleted-entry-id, hence this derivation.)
   */
  async revocationCursor(): Promise<{ latest: string; maxDeleted: string }> {
    const info = await this.cmd(async (r) => {
      try {
        return (await r.xinfo('STREAM', this.revocationsKey)) as unknown[];
      } catch (e) {
        if (/no such key/i.test((e as Error).message)) return [];
        throw e;
      }
    });
    const field = (name: string): unknown => {
      const i = info.indexOf(name);
      return i >= 0 ? info[i + 1] : undefined;
    };
    const latest = String(field('last-generated-id') ?? '0-0');
    const removed = Number(field('entries-added') ?? 0) - Number(field('length') ?? 0);
    if (removed <= 0) return { latest, maxDeleted: '0-0' };
    const first = field('first-entry') as [string, string[]] | null | undefined;
    return { latest, maxDeleted: first ? idBefore(first[0]) : latest };
  }

  async waitRevocations(afterId: string, timeoutMs: number): Promise<void> {
    await this.ready();
    if (!this.blocking) {
      const blockingOpts = { enableAutoPipelining: false, commandTimeout: timeoutMs + 2000, enableOfflineQueue: true };
      this.blocking =
        this.redis instanceof Cluster
          ? this.redis.duplicate(undefined, { enableOfflineQueue: true, enableAutoPipelining: false, redisOptions: { ...this.redis.options.redisOptions, commandTimeout: timeoutMs + 2000 } })
          : this.redis.duplicate(blockingOpts);
      this.blocking.on('error', (err: Error) => (this.lastError = err));
    }
    try {
      await this.blocking.xread('COUNT', 1, 'BLOCK', Math.max(1, Math.floor(timeoutMs)), 'STREAMS', this.revocationsKey, afterId === '' ? '0-0' : afterId);
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  async lockedIdentities(): Promise<Array<{ identity: string } & IdentityState>> {
    const ids = await this.cmd((r) => r.smembers(this.lockedKey));
    const states = await this.cmd((r) => Promise.all(ids.map((i) => r.hmget(this.identKey(i), ...IDENTITY_FIELDS))));
    return ids
      .map((identity, i) => ({ identity, ...identityFrom(states[i]!) }))
      .filter((s) => s.locked);
  }

  /** One server asserts the issuer's states in its record script; a Cluster cannot (other hash slots). */
  get assertsIssuerState(): boolean {
    return !this.clustered;
  }

  async recordCertificate(rec: CertificateRecord, now: number, expect?: IssuerState, grant?: Record<string, string>, renewalOf?: string): Promise<IssuanceOutcome> {
    checkSlotSerial(rec.serial); // the record scripts make its slot
    const t = rec.taskId;
    // a renewal is refused once its parent is revoked, else listed among the parent's (RECORD_CERTIFICATE's renewalRefused, link_renewal)
    const renewalKey = renewalOf ? this.attestedKey(t, renewalOf) : this.revokedCertsKey(t);
    const identityIndex = this.holderCertsKey('identity', rec.agent);
    if (!this.clustered) {
      // one server: everything in one atomic call (on a Cluster the keys span slots: the steps below)
      const principalIndex = rec.principal ? this.holderCertsKey('principal', rec.principal) : identityIndex;
      if (expect && expect.principal !== rec.principal) throw new TypeError('the expected principal is not the record\'s');
      const identKey = this.identKey(expect?.identity ?? rec.agent);
      // the record's fields, its kept-until instant and the index member are made by the script (scripts.ts)
      // with the other certificates recorded in this event-loop turn, and the grants, in one call (RECORD_CERTIFICATES_ALL)
      const out = await this.certificateBatch.add({
        call: [
          this.taskKey(t), this.certsKey(t), this.agentsKey(t), this.serialSlotsKey(t), this.certKey(rec.serial), identityIndex, principalIndex,
          identKey, rec.principal ? this.prinKey(rec.principal) : identKey, this.expiriesKey(t), this.revokedCertsKey(t), renewalKey,
          now, rec.serial, rec.notAfter, rec.agent, rec.issuedAt, t, rec.principal ?? '',
          expect ? String(expect.revokedBefore) : '-', expect ? String(expect.principalCutoff) : '-', renewalOf ?? '',
        ],
        grant: grant ? fieldsOf(grant) : [],
      });
      return issuanceOutcome(out);
    }
    const out = await this.cmd((r) =>
      r.mfRecordCertificate(
        this.taskKey(t), this.certsKey(t), this.agentsKey(t), this.serialSlotsKey(t), this.expiriesKey(t), this.revokedCertsKey(t), renewalKey,
        now, rec.serial, rec.notAfter, rec.agent, rec.issuedAt, renewalOf ?? '',
      ),
    );
    const outcome = issuanceOutcome(out);
    if (outcome !== 'ok') return outcome;
    const fields = ['task', t, 'agent', rec.agent, 'iat', String(rec.issuedAt), 'exp', String(rec.notAfter)];
    if (rec.principal) fields.push('obo', rec.principal);
    if (renewalOf) fields.push('parent', renewalOf);
    const member = `${rec.serial}|${rec.issuedAt}`;
    // one single-key script per key (each in its own hash slot, so Cluster-safe), sent together in one
    // write by auto-pipelining: the record by serial, and the holder indexes that lock/principal revocation expand
    await this.cmd((r) => {
      const writes = [r.mfPutCertificate(this.certKey(rec.serial), certificateKeptUntil(rec), ...fields), r.mfIndexAdd(identityIndex, now, rec.notAfter, member)];
      if (rec.principal) writes.push(r.mfIndexAdd(this.holderCertsKey('principal', rec.principal), now, rec.notAfter, member));
      return Promise.all(writes);
    });
    if (grant) await this.appendAudit(grant);
    return 'ok';
  }

  async getCertificate(serial: string): Promise<CertificateRecord | null> {
    const h = await this.cmd((r) => r.hgetall(this.certKey(serial)));
    if (h.task === undefined) return null;
    return {
      serial,
      taskId: h.task,
      agent: h.agent ?? '',
      ...(h.obo ? { principal: h.obo } : {}),
      issuedAt: Number(h.iat),
      notAfter: Number(h.exp),
      ...(h.parent ? { renewalOf: h.parent } : {}),
    };
  }

  async taskCertificates(taskId: string, now: number): Promise<string[]> {
    return this.cmd((r) => r.zrangebyscore(this.certsKey(taskId), `(${now}`, '+inf'));
  }

  /** One GET of a binary string (a ZRANGE of 10,000 members costs ~30 ms in ioredis replies alone). */
  async taskSerialSlots(taskId: string, now: number): Promise<Buffer> {
    const slots = await this.cmd((r) => r.getBuffer(this.serialSlotsKey(taskId)));
    if (slots && slots.length) return slots;
    // recorded before the slots existed: from the index
    return Buffer.concat((await this.taskCertificates(taskId, now)).map(serialSlot));
  }

  async holderCertificates(kind: 'identity' | 'principal', id: string, issuedUpTo: number, now: number): Promise<HeldCertificate[]> {
    const flat = await this.cmd((r) => r.zrangebyscore(this.holderCertsKey(kind, id), `(${now}`, '+inf', 'WITHSCORES'));
    const out: HeldCertificate[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [serial, iat] = flat[i]!.split('|');
      const issuedAt = Number(iat);
      if (issuedUpToCutoff(issuedAt, issuedUpTo)) out.push({ serial: serial!, notAfter: Number(flat[i + 1]), issuedAt });
    }
    return out;
  }

  async revokeCertificate(rec: CertificateRecord, now: number, listUntil = rec.notAfter): Promise<boolean> {
    const { serial, notAfter, taskId: t } = rec;
    if (notAfter <= now) return false;
    const until = Math.max(notAfter, listUntil);
    const [added] = await this.cmd((r) =>
      Promise.all([
        r.mfHsetnxUntil(this.crlKey('at'), Date.now(), until, serial, String(now)),
        r.mfIndexAdd(this.crlKey('serials'), Date.now(), until, serial),
        // also in the certificate's record, which outlives the certificate: its status still says
        // revoked once it has expired and left the CRL's indexes
        r.mfHsetnxIfExists(this.certKey(serial), 'revoked_at', String(now)),
        r.mfRevokeTaskCertificate(this.taskKey(t), this.certsKey(t), this.revokedCertsKey(t), this.expiriesKey(t), serial, notAfter, now, certificateExpiryField(rec)),
        this.bump(r),
      ]),
    );
    return added === 1;
  }

  async certificateRevokedAt(serial: string): Promise<number> {
    const [own, indexed] = await this.cmd((r) => Promise.all([r.hget(this.certKey(serial), 'revoked_at'), r.hget(this.crlKey('at'), serial)]));
    return Number(own ?? indexed ?? 0);
  }

  async attestedTokens(taskId: string, serial: string, now: number): Promise<AttestedToken[]> {
    const flat = await this.cmd((r) => r.zrangebyscore(this.attestedKey(taskId, serial), `(${now}`, '+inf', 'WITHSCORES'));
    const out: AttestedToken[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const m = flat[i]!;
      if (m.startsWith(RENEWAL)) continue; // a certificate it renewed (renewals)
      const bar = m.lastIndexOf('|');
      out.push({ jti: m.slice(0, bar), iat: Number(m.slice(bar + 1)), exp: Number(flat[i + 1]) });
    }
    return out;
  }

  async renewals(taskId: string, parent: string, now: number): Promise<Array<{ serial: string; notAfter: number }>> {
    const flat = await this.cmd((r) => r.zrangebyscore(this.attestedKey(taskId, parent), `(${now}`, '+inf', 'WITHSCORES'));
    const out: Array<{ serial: string; notAfter: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i]!.startsWith(RENEWAL)) out.push({ serial: flat[i]!.slice(RENEWAL.length), notAfter: Number(flat[i + 1]) });
    return out;
  }

  /** One round trip (a CRL build waits on it); the expired ones are then pruned, when there are any. */
  async revokedCertificates(now: number): Promise<Array<{ serial: string; revokedAt: number }>> {
    const [expired, serials, at] = await this.cmd((r) =>
      Promise.all([r.zrangebyscore(this.crlKey('serials'), '-inf', now), r.zrangebyscore(this.crlKey('serials'), `(${now}`, '+inf'), r.hgetall(this.crlKey('at'))]),
    );
    if (expired.length) await this.cmd((r) => Promise.all([r.zrem(this.crlKey('serials'), ...expired), r.hdel(this.crlKey('at'), ...expired)]));
    return serials.map((serial) => ({ serial, revokedAt: Number(at[serial] ?? now) }));
  }

  async addCrlScope(kind: CrlScope, id: string, until: number): Promise<void> {
    await this.cmd((r) => Promise.all([r.mfIndexAdd(this.crlKey(`scope:${kind}`), Date.now(), until, id), this.bump(r)]));
  }

  async crlScopes(kind: CrlScope, now: number): Promise<string[]> {
    const k = this.crlKey(`scope:${kind}`);
    const [, ids] = await this.cmd((r) => Promise.all([r.zremrangebyscore(k, '-inf', now), r.zrangebyscore(k, `(${now}`, '+inf')]));
    return ids;
  }

  /**
   * Read with GETEX, which also extends the counter's life: it outlives everything built from it (the
   * processes' cached CRLs and the shared one, which only readers write), so it can never expire and
   * count up again to a number a stale CRL was built for.
   */
  async crlVersion(): Promise<number> {
    return Number((await this.cmd((r) => r.getex(this.crlKey('version'), 'PX', CRL_VERSION_TTL_MS))) ?? 0);
  }

  async bumpCrlVersion(): Promise<number> {
    return this.cmd((r) => this.bump(r));
  }

  /** One CRL per CA for every process: the shared build (a hash) and its build claim, under one hash tag (one Cluster slot). */
  private sharedCrlKeys(ca: string): [string, string] {
    if (!/^[0-9a-f]{1,64}$/.test(ca)) throw new TypeError('the CA identifier must be 1-64 lowercase hex digits');
    return [`${this.prefix}{crl}:built:${ca}`, `${this.prefix}{crl}:claim:${ca}`];
  }

  async getOrClaimCrl(ca: string, version: number, builtAfter: number, claimMs: number, now: number): Promise<SharedCrl | CrlClaim> {
    const [built, claim] = this.sharedCrlKeys(ca);
    const out = (await this.cmd((r) => r.mfGetOrClaimCrlBuffer(built, claim, version, builtAfter, claimMs, Math.floor(now)))) as Buffer[];
    const kind = out[0]?.toString('latin1');
    const n = (b: Buffer | undefined) => Number(b?.toString('latin1'));
    if ((kind === 'build' || kind === 'wait') && out.length === 3) return { claim: kind, at: n(out[1]), previousAt: n(out[2]) };
    if (kind !== 'crl' || out.length !== 5) throw new StoreUnavailableError(new Error('unexpected reply for the shared CRL'));
    return { der: out[1]!, version: n(out[2]), builtAt: n(out[3]), previousAt: n(out[4]) };
  }

  async putCrl(ca: string, crl: SharedCrl, ttlMs: number): Promise<void> {
    const [built, claim] = this.sharedCrlKeys(ca);
    // never outliving the version counter (which its readers keep alive, see crlVersion)
    const ttl = Math.max(1, Math.min(Math.ceil(ttlMs), CRL_VERSION_TTL_MS));
    await this.cmd((r) => r.mfPutCrl(built, claim, crl.version, crl.builtAt, ttl, crl.der));
  }

  /** The CRL version counter; each change (and each read, see crlVersion) gives it another week. */
  private async bump(r: ScriptedRedis): Promise<number> {
    const [v] = await Promise.all([r.incr(this.crlKey('version')), r.pexpire(this.crlKey('version'), CRL_VERSION_TTL_MS)]);
    return v;
  }

  async putJoinToken(hash: string, rec: JoinTokenRecord, now: number): Promise<void> {
    await this.cmd((r) => r.set(this.joinKey(hash), JSON.stringify(rec), 'PX', Math.max(1, rec.expiresAt - now)));
  }

  async takeJoinToken(hash: string, now: number): Promise<JoinTokenRecord | null> {
    const v = await this.cmd((r) => r.getdel(this.joinKey(hash)));
    if (v === null) return null;
    const rec = JSON.parse(v) as JoinTokenRecord;
    return rec.expiresAt > now ? rec : null;
  }

  async useOnce(key: string, until: number, now: number): Promise<boolean> {
    const ok = await this.cmd((r) => r.set(this.onceKey(key), '1', 'PX', Math.max(1, Math.ceil(until - now)), 'NX'));
    return ok === 'OK';
  }

  async ping(): Promise<void> {
    await this.cmd((r) => r.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
    } catch {
      // quitting a broken connection: disconnect below is enough
    } finally {
      this.redis.disconnect();
      this.blocking?.disconnect();
    }
  }
}

/** The smallest stream id strictly after `id` (exclusive XRANGE starts need Redis 6.2; this works on 6.0). */
function idAfter(id: string): string {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) throw new TypeError(`invalid audit id: ${id}`);
  return `${m[1]}-${BigInt(m[2] ?? '0') + 1n}`;
}

/** The largest stream id strictly before `id`. */
function idBefore(id: string): string {
  const [ms, seq] = id.split('-').map((x) => BigInt(x)) as [bigint, bigint];
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`;
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** Events as XADD_MANY and RECORD_CERTIFICATES_ALL take them, onto `out`: each one's field count, then its fields. */
function pushEvents(out: Array<string | number>, events: Iterable<readonly string[]>): Array<string | number> {
  for (const fields of events) {
    out.push(fields.length);
    for (const f of fields) out.push(f);
  }
  return out;
}

/** An event's fields as XADD takes them (loops, not Object.entries().flat(): V8's flat() costs ~0.15 µs per element, and this runs per grant). */
function fieldsOf(event: Record<string, string>): string[] {
  const fields: string[] = [];
  for (const k in event) fields.push(k, event[k]!);
  return fields;
}

/** One certificate in RECORD_CERTIFICATES_ALL: its keys then its arguments, and its grant's event fields (none: empty). */
interface BatchedRecord {
  call: Array<string | number>;
  grant: string[];
}

/**
 * RECORD_CERTIFICATES_ALL's arguments: the key count, the audit stream and every record's keys, then
 * the stream's MAXLEN, every record's arguments, and every record's event (field count, fields).
 */
function recordsArgs(auditKey: string, maxLen: number, records: readonly BatchedRecord[]): Array<string | number> {
  const out: Array<string | number> = [1 + records.length * RECORD_CERTIFICATE_KEYS, auditKey];
  for (const r of records) for (let i = 0; i < RECORD_CERTIFICATE_KEYS; i++) out.push(r.call[i]!);
  out.push(maxLen);
  for (const r of records) for (let i = RECORD_CERTIFICATE_KEYS; i < r.call.length; i++) out.push(r.call[i]!);
  return pushEvents(out, records.map((r) => r.grant));
}

/** An identity's hash fields, as identityFrom reads them (one HMGET). */
const IDENTITY_FIELDS = ['locked', 'locked_at', 'revoked_before', 'locks'] as const;

function identityFrom([locked, lockedAt, rb, locks]: ReadonlyArray<string | null | undefined>): IdentityState {
  const isLocked = locked === '1';
  return {
    locked: isLocked,
    ...(isLocked && lockedAt != null ? { lockedAt: Number(lockedAt) } : {}),
    revokedBefore: Number(rb ?? 0),
    ...(locks ? { locks: locks.split(' ').map(Number) } : {}),
  };
}

interface Spec {
  agents: string[];
  scopes: string[];
  tools: string[];
  audiences: string[];
  purpose?: string;
}

/** The lists travel as one JSON field: the record is written once and read rarely. */
function encodeTask(t: TaskRecord, purgeAt: number): Record<string, string> {
  const spec: Spec = { agents: t.agents, scopes: t.scopes, tools: t.tools, audiences: t.audiences };
  if (t.purpose !== undefined) spec.purpose = t.purpose;
  const h: Record<string, string> = {
    id: t.id,
    state: t.state,
    opened_by: t.openedBy,
    created_at: String(t.createdAt),
    expires_at: String(t.expiresAt),
    purge_at: String(purgeAt),
    spec: JSON.stringify(spec),
    issued: '0',
  };
  if (t.onBehalfOf !== undefined) h.obo = t.onBehalfOf;
  if (t.closedAt !== undefined) h.closed_at = String(t.closedAt);
  if (t.closeReason !== undefined) h.close_reason = t.closeReason;
  if (t.revokedAtClose !== undefined) h.revoked_at_close = String(t.revokedAtClose);
  return h;
}

function decodeTask(h: Record<string, string>): TaskRecord | null {
  if (h.state === undefined || h.id === undefined) return null;
  const spec = JSON.parse(h.spec ?? '{}') as Partial<Spec>;
  const rec: TaskRecord = {
    id: h.id,
    state: h.state === 'open' ? 'open' : 'closed',
    openedBy: h.opened_by ?? '',
    createdAt: Number(h.created_at),
    expiresAt: Number(h.expires_at),
    agents: spec.agents ?? [],
    scopes: spec.scopes ?? [],
    tools: spec.tools ?? [],
    audiences: spec.audiences ?? [],
  };
  if (spec.purpose !== undefined) rec.purpose = spec.purpose;
  if (h.obo !== undefined) rec.onBehalfOf = h.obo;
  if (h.closed_at !== undefined) rec.closedAt = Number(h.closed_at);
  if (h.close_reason !== undefined) rec.closeReason = h.close_reason;
  if (h.revoked_at_close !== undefined) rec.revokedAtClose = Number(h.revoked_at_close);
  return rec;
}
