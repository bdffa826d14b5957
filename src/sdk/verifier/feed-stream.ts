/**
 * The streaming revocation feed: GET /v1/revocations/stream (Server-Sent Events). The first message of
 * a connection without a usable cursor is `event: snapshot` (replace the mirror); then one message per
 * revocation with `id: <cursor>`; `: hb` comments keep the line warm. On any drop it reconnects with
 * `Last-Event-ID`, so the broker replays what was missed (or sends a new snapshot). An `error` message
 * (the broker lost its store) ends the connection; a `resync` message (the broker trimmed past our
 * cursor) also drops the cursor, and the mirror counts as stale until the next snapshot.
 *
 * Freshness: the mirror is current for `maxStalenessMs` after the last sign of life of a caught-up
 * connection (a message, a heartbeat), connected or not: a connection that has gone silent (a lost
 * route, a blackholed proxy) stops counting even before `idleTimeoutMs` replaces it, so keep
 * `maxStalenessMs` above the broker's heartbeat (`feed.heartbeat`, 15 s by default). A connection is
 * caught up once its snapshot has arrived, or, resuming from a cursor, at the broker's first heartbeat
 * (sent right after it replayed what was missed): until then the mirror may lack those revocations.
 */
import { endpoint, jsonOrThrow, request } from '../http.js';
import { Feed, sleep, type FeedOptions } from './feed.js';
import type { RevocationEvent } from './mirror.js';
import { SseParser, type SseMessage } from './sse.js';

export class StreamFeed extends Feed {
  private abort = new AbortController();
  private conn: AbortController | undefined;
  private lastHeardAt: number | null = null;
  /** This connection delivered its snapshot, or (resuming) the heartbeat after its replay. */
  private caughtUp = false;
  private pruneAt = 0;

  constructor(
    o: FeedOptions,
    private idleTimeoutMs: number,
  ) {
    super('stream', o);
  }

  close(): void {
    this.stopped = true;
    this.state = 'closed';
    this.abort.abort();
    this.conn?.abort();
  }

  isFresh(now: number, maxStalenessMs: number): boolean {
    return this.synced && this.lastHeardAt !== null && now - this.lastHeardAt <= maxStalenessMs;
  }

  protected async loop(): Promise<void> {
    while (!this.stopped) {
      let wait = 0;
      try {
        await this.connectOnce();
        wait = 100; // the server ended the stream cleanly: reconnect soon
      } catch (e) {
        if (this.stopped) break;
        wait = this.nextDelay(e);
      }
      if (this.stopped) break;
      this.state = 'retrying';
      await sleep(wait, this.abort.signal);
    }
  }

  private async connectOnce(): Promise<void> {
    const conn = new AbortController();
    this.conn = conn;
    const signal = AbortSignal.any([conn.signal, this.abort.signal]);
    let idle: NodeJS.Timeout | undefined;
    let idleFired = false;
    let endedCleanly = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        conn.abort(new Error(`revocation stream silent for ${this.idleTimeoutMs} ms`));
      }, this.idleTimeoutMs);
      idle.unref?.();
    };
    try {
      this.state = 'connecting';
      const headers: Record<string, string> = { ...this.headers, accept: 'text/event-stream' };
      if (this.cursor) headers['last-event-id'] = this.cursor;
      arm();
      const res = await request(this.o.fetch, endpoint(this.o.brokerUrl, '/v1/revocations/stream'), { headers, signal });
      if (!res.ok) await jsonOrThrow(res);
      if (!(res.headers.get('content-type') ?? '').includes('text/event-stream') || !res.body) {
        await res.body?.cancel();
        throw new Error('revocation stream: answer is not text/event-stream');
      }
      // resuming from a cursor keeps the mirror, but it counts as current only once caught up: the
      // broker replays what was missed (or sends a snapshot), then a heartbeat
      this.caughtUp = false;
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          endedCleanly = true;
          break;
        }
        arm();
        for (const m of parser.push(decoder.decode(value, { stream: true }), true)) {
          if ('comment' in m) {
            if (this.synced && this.cursor !== null) this.caughtUp = true;
          } else this.handle(m);
        }
        if (this.caughtUp) this.live();
      }
    } catch (e) {
      if (idleFired) throw new Error(`revocation stream silent for ${this.idleTimeoutMs} ms`);
      throw e;
    } finally {
      clearTimeout(idle);
      conn.abort(); // release the connection whatever ended the read
      // a caught-up connection the broker closed was current up to now; one that went silent, or that
      // the broker ended with an `error` (it lost its store: silent since), only up to its last sign of life
      if (this.state === 'live' && this.caughtUp && endedCleanly) this.lastHeardAt = this.o.clock.now();
      if (this.state !== 'closed') this.state = 'retrying';
    }
  }

  private live(): void {
    this.state = 'live';
    this.markSynced();
    this.lastHeardAt = this.o.clock.now();
  }

  private handle(m: SseMessage): void {
    const data = JSON.parse(m.data) as unknown;
    if (m.event === 'snapshot') {
      const s = data as { events?: unknown; cursor?: unknown };
      if (!Array.isArray(s.events) || typeof s.cursor !== 'string') throw new Error('revocation stream: malformed snapshot');
      this.replaceState(s.events as RevocationEvent[]);
      this.cursor = s.cursor;
      this.caughtUp = true;
      this.live();
      return;
    }
    if (m.event === 'resync') {
      // the broker trimmed past our cursor: drop it, and trust nothing until the next snapshot
      this.cursor = null;
      this.lastHeardAt = null;
      this.state = 'retrying';
      throw new Error('revocation stream: resync required');
    }
    if (m.event === 'error') {
      const d = data as { error_description?: unknown };
      throw new Error(`revocation stream ended by the broker: ${typeof d?.error_description === 'string' ? d.error_description : 'error'}`);
    }
    const e = data as RevocationEvent;
    if (!e || typeof e !== 'object') return;
    if (typeof e.type !== 'string') e.type = m.event;
    this.o.mirror.apply(e);
    if (m.lastEventId) this.cursor = m.lastEventId; // (counted as a sign of life with its chunk, connectOnce)
    const now = this.o.clock.now();
    if (now >= this.pruneAt) {
      this.prune();
      this.pruneAt = now + 60_000;
    }
  }
}
