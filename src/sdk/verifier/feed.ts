/**
 * What both revocation-feed clients (feed-poll.ts, feed-stream.ts) share: the mirror they keep in sync,
 * the freshness bookkeeping that decides `stale`, reconnect backoff and reading one feed page.
 */
import { authorization, endpoint, jsonOrThrow, request, type BrokerCredentials, type FetchLike } from '../http.js';
import { RevocationMirror, type RevocationEvent } from './mirror.js';

export type FeedMode = 'stream' | 'poll' | 'none';
export type FeedState = 'idle' | 'connecting' | 'live' | 'retrying' | 'closed';

export interface FeedStatus {
  mode: FeedMode;
  state: FeedState;
  /** The mirror has held a complete snapshot at least once. */
  synced: boolean;
  /** Clock time (ms) the mirror was last known to be current, or null. */
  lastSyncAt: number | null;
  cursor: string | null;
  lastError: string | null;
}

export interface FeedOptions {
  brokerUrl: string;
  credentials: BrokerCredentials;
  fetch: FetchLike;
  clock: { now(): number };
  mirror: RevocationMirror;
  /** Pruning horizon for mirror entries (ms). */
  retentionMs: number;
  /** A feed request that takes longer is abandoned (ms). */
  requestTimeoutMs: number;
}

export interface FeedPage {
  events: RevocationEvent[];
  cursor: string;
  resync: boolean;
  more: boolean;
}

export abstract class Feed {
  protected state: FeedState = 'idle';
  protected synced = false;
  protected lastSyncAt: number | null = null;
  protected cursor: string | null = null;
  protected lastError: string | null = null;
  protected stopped = false;
  private failures = 0;
  private syncWaiters: (() => void)[] = [];

  constructor(
    readonly mode: Exclude<FeedMode, 'none'>,
    protected o: FeedOptions,
  ) {}

  /** Starts the feed's loop once. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    void this.loop();
  }
  protected abstract loop(): Promise<void>;
  abstract close(): void;

  status(): FeedStatus {
    return { mode: this.mode, state: this.state, synced: this.synced, lastSyncAt: this.lastSyncAt, cursor: this.cursor, lastError: this.lastError };
  }

  /** Fresh: synced, and either connected live (stream) or heard from within `maxStalenessMs`. */
  abstract isFresh(now: number, maxStalenessMs: number): boolean;

  /** Resolves at the first complete sync. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  protected get headers(): Record<string, string> {
    const auth = authorization(this.o.credentials);
    return auth ? { authorization: auth } : {};
  }

  protected markSynced(): void {
    this.lastSyncAt = this.o.clock.now();
    this.lastError = null;
    this.failures = 0;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  protected replaceState(events: RevocationEvent[]): void {
    const next = new RevocationMirror();
    next.applyAll(events);
    this.o.mirror.replaceWith(next);
  }

  protected prune(): void {
    this.o.mirror.prune(this.o.clock.now() - this.o.retentionMs);
  }

  /** Exponential backoff with jitter, 250 ms doubling to 10 s. */
  protected nextDelay(error: unknown): number {
    this.lastError = (error as Error)?.message ?? String(error);
    this.failures++;
    const base = Math.min(10_000, 250 * 2 ** Math.min(this.failures - 1, 6));
    return base / 2 + Math.random() * (base / 2);
  }

  /** GET /v1/revocations from a cursor; pages until `more` is false. A resync is built off to the side and swapped in. */
  protected async pull(signal: AbortSignal, limit = 1000): Promise<void> {
    let staging: RevocationMirror | undefined;
    let cursor = this.cursor;
    for (;;) {
      const q = new URLSearchParams({ limit: String(limit) });
      if (cursor) q.set('since', cursor);
      const res = await request(this.o.fetch, `${endpoint(this.o.brokerUrl, '/v1/revocations')}?${q}`, {
        headers: this.headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.requestTimeoutMs)]),
      });
      const page = checkPage(await jsonOrThrow<unknown>(res));
      if (page.resync) {
        staging = new RevocationMirror();
        staging.applyAll(page.events);
      } else {
        (staging ?? this.o.mirror).applyAll(page.events);
        if (!staging) this.cursor = page.cursor;
      }
      cursor = page.cursor;
      if (!page.more) break;
    }
    if (staging) this.o.mirror.replaceWith(staging);
    this.cursor = cursor;
    this.markSynced();
  }
}

export function checkPage(body: unknown): FeedPage {
  const p = body as Partial<FeedPage> | undefined;
  if (!p || !Array.isArray(p.events) || typeof p.cursor !== 'string' || typeof p.resync !== 'boolean' || typeof p.more !== 'boolean')
    throw new Error('revocation feed: unexpected answer (want {events, cursor, resync, more})');
  for (const e of p.events) if (!e || typeof e !== 'object' || typeof e.type !== 'string') throw new Error('revocation feed: event without a type');
  return p as FeedPage;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
