/**
 * The CRL (RFC 5280 §5): every unexpired certificate revoked by serial, covered by a locked identity or
 * a revoked principal, and every certificate of a closed task until the task's deadline (by which all
 * of them have expired; RFC 5280 §5.1.2.6 wants an entry on at least one CRL past the expiry anyway). Built from the store's CRL indexes, cached, and rebuilt only
 * when the store's CRL version moves or the cached one is half-way to its nextUpdate; concurrent
 * fetches share one build. Closing a task only adds it to an index (O(1)); its serials are expanded here.
 *
 * Shared: on a store several processes share (Redis), one process builds the CRL of each version and
 * stores it; the others take that one when they refresh after the revocation's feed event, so N
 * replicas cost one build and serve the same CRL (a fetch racing the build builds it too, as of the same
 * instant: the same CRL number, thisUpdate and entries).
 *
 * Incremental: what a closed task, an identity lock or a principal revocation covers never changes
 * (a closed task takes no new certificates; a cutoff covers certificates issued before it), so each
 * such scope is read from the store and encoded into CRL entries once per process, then reused by
 * every later rebuild until its certificates have all expired. A rebuild after one more revocation
 * re-encodes only the new scope and the per-serial revocations, then signs. Each serial is listed once:
 * a serial both revoked on its own and covered by a scope is listed with the scope's time.
 */
import { hash, randomBytes } from 'node:crypto';
import type { Broker } from '../broker.js';
import type { FeedHub } from '../feed/hub.js';
import { identityRevokedAt, principalRevokedAt, SERIAL_SLOT, serialSlot, type HeldCertificate, type IdentityState } from '../store/store.js';
import { buildCrl, encodeCrlEntries, encodeRevokedSlots, serialKey, type CrlEntry } from '../x509/index.js';

interface Cached {
  der: Buffer;
  version: number;
  builtAt: number;
  /**
   * When the CRL it replaced was built (0: none; its own builtAt while unknown). In the same second, a
   * client's If-Modified-Since cannot tell the two apart (HTTP dates are whole seconds).
   */
  previousAt: number;
}

/** One scope's entries, encoded once. */
interface Piece {
  der: Buffer;
  /** Its serials (serialKey form), computed only when pieces must be checked against each other. */
  keys: () => string[];
  /**
   * A closed task's piece only: whether it lists this serial (serialKey form), a search of its slots.
   * No serial is in two tasks, so task pieces never overlap each other; an identity's or principal's
   * piece has none (it is checked against the others through `keys`).
   */
  has?: (key: string) => boolean;
  /** A closed task's piece only: its run without these serials (listed elsewhere, revoked earlier). */
  without?: (keys: ReadonlySet<string>) => Buffer;
  /** The revocation time of its entries (of those `atOf` does not name). */
  at: number;
  /** A lock's piece: each entry's own revocation time (serialKey form), when its identity was locked more than once. */
  atOf?: Map<string, number>;
  /** After this instant all its certificates have expired: the piece is dropped. */
  until: number;
  /** When it was read: re-read with the CRL's own refresh (half its validity), as a full rebuild would. */
  made: number;
}

/** The CRL's scopes and per-serial revocations, read at `now`. */
interface Scopes {
  now: number;
  single: Array<{ serial: string; revokedAt: number }>;
  tasks: string[];
  idents: string[];
  prins: string[];
}

const entriesOf = (serials: readonly string[], at: number): CrlEntry[] => {
  const revokedAt = new Date(at);
  return serials.map((serialHex) => ({ serialHex, revokedAt }));
};

const latest = (certs: readonly { notAfter: number }[]) => certs.reduce((m, c) => Math.max(m, c.notAfter), 0);

const once = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

/** Whether `slots` holds the serial in one of its (aligned) slots: a native search, no set built. */
function hasSlot(slots: Buffer, key: string): boolean {
  const needle = serialSlot(key);
  for (let i = slots.indexOf(needle); i !== -1; i = slots.indexOf(needle, i + 1)) if (i % SERIAL_SLOT === 0) return true;
  return false;
}

