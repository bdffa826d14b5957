/**
 * One tail of the feed per broker process: a single blocking read on the store (its own Redis
 * connection) wakes every local subscriber when anything new lands, whichever replica wrote it.
 * Subscribers then read from their own cursor, so nothing is missed or sent twice.
 */
import type { Store } from '../store/store.js';
import { compareIds, parseId } from '../store/stream-id.js';

const BLOCK_MS = 2000;

export class FeedHub {
  private latest: string | undefined;
  private waiters = new Set<() => void>();
  private running = false;
  private stopped = false;

  constructor(private store: Store) {}

  /** Resolves when an event after `cursor` may exist, or after `timeoutMs`. */
  wait(cursor: string, timeoutMs: number): Promise<void> {
    if (this.latest && compareIds(parseId(this.latest), parseId(cursor)) > 0) return Promise.resolve();
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

  close(): void {
    this.stopped = true;
    for (const w of [...this.waiters]) w();
  }

  private run(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      await this.tail();
    } finally {
      // synchronously after the last check of `waiters`: a wait() can't slip in between unnoticed
      this.running = false;
      if (!this.stopped && this.waiters.size > 0) this.run();
    }
  }

  private async tail(): Promise<void> {
    while (!this.stopped && this.waiters.size > 0) {
      try {
        if (this.latest === undefined) this.latest = (await this.store.revocationCursor()).latest;
        await this.store.waitRevocations(this.latest, BLOCK_MS);
        const { latest } = await this.store.revocationCursor();
        if (latest !== this.latest) {
          this.latest = latest;
          for (const w of [...this.waiters]) w();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 250)); // store down: subscribers notice through their own reads
      }
    }
  }
}
