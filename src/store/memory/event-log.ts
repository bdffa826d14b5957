/**
 * An in-memory append-only event log with Redis-stream-like ids (`<ms>-<seq>`, strictly increasing
 * even if the clock steps back): the memory store's audit stream and revocation feed.
 */
import type { AuditEntry } from '../store.js';
import { compareIds, parseId } from '../stream-id.js';

export class EventLog {
  private entries: AuditEntry[] = [];
  /** The last id given out: shared by logs whose ids must order across them (audit and usage). */
  private readonly ids: { last: [ms: number, seq: number] };
  private latest = '0-0';
  /** The highest id ever trimmed (like XINFO STREAM's max-deleted-entry-id). */
  maxDeleted = '0-0';
  private waiters = new Set<() => void>();

  constructor(
    private readonly maxLen = Infinity,
    ids?: { last: [number, number] },
  ) {
    this.ids = ids ?? { last: [0, 0] };
  }

  append(event: Record<string, string>, now: number): string {
    if (Object.keys(event).length === 0) throw new TypeError('an event needs at least one field');
    const [lastMs, lastSeq] = this.ids.last;
    this.ids.last = now > lastMs ? [now, 0] : [lastMs, lastSeq + 1];
    const id = `${this.ids.last[0]}-${this.ids.last[1]}`;
    this.latest = id;
    this.entries.push({ id, event: { ...event } });
    // Trim in batches so appends stay amortised O(1) (Redis trims with MAXLEN ~ likewise).
    if (this.entries.length > this.maxLen + Math.max(1, this.maxLen >> 4)) this.dropFirst(this.entries.length - this.maxLen);
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    return id;
  }

  /** Drops entries older than `ms` (like XADD MINID). */
  trimBefore(ms: number): void {
    this.dropFirst(this.firstAfter([ms - 1, Number.MAX_SAFE_INTEGER]));
  }

  /** Like Redis: once anything was trimmed, everything before the first entry left counts as gone. */
  private dropFirst(n: number): void {
    if (n <= 0) return;
    this.maxDeleted = this.entries[n - 1]!.id;
    this.entries = this.entries.slice(n);
  }

  read(afterId: string, limit: number): AuditEntry[] {
    if (limit <= 0) return [];
    const after: [number, number] = afterId === '' || afterId === '0' ? [-1, 0] : parseId(afterId);
    const lo = this.firstAfter(after);
    return this.entries.slice(lo, lo + limit).map((e) => structuredClone(e));
  }

  /** The id of the last entry this log appended ('0-0' before any). */
  latestId(): string {
    return this.latest;
  }

  /** Resolves as soon as an entry after `afterId` exists, or after `timeoutMs`. */
  wait(afterId: string, timeoutMs: number): Promise<void> {
    if (this.read(afterId, 1).length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      t.unref?.();
      this.waiters.add(done);
    });
  }

  /** Binary search: index of the first entry with id > `after`. */
  private firstAfter(after: [number, number]): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds(parseId(this.entries[mid]!.id), after) > 0) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