/** The serialKey form of the slot at hex offset `i` of the slots' hex ('' for an empty slot). */
function slotKeyAt(hex: string, i: number): string {
  const end = i + SERIAL_SLOT * 2;
  let st = i;
  while (st < end && hex.charCodeAt(st) === 48) st++;
  return hex.slice(st, end);
}

/** The serialKey form of every non-zero slot (one hex conversion, then slices). */
function slotKeys(slots: Buffer): string[] {
  const hex = slots.toString('hex');
  const out: string[] = [];
  for (let i = 0; i < hex.length; i += SERIAL_SLOT * 2) {
    const k = slotKeyAt(hex, i);
    if (k) out.push(k);
  }
  return out;
}

/** The slots but those of `keys` (serialKey form). */
function slotsWithout(slots: Buffer, keys: ReadonlySet<string>): Buffer {
  const hex = slots.toString('hex');
  const kept: Buffer[] = [];
  for (let j = 0; j < slots.length; j += SERIAL_SLOT) {
    const k = slotKeyAt(hex, j * 2);
    if (!(k && keys.has(k))) kept.push(slots.subarray(j, j + SERIAL_SLOT));
  }
  return Buffer.concat(kept);
}

/** Questions "does a closed task list this serial?" answered by searching the tasks' slots before a set of all their serials is built. */
const TASK_LOOKUPS_BEFORE_SET = 64;

type TaskPiece = Piece & Required<Pick<Piece, 'has' | 'without'>>;

/** The pieces put together, each serial once and dated by its earliest revocation among them. */
interface Assembled {
  pieces: Piece[];
  tasks: TaskPiece[];
  /** Each task's run, without the serials a lock or principal revocation covered earlier. */
  taskRuns: Buffer[];
  /** The serials locks and principal revocations list, each at the earliest time any of them gives it. */
  held: Map<string, number>;
  heldRun: Buffer;
  /** Per task piece, the serials `held` lists instead (revoked there earlier). */
  taken: Map<Piece, Set<string>>;
  /** The task piece listing a serial (serialKey form), if any. */
  taskOf: (key: string) => TaskPiece | undefined;
}

function assemble(pieces: Piece[]): Assembled {
  const tasks = pieces.filter((p): p is TaskPiece => p.has !== undefined && p.without !== undefined);
  const holders = pieces.filter((p) => p.has === undefined);
  // tasks never share serials. Which one lists a serial is a native search of their slots for the first
  // few questions, then an index of all their serials, built once (worth it only when many are asked:
  // 10,000 serials cost ~3 ms to collect)
  let asked = 0;
  const index = once(() => {
    const m = new Map<string, TaskPiece>();
    for (const p of tasks) for (const k of p.keys()) m.set(k, p);
    return m;
  });
  const taskOf = (k: string): TaskPiece | undefined => (++asked <= TASK_LOOKUPS_BEFORE_SET ? tasks.find((p) => p.has(k)) : index().get(k));
  // an identity's or principal's certificates may be each other's, or a task's: each at its earliest
  const held = new Map<string, number>();
  let merged = false;
  for (const p of holders)
    for (const k of p.keys()) {
      const t = p.atOf?.get(k) ?? p.at;
      const was = held.get(k);
      if (was !== undefined) merged = true;
      if (was === undefined || t < was) held.set(k, t);
    }
  const taken = new Map<Piece, Set<string>>();
  for (const [k, t] of held) {
    const tp = taskOf(k);
    if (!tp) continue;
    merged = true;
    if (t < tp.at) taken.set(tp, (taken.get(tp) ?? new Set()).add(k));
    else held.delete(k); // the task's close came first (or at once): listed there
  }
  return {
    pieces,
    tasks,
    taskRuns: tasks.map((p) => (taken.has(p) ? p.without(taken.get(p)!) : p.der)),
    held,
    // no serial in two places: the pieces' own encodings, as they are
    heldRun: merged ? encodeHeld(held) : Buffer.concat(holders.map((p) => p.der)),
    taken,
    taskOf,
  };
}

/** The held serials' entries, each at its time (or an earlier one of `earlier`). */
function encodeHeld(held: ReadonlyMap<string, number>, earlier?: ReadonlyMap<string, number>): Buffer {
  const entries: CrlEntry[] = [];
  for (const [k, t] of held) entries.push({ serialHex: k, revokedAt: new Date(earlier?.get(k) ?? t) });
  return encodeCrlEntries(entries).der;
}

