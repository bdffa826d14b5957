/**
 * One tail of the feed per broker process: a single blocking read on the store (its own Redis
 * connection) notices anything new, whichever replica wrote it, reads the new events once and keeps
 * the most recent ones, then wakes every local subscriber. A subscriber whose cursor the kept events
 * cover takes its events from here (no Redis command per subscriber per event); one that lags behind
 * them reads the store itself, so nothing is missed or sent twice. Listeners (`listen`, e.g. the CRL
 * service) get each batch of new events as it is read; the tail runs while anyone waits or listens.
 */
import type { AuditEntry, Store } from '../store/store.js';
import { compareIds, parseId } from '../store/stream-id.js';

const BLOCK_MS = 1000;
const KEEP = 1000;
const OWN_KEEP = 1000;
/**
 * How long after its last answer from the store the tail still vouches for "nothing new": a blocking
 * read answers within BLOCK_MS while the store is up, so silence beyond this means it may be down, and
 * subscribers must ask the store themselves (and tell their readers when it does not answer) instead of
 * sending heartbeats that would keep a verifier believing its mirror is current.
 */
const VOUCH_MS = BLOCK_MS + 500;

const after = (a: string, b: string) => compareIds(parseId(a), parseId(b)) > 0;

export class FeedHub {
  /** Every event after `base` up to `latest` is in `recent` (while the tail runs). */
  private base: string | undefined;
  private latest: string | undefined;
  private recent: AuditEntry[] = [];
  private waiters = new Set<() => void>();
  private listeners = new Set<(events: AuditEntry[]) => void>();
  /** Ids of the events this process published (the latest OWN_KEEP). */
  private own = new Set<string>();
  private running = false;
  private stopped = false;
  /** When the store last answered the tail (ms, this process's clock). */
  private confirmedAt = 0;

  constructor(private store: Store) {}

  /** Events after `cursor` from the kept ones, or undefined when they do not cover it (read the store). */
  since(cursor: string): AuditEntry[] | undefined {
    if (!this.running || this.base === undefined || after(this.base, cursor) || Date.now() - this.confirmedAt > VOUCH_MS) return undefined;
    let i = this.recent.length;
    while (i > 0 && after(this.recent[i - 1]!.id, cursor)) i--;
    return this.recent.slice(i);
  }

  /** Resolves when an event after `cursor` may exist, or after `timeoutMs`. */
  wait(cursor: string, timeoutMs: number): Promise<void> {
    if (this.latest && after(this.latest, cursor)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      this.run();
    });
  }

  /**
   * Calls `fn` with each batch of events the tail reads from now on, until the returned function is
   * called; the tail keeps running meanwhile (so this process learns of every replica's revocations).
   */
  listen(fn: (events: AuditEntry[]) => void): () => void {
    this.listeners.add(fn);
    this.run();
    return () => void this.listeners.delete(fn);
  }

  /** This process published the event `id` (feed/publish.ts): a listener may leave it to the publisher. */
  published(id: string): void {
    if (this.own.size >= OWN_KEEP) this.own.delete(this.own.values().next().value!);
    this.own.add(id);
  }

  /** Whether this process published the event `id` (among its latest OWN_KEEP). */
  isOwn(id: string): boolean {
    return this.own.has(id);
  }

  close(): void {
    this.stopped = true;
    for (const w of [...this.waiters]) w();
  }

  private wanted(): boolean {
    return this.waiters.size > 0 || this.listeners.size > 0;
  }

  private run(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // a fresh start: what was kept from an earlier run may no longer be contiguous with the stream
    this.base = this.latest = undefined;
    this.recent = [];
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      await this.tail();
    } finally {
      // synchronously after the last check of `waiters`: a wait() can't slip in between unnoticed
      this.running = false;
      if (!this.stopped && this.wanted()) this.run();
    }
  }

  private async tail(): Promise<void> {
    while (!this.stopped && this.wanted()) {
      try {
        if (this.latest === undefined) this.base = this.latest = (await this.store.revocationCursor()).latest;
        await this.store.waitRevocations(this.latest, BLOCK_MS);
        const rows = await this.store.readRevocations(this.latest, KEEP);
        this.confirmedAt = Date.now();
        if (rows.length > 0) {
          this.recent.push(...rows);
          if (this.recent.length > KEEP) {
            const dropped = this.recent.splice(0, this.recent.length - KEEP);
            this.base = dropped.at(-1)!.id;
          }
          this.latest = rows.at(-1)!.id;
          for (const w of [...this.waiters]) w();
          for (const l of [...this.listeners]) {
            try {
              l(rows);
            } catch {
              // a listener's failure is its own: the tail and the other subscribers go on
            }
          }
        }
      } catch {
        // store down: stop vouching for anything; subscribers find out through their own reads
        this.base = this.latest = undefined;
        this.recent = [];
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
}
