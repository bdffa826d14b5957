/** The polling revocation feed: GET /v1/revocations?since=<cursor> every `intervalMs`. */
import { Feed, sleep, type FeedOptions } from './feed.js';

export class PollFeed extends Feed {
  private abort = new AbortController();

  constructor(
    o: FeedOptions,
    private intervalMs: number,
  ) {
    super('poll', o);
  }

  close(): void {
    this.stopped = true;
    this.state = 'closed';
    this.abort.abort();
  }

  isFresh(now: number, maxStalenessMs: number): boolean {
    return this.synced && this.lastSyncAt !== null && now - this.lastSyncAt <= maxStalenessMs;
  }

  protected async loop(): Promise<void> {
    while (!this.stopped) {
      let wait = this.intervalMs;
      try {
        await this.pull(this.abort.signal);
        this.prune();
        this.state = 'live';
      } catch (e) {
        if (this.stopped) break;
        this.state = 'retrying';
        wait = Math.min(this.intervalMs, this.nextDelay(e));
      }
      await sleep(wait, this.abort.signal);
    }
  }
}