/** Background rebuilds after revocations: at most one per this many ms. */
const REFRESH_MIN_MS = 250;
/** Feed events that change the CRL. Each is published just before its state change (feed/publish.ts). */
const CRL_EVENTS = new Set(['task.closed', 'identity.locked', 'principal.revoked', 'certificate.revoked']);
/** How long after such an event another process starts its rebuild: time for the state change to land. */
const AFTER_EVENT_MS = 25;
/** How far apart the clocks of two broker processes may be, for principalCovers. */
const CLOCK_SKEW_MS = 5000;
/** Shared CRL: how long a build claim lasts (a crashed builder's claim lapses). */
const SHARED_CLAIM_MS = 1000;

export class CrlService {
  private cached: Cached | undefined;
  private building: Promise<Cached> | undefined;
  private pieces = new Map<string, Piece>();
  private assembled: Assembled | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefresh = 0;

  /** Which CA's CRL this is, for the store's shared CRL: the first 16 bytes of the SHA-256 of its certificate, in hex. */
  private readonly caId: string;

  constructor(private readonly b: Broker) {
    this.caId = hash('sha256', b.ca.cert.der, 'hex').slice(0, 32);
  }

  /**
   * Runs the encoders over synthetic serials at start (~5 ms), so the first real rebuild, say right
   * after a task with 10,000 certificates closes, runs optimised code instead of V8's interpreter
   * (measured: 8 ms cold, 1.5 ms warm for 10,000 entries). Nothing is cached or served from it.
   */
  warm(): void {
    const slots = randomBytes(SERIAL_SLOT * 2048);
    const at = new Date(this.b.clock.now());
    for (let i = 0; i < 4; i++) {
      encodeRevokedSlots(slots, SERIAL_SLOT, at);
      const keys = slotKeys(slots);
      encodeCrlEntries(entriesOf(keys.slice(0, 512), at.getTime()), new Set(keys.slice(512, 1024)));
      hasSlot(slots, keys[i]!);
    }
  }

  /**
   * After a revocation's state change (a lock, a principal's cutoff, a close) whose scope was added
   * before it: a new CRL version, so no CRL built in between (scope added, state not yet written: the
   * new version's number on the old state, listing none of it) is served for it; then the rebuild.
   * The caller awaits it before answering: once the answer is out, every CRL includes the revocation.
   */
  async revoked(): Promise<void> {
    await this.b.store.bumpCrlVersion();
    this.refresh();
  }

  /**
   * Starts the rebuild a revocation calls for, without waiting for it (as step-ca's generateOnRevoke):
   * the next fetch finds the CRL built, or joins the build in flight. Called by the process that made
   * the revocation once its state change has landed, and by every other process on its feed event
   * (watch). At most one such rebuild per REFRESH_MIN_MS (a burst of revocations gets one at its start
   * and one after it); a fetch still rebuilds itself whenever the store's CRL version has moved past
   * what was built. Never throws.
   */
  refresh(): void {
    if (this.refreshTimer) return;
    const run = () => {
      this.refreshTimer = undefined;
      this.lastRefresh = Date.now();
      this.current().catch((e: unknown) => this.b.log.warn({ err: (e as Error).message }, 'CRL not rebuilt after a revocation; the next fetch retries'));
    };
    const wait = this.lastRefresh + REFRESH_MIN_MS - Date.now();
    if (wait <= 0) run();
    else (this.refreshTimer = setTimeout(run, wait)).unref();
  }

  /**
   * Every process's CRL follows every replica's revocations: a CRL-changing event on the feed starts
   * the rebuild here too (refresh, shortly after, once the state change has landed), so a relying
   * party fetching from any process after that finds it built. Returns the function that stops it.
   */
  watch(feed: FeedHub): () => void {
    return feed.listen((events) => {
      const ids = events.filter((e) => CRL_EVENTS.has(e.event.type ?? '')).map((e) => e.id);
      if (ids.length === 0) return;
      // this process's own revocations are left to it: it refreshes once their state change has landed
      // (asked when the timer fires: by then its publish call has long answered)
      setTimeout(() => {
        if (ids.some((id) => !feed.isOwn(id))) this.refresh();
      }, AFTER_EVENT_MS).unref();
    });
  }

  async current(): Promise<Buffer> {
    return (await this.currentCrl()).der;
  }

  /** The current CRL with when it was built (its thisUpdate, to the millisecond), and the one before it. */
  async currentCrl(): Promise<{ der: Buffer; builtAt: number; previousAt: number }> {
    const now = this.b.clock.now();
    const version = await this.b.store.crlVersion();
    const c = this.cached;
    if (c && c.version === version && now - c.builtAt < this.b.config.caDefaults.crlValidityMs / 2) return c;
    this.building ??= this.obtain(version).finally(() => (this.building = undefined));
    return this.building;
  }

  /**
   * The CRL for `version`: on a store several processes share, the one another process built and
   * stored (one build per version for all of them, as step-ca keeps its CRL in its database); else
   * built here, and stored for the others when this process holds the build claim. A fetch that comes
   * while another process is building the same version builds it too rather than wait (measured: on
   * shared cores, waiting for the other build and then reading it cost more, README runs 6-9), as of
   * the same instant: the two carry one CRL number and one thisUpdate, so whichever process answers,
   * neither ever goes back (RFC 5280 §5.2.3). The copy is this process's until the next version.
   */
  private async obtain(version: number): Promise<Cached> {
    const { store, config } = this.b;
    if (!store.getOrClaimCrl || !store.putCrl) {
      const built = await this.build(version, this.scopes(this.b.clock.now()));
      return (this.cached = { ...built, previousAt: this.cached?.builtAt ?? 0 });
    }
    const validity = config.caDefaults.crlValidityMs;
    // the build's first reads go out with the question whether it is needed at all: when it is (a
    // fetch right after another process's revocation, racing its build), that is one round trip less
    // on a busy Redis; when another process's CRL is taken instead, they were a few small reads
    const now = this.b.clock.now();
    const scopes = this.scopes(now);
    scopes.catch(() => undefined); // unused if the shared CRL is taken; a build awaits it (and its error)
    const got = await store.getOrClaimCrl(this.caId, version, now - validity / 2, SHARED_CLAIM_MS, now);
    if ('der' in got) {
      this.cached = { der: got.der, version: got.version, builtAt: got.builtAt, previousAt: got.previousAt ?? got.builtAt };
      return this.cached;
    }
    const built = await this.build(version, scopes, got.at);
    this.cached = { ...built, previousAt: got.previousAt };
    if (got.claim === 'build')
      // shared for the others; this fetch does not wait for the write
      store.putCrl(this.caId, { der: built.der, version, builtAt: built.builtAt }, validity).catch((e: unknown) =>
        this.b.log.warn({ err: (e as Error).message }, 'built CRL not shared; other processes build their own'),
      );
    return this.cached;
  }

  /** The ids of the closed tasks whose pieces are cached (keys `task:<id>:<instant>`). */
  private cachedTaskIds(): Set<string> {
    const ids = new Set<string>();
    for (const k of this.pieces.keys()) if (k.startsWith('task:')) ids.add(k.slice(5, k.lastIndexOf(':')));
    return ids;
  }

  /** The piece for `key` from the cache, or made by `make` (which reads the store). */
  private async piece(key: string, now: number, make: () => Promise<Omit<Piece, 'made'>>): Promise<Piece> {
    const known = this.pieces.get(key);
    if (known && known.until > now && now - known.made < this.b.config.caDefaults.crlValidityMs / 2) return known;
    const p: Piece = { ...(await make()), made: now };
    this.pieces.set(key, p);
    return p;
  }

  /**
   * The certificates a principal's revocations cover, each dated as the status dates it
   * (revoke/task-status.ts, store.ts principalRevokedAt): those of its tasks opened at or before a
   * cutoff, whenever they were issued (one recorded after the revocation's instant but before it
   * landed too), at the first cutoff after the task opened. A task is opened before its certificates
   * are issued, so one issued well before the first cutoff (CLOCK_SKEW_MS, for the clocks of different
   * processes) is dated by it without reading its task; for the others the task is read.
   */
  private async principalCovers(certs: HeldCertificate[], cutoffs: readonly number[]): Promise<Map<HeldCertificate, number>> {
    const { store } = this.b;
    const first = cutoffs[0] ?? 0;
    // dated by the first revocation after its task opened: one issued well before the first is its
    const dated = new Map<HeldCertificate, number>();
    const unsure: HeldCertificate[] = [];
    for (const c of certs) if (c.issuedAt + CLOCK_SKEW_MS <= first) dated.set(c, first);
    else unsure.push(c);
    if (unsure.length === 0) return dated;
    const records = await Promise.all(unsure.map((c) => store.getCertificate(c.serial)));
    const taskIds = [...new Set(records.flatMap((r) => (r ? [r.taskId] : [])))];
    const created = new Map(await Promise.all(taskIds.map(async (id) => [id, (await store.getTask(id))?.createdAt] as const)));
    unsure.forEach((c, i) => {
      const at = principalRevokedAt(cutoffs, created.get(records[i]?.taskId ?? '') ?? Infinity);
      if (at > 0) dated.set(c, at);
    });
    return dated;
  }

  /**
   * A locked identity's certificates, each dated by the lock that revoked it (identityRevokedAt): a
   * later lock does not move the revocation date of what an earlier one covered (RFC 5280 §5.3.2).
   */
  private lockPiece(certs: HeldCertificate[], s: IdentityState, now: number): Omit<Piece, 'made'> {
    return this.datedPiece(new Map(certs.map((c) => [c, identityRevokedAt(s, c.issuedAt)])), s.revokedBefore, now);
  }

  /** Certificates each with its own revocation time, as one piece (one run per time). */
  private datedPiece(dated: ReadonlyMap<HeldCertificate, number>, fallback: number, now: number): Omit<Piece, 'made'> {
    const certs = [...dated.keys()];
    const byTime = new Map<number, string[]>();
    for (const [c, t] of dated) {
      const at = Math.min(t, now);
      const group = byTime.get(at);
      if (group) group.push(c.serial);
      else byTime.set(at, [c.serial]);
    }
    if (byTime.size <= 1) return this.holderPiece(certs.map((c) => c.serial), Math.min(byTime.keys().next().value ?? fallback, now), latest(certs));
    const atOf = new Map<string, number>();
    for (const [at, serials] of byTime) for (const serial of serials) atOf.set(serialKey(serial), at);
    return {
      der: Buffer.concat([...byTime].map(([at, serials]) => encodeCrlEntries(entriesOf(serials, at)).der)),
      keys: once(() => [...atOf.keys()]),
      at: Math.min(...byTime.keys()),
      atOf,
      until: latest(certs),
    };
  }

  /** A lock's or a principal revocation's certificates, from the holder index. */
  private holderPiece(serials: string[], at: number, until: number): Omit<Piece, 'made'> {
    return { der: encodeCrlEntries(entriesOf(serials, at)).der, keys: once(() => serials.map(serialKey)), at, until };
  }

  /** What the CRL lists, read at `now` (after the CRL version it is built for was read). */
  private scopes(now: number): Promise<Scopes> {
    const { store } = this.b;
    return Promise.all([store.revokedCertificates(now), store.crlScopes('task', now), store.crlScopes('identity', now), store.crlScopes('principal', now)]).then(
      ([single, tasks, idents, prins]) => ({ now, single, tasks, idents, prins }),
    );
  }

  /** The CRL of `version` from what `scopes` read; issued as of `issuedAt` (its thisUpdate and number: a shared build's claim instant). */
  private async build(version: number, scopes: Promise<Scopes>, issuedAt?: number): Promise<Omit<Cached, 'previousAt'>> {
    const { store } = this.b;
    const { now, single, tasks, idents, prins } = await scopes;
    const issued = issuedAt ?? now;
    const cachedTasks = this.cachedTaskIds();
    const wanted = await Promise.all([
      ...tasks.map(async (id) => {
        // a task new to this process: its serials are read with its record, not after it (one round
        // trip less; a closed task's serials never change, and a purged one's are gone too)
        const slotsRead = cachedTasks.has(id) ? undefined : store.taskSerialSlots(id, now);
        slotsRead?.catch(() => undefined); // awaited below when used; unused if the task was purged
        const task = await store.getTask(id);
        if (!task) return null; // purged: its certificates expired long ago
        // its certificates all end by the task's deadline; a closed task's set never changes
        return this.piece(`task:${id}:${task.closedAt ?? task.expiresAt}`, now, async () => {
          const slots = await (slotsRead ?? store.taskSerialSlots(id, now));
          const at = Math.min(task.closedAt ?? task.expiresAt, now);
          return {
            der: encodeRevokedSlots(slots, SERIAL_SLOT, new Date(at)).der,
            keys: once(() => slotKeys(slots)),
            has: (k) => hasSlot(slots, k),
            without: (keys) => encodeRevokedSlots(slotsWithout(slots, keys), SERIAL_SLOT, new Date(at)).der,
            at,
            until: task.expiresAt,
          };
        });
      }),
      ...idents.map(async (id) => {
        const s = await store.identityState(id);
        // as the status decides (revoke/active.ts): while locked, every certificate of the identity (one
        // recorded after the lock's instant but before the lock landed too); after, those issued up to
        // its cutoff, by the second
        return this.piece(`identity:${id}:${s.locked ? 'locked' : 'cutoff'}:${s.revokedBefore}`, now, async () => {
          const certs = await store.holderCertificates('identity', id, s.locked ? Infinity : s.revokedBefore, now);
          return this.lockPiece(certs, s, now);
        });
      }),
      ...prins.map(async (p) => {
        const cutoff = await store.principalRevokedBefore(p);
        return this.piece(`principal:${p}:${cutoff}`, now, async () => {
          const [held, cutoffs] = await Promise.all([store.holderCertificates('principal', p, Infinity, now), store.principalCutoffs(p)]);
          return this.datedPiece(await this.principalCovers(held, cutoffs), cutoff, now);
        });
      }),
    ]);
    // forget pieces no longer in any scope, or whose certificates have all expired
    const live = new Set(wanted.filter((p): p is Piece => p !== null));
    for (const [k, p] of this.pieces) if (!live.has(p) || p.until <= now) this.pieces.delete(k);

    // each serial once, dated by its earliest revocation (RFC 5280 §5.3.2, as its status and OCSP say):
    // pieces only change when a scope comes or goes, so their assembly is kept until then
    const pieces = [...live];
    let asm = this.assembled;
    if (!asm || asm.pieces.length !== pieces.length || asm.pieces.some((p, i) => p !== pieces[i])) {
      asm = assemble(pieces);
      this.assembled = asm;
    }
    // then per-serial revocations: listed where nothing lists them, or where they came first
    const own: CrlEntry[] = [];
    let heldEarlier: Map<string, number> | undefined;
    let takenNow: Map<Piece, Set<string>> | undefined;
    for (const r of single) {
      const k = serialKey(r.serial);
      const t = Math.min(r.revokedAt, now);
      const h = asm.held.get(k);
      if (h !== undefined) {
        if (t < h) (heldEarlier ??= new Map()).set(k, t);
        continue;
      }
      const tp = asm.taskOf(k); // (one it already takes from a task is in `held`, above)
      if (tp) {
        if (t >= tp.at) continue;
        takenNow ??= new Map();
        const set = takenNow.get(tp) ?? new Set(asm.taken.get(tp));
        takenNow.set(tp, set.add(k));
      }
      own.push({ serialHex: r.serial, revokedAt: new Date(t) });
    }
    const taskRuns = takenNow ? asm.tasks.map((p, i) => (takenNow!.has(p) ? p.without!(takenNow!.get(p)!) : asm!.taskRuns[i]!)) : asm.taskRuns;
    const heldRun = heldEarlier ? encodeHeld(asm.held, heldEarlier) : asm.heldRun;
    const der = buildCrl(this.b.ca, {
      entries: [],
      encoded: [...taskRuns, heldRun, encodeCrlEntries(own).der],
      thisUpdate: new Date(issued),
      nextUpdate: new Date(issued + this.b.config.caDefaults.crlValidityMs),
      crlNumber: BigInt(issued), // increases with every CRL this CA issues, across replicas
    });
    return { der, version, builtAt: issued };
  }
}
